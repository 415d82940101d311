"""Rows kept in memory: a thread-safe, byte-bounded, least-recently-used store."""

from collections import OrderedDict

import numpy as np

from .base import DTYPES, BaseCache

__all__ = ["DEFAULT_MAX_BYTES", "MemoryCache"]

#: Default bound of an in-memory cache, in bytes of stored rows (1 GiB).
DEFAULT_MAX_BYTES = 1 << 30


def _space_name(space):
    # float32 rows are addressed by the bare fingerprint (``(fingerprint, key) in
    # cache``); other dtypes by a (fingerprint, dtype name) pair, which no str equals.
    fingerprint, dtype = space
    return fingerprint if dtype == DTYPES[0] else (fingerprint, dtype.name)


def _fingerprint_of(name):
    return name if isinstance(name, str) else name[0]


class MemoryCache(BaseCache):
    """Rows kept in memory, least recently used first out, bounded by bytes.

    Thread-safe.  Use :func:`get_cache` (``get_cache(None)``) to get the one
    shared by a process; make your own only for isolation (tests, benchmarks).

    Parameters
    ----------
    max_bytes : int, default=1 GiB
        Bound on the bytes of the stored rows (``row.nbytes``: 4 bytes a value
        for float32, 1 for uint8).  Settable later through the attribute;
        lowering it evicts at once.  0 stores nothing.  Python's bookkeeping
        for each entry is not counted: about 250 bytes (the array object, its
        place in the LRU order and its ``(fingerprint, key)`` pair) plus the
        key string itself (about 90 bytes for a text key, 70 plus the path for
        an image key), measured with :mod:`tracemalloc` by the test suite.
        For rows of 512 float32 that is about 15% on top of ``max_bytes``.

    Attributes
    ----------
    hits : int
        Rows served without computing them (a duplicate of a computed key in
        the same call counts as a hit).
    misses : int
        Rows passed to ``compute``.
    nbytes : int
        Bytes of the stored rows.

    Examples
    --------
    >>> import numpy as np
    >>> from skmm.cache import MemoryCache, text_key
    >>> cache = MemoryCache(max_bytes=2**20)
    >>> keys = [text_key(t) for t in ["x", "y"]]
    >>> cache.get_or_compute("fp", keys, lambda pos: np.ones((len(pos), 4))).shape
    (2, 4)
    >>> len(cache), cache.nbytes
    (2, 32)
    >>> ("fp", keys[0]) in cache
    True
    """

    def __init__(self, max_bytes=DEFAULT_MAX_BYTES):
        super().__init__()
        self._entries = OrderedDict()  # (space name, key) -> read-only 1-D row
        self._dims = {}  # space name -> row length
        self._nbytes = 0
        self._process_wide = False  # set by get_cache for the one it shares
        self.max_bytes = max_bytes

    @property
    def max_bytes(self):
        return self._max_bytes

    @max_bytes.setter
    def max_bytes(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"max_bytes must be a non-negative int, got {value!r}")
        with self._lock:
            self._max_bytes = int(value)
            self._evict()

    @property
    def nbytes(self):
        return self._nbytes

    def __len__(self):
        return len(self._entries)

    def __contains__(self, fingerprint_key):
        return fingerprint_key in self._entries

    def __repr__(self):
        return (
            f"{type(self).__name__}(entries={len(self)}, nbytes={self._nbytes}, "
            f"max_bytes={self._max_bytes}, hits={self.hits}, misses={self.misses})"
        )

    def __reduce__(self):
        # The process-wide cache unpickles as the process-wide cache of the
        # receiving process; any other as an empty cache with the same bound.
        if self._process_wide:
            from .shared import get_cache

            return (get_cache, (None,))
        return (type(self), (self._max_bytes,))

    def clear(self, fingerprint=None):
        """Drop stored rows and reset the counters.

        Parameters
        ----------
        fingerprint : str, optional
            Drop only this fingerprint's rows, of every dtype (the counters
            are kept).
        """
        with self._lock:
            if fingerprint is None:
                self._entries.clear()
                self._dims.clear()
                self._nbytes = 0
                self.hits = self.misses = 0
                return
            for entry in [e for e in self._entries if _fingerprint_of(e[0]) == fingerprint]:
                self._nbytes -= self._entries.pop(entry).nbytes
            for name in [n for n in self._dims if _fingerprint_of(n) == fingerprint]:
                del self._dims[name]

    def _lookup(self, space, keys):
        name = _space_name(space)
        with self._lock:
            entries = self._entries
            found = [entries.get((name, key)) for key in keys]
            move = entries.move_to_end
            for key, row in zip(keys, found):
                if row is not None:
                    move((name, key))
        return found

    def _store(self, space, items):
        name = _space_name(space)
        with self._lock:
            entries = self._entries
            for key, row in items:
                entry = (name, key)
                old = entries.pop(entry, None)
                if old is not None:
                    self._nbytes -= old.nbytes
                if row.nbytes <= self._max_bytes:
                    entries[entry] = row
                    self._nbytes += row.nbytes
            self._dims[name] = items[-1][1].shape[0]
            self._evict()

    def _evict(self):
        entries = self._entries
        while self._nbytes > self._max_bytes and entries:
            _, row = entries.popitem(last=False)
            self._nbytes -= row.nbytes

    def _known_dim(self, space):
        return self._dims.get(_space_name(space))

    def _remember_dim(self, space, dim):
        with self._lock:
            self._dims[_space_name(space)] = dim
