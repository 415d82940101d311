"""Rows stored under a directory in one SQLite file: shared by processes, checked, signed and bounded.

Layout::

    cache_dir/skmm-cache.sqlite3        every entry (:mod:`skmm.cache.store`)
    cache_dir/locks/<space name>.lock   the compute lock of a fingerprint's rows (:mod:`skmm.cache.locking`)

An entry is addressed by the :func:`~skmm.cache.keys.storage_name` of its
fingerprint (and dtype, for rows other than float32) and of its key, and
holds the bytes of :mod:`skmm.cache.entry`, digest included, so an entry
damaged in the file, copied under another key or written for another
fingerprint is a miss.  The disk is bounded by ``max_bytes``
(:mod:`skmm.cache.eviction`).

A cache directory written by skmm before the SQLite store (one file per
entry, in subdirectories named by 32 hex digits) is ignored: its files are
never read, ``info()`` counts its subdirectories as ``old_layout_dirs`` and
``clear()`` deletes them.
"""

import contextlib
import os
import shutil
import threading
import warnings
from collections import Counter

import numpy as np

from . import entry, eviction
from .base import DTYPES, BaseCache, check_dtype
from .keys import space_name, storage_name
from .locking import ComputeLock
from .memory import DEFAULT_MAX_BYTES, MemoryCache
from .store import LOCKS_DIR, SQLiteStore, StoreError

__all__ = ["DEFAULT_DISK_MAX_BYTES", "DiskCache", "KEY_ENV", "MAX_BYTES_ENV", "resolve_dir"]

#: Default bound of a disk cache, in bytes of entries (10 GiB).
DEFAULT_DISK_MAX_BYTES = 10 << 30
#: Environment variable holding the secret that signs entries (unset or empty: unsigned).
KEY_ENV = "SKMM_CACHE_KEY"
#: Environment variable overriding the disk bound ("10G", "500MiB" or a number of bytes).
MAX_BYTES_ENV = "SKMM_CACHE_MAX_BYTES"
# Entries read to learn a fingerprint's row length when this process does not know it yet.
_SAMPLE = 16


class DiskCache(BaseCache):
    """Rows stored in one SQLite file under a directory, shared by processes, with a memory front.

    Use :func:`get_cache` with the directory to get the one shared by a
    process.  See :mod:`skmm.cache` for why concurrent writers and damaged
    entries are safe, and who must be trusted to write to the directory.

    Parameters
    ----------
    directory : str or os.PathLike
        Where the database (``skmm-cache.sqlite3``) lives; created when
        the first entry is written.
    max_bytes : int or str, optional
        Bound on the bytes of entries, kept by deleting the least
        recently used ones after writes.  Default: the environment variable
        ``SKMM_CACHE_MAX_BYTES`` (e.g. ``"10G"``) if set, else 10 GiB.  0
        stores nothing on disk.
    key : str or bytes, optional
        Secret that signs entries with a keyed BLAKE2b digest: entries
        written without it, or with another one, are misses.  Default: the
        environment variable ``SKMM_CACHE_KEY``; unset or empty for
        unsigned entries.  It is never stored, printed or pickled.
    memory_max_bytes : int, default=1 GiB
        Bound of the in-memory front (:attr:`memory`).

    Attributes
    ----------
    directory : str
        The resolved directory.
    database : str
        The SQLite file holding the entries.
    store : SQLiteStore
        The database's reader and writer (:mod:`skmm.cache.store`).
    memory : MemoryCache
        The in-memory front, consulted before the disk.
    keyed : bool
        Whether entries are signed with a secret.
    hits, misses : int
        As for :class:`MemoryCache`; hits include those served by the front.
    disk_hits : int
        Rows read from the database.
    corrupt : int
        Stored entries found too large, of the wrong size, failing their
        digest or inconsistent with the other rows, recomputed and rewritten.
    evicted : int
        Entries this object deleted to keep within ``max_bytes``.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from skmm.cache import DiskCache, text_key
    >>> root = tempfile.mkdtemp()
    >>> keys = [text_key("x")]
    >>> DiskCache(root).get_or_compute("fp", keys, lambda pos: np.ones((len(pos), 3)))
    array([[1., 1., 1.]], dtype=float32)
    >>> fresh = DiskCache(root)  # e.g. another process
    >>> fresh.get_or_compute("fp", keys, lambda pos: 1 / 0)
    array([[1., 1., 1.]], dtype=float32)
    >>> fresh.disk_hits, fresh.info()["entries"]
    (1, 1)
    """

    def __init__(self, directory, *, max_bytes=None, key=None, memory_max_bytes=DEFAULT_MAX_BYTES):
        super().__init__()
        self.directory = resolve_dir(directory)
        self.memory = MemoryCache(max_bytes=memory_max_bytes)
        self.store = SQLiteStore(self.directory)
        if max_bytes is None:
            env = os.environ.get(MAX_BYTES_ENV, "").strip()
            max_bytes = eviction.parse_bytes(env, MAX_BYTES_ENV) if env else DEFAULT_DISK_MAX_BYTES
        self.max_bytes = max_bytes
        self.set_key(os.environ.get(KEY_ENV) if key is None else key)
        self.disk_hits = 0
        self.corrupt = 0
        self.evicted = 0
        self._read_warned = False

    def _reset_locks(self):
        super()._reset_locks()
        self._evict_lock = threading.Lock()
        if hasattr(self, "store"):
            self.store.reset_after_fork()

    @property
    def max_bytes(self):
        return self._max_bytes

    @max_bytes.setter
    def max_bytes(self, value):
        # Takes effect at the next write or prune(): changing it deletes nothing.
        self._max_bytes = eviction.parse_bytes(value)

    @property
    def keyed(self):
        return self._mac_key is not None

    @property
    def database(self):
        """Path of the SQLite file holding the entries."""
        return self.store.path

    def set_key(self, key):
        """Sign and check entries with this secret from now on (None or empty: unsigned)."""
        mac = entry.mac_key(key)
        with self._lock:
            self._mac_key = mac

    def __repr__(self):
        return (
            f"{type(self).__name__}({self.directory!r}, max_bytes={self._max_bytes}, "
            f"keyed={self.keyed}, hits={self.hits}, misses={self.misses}, "
            f"disk_hits={self.disk_hits}, corrupt={self.corrupt})"
        )

    def __reduce__(self):
        # The secret never travels: the receiving process reads its own SKMM_CACHE_KEY.
        from .shared import get_cache

        return (get_cache, (self.directory,))

    def reset_stats(self):
        with self._lock:
            super().reset_stats()
            self.disk_hits = 0
            self.corrupt = 0
            self.evicted = 0
        self.memory.reset_stats()

    # ------------------------------------------------------------ entries

    def encode_entry(self, fingerprint, key, row, *, dtype="float32"):
        """The entry bytes this cache stores for ``row`` under ``key`` (signed if :attr:`keyed`).

        Examples
        --------
        >>> import tempfile
        >>> from skmm.cache import DiskCache
        >>> blob = DiskCache(tempfile.mkdtemp()).encode_entry("fp", "t:abc", [1.0, 2.0])
        >>> len(blob)  # a 36-byte header, then the float32 data
        44
        """
        dtype = check_dtype(dtype)
        row = np.ascontiguousarray(row, dtype=dtype).reshape(-1)
        fp_name = space_name(fingerprint, dtype)
        return entry.encode_entry(row, fp_name, storage_name(key), key=self._mac_key)

    # ------------------------------------------------------ get_or_compute parts

    def _compute_lock(self, space):
        # One process computes the missing rows of a fingerprint at a time; the others wait
        # and read them. flock locks go away with their process, so a killed worker never
        # leaves one behind; after LOCK_TIMEOUT_SECONDS a waiter computes anyway.
        path = os.path.join(self.directory, LOCKS_DIR, space_name(*space) + ".lock")
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        except OSError:
            return contextlib.nullcontext()  # an unwritable directory: the rows are computed, not stored
        return ComputeLock(path)

    def _lookup_again(self, space, keys):
        return self._lookup(space, keys, count_corrupt=False)

    def _lookup(self, space, keys, *, count_corrupt=True):
        found = self.memory._lookup(space, keys)
        todo = [u for u, row in enumerate(found) if row is None]
        if not todo:
            return found
        dtype = space[1]
        fp_name = space_name(*space)
        # The row length this process already trusts bounds every read exactly.
        dim = next((row.shape[0] for row in found if row is not None), None)
        if dim is None:
            dim = self.memory._known_dim(space)
        key_names = [storage_name(keys[u]) for u in todo]
        names = [bytes.fromhex(kn) for kn in key_names]
        loaded = []
        if dim is None:
            # Learn the row length from a few entries (each bounded by MAX_ENTRY_BYTES); it then
            # bounds the rest exactly. Rows must agree in length: the odd ones out are damaged or stale.
            loaded = self._load(fp_name, dtype, key_names[:_SAMPLE], names[:_SAMPLE], entry.MAX_ENTRY_BYTES)
            lengths = Counter(row.shape[0] for row in loaded if isinstance(row, np.ndarray))
            if lengths:
                dim = lengths.most_common(1)[0][0]
                loaded = [entry.BAD if isinstance(row, np.ndarray) and row.shape[0] != dim else row for row in loaded]
        if len(loaded) < len(names):
            max_size = entry.MAX_ENTRY_BYTES if dim is None else entry.entry_nbytes(dim, dtype)
            rest = self._load(fp_name, dtype, key_names[len(loaded) :], names[len(loaded) :], max_size)
            if dim is not None:
                rest = [entry.BAD if isinstance(row, np.ndarray) and row.shape[0] != dim else row for row in rest]
            loaded += rest
        read, n_bad = {}, 0
        for u, row in zip(todo, loaded):
            if row is entry.BAD:
                n_bad += 1
            elif row is not None:
                read[u] = row
        for u, row in read.items():
            found[u] = row
        if read:
            self.memory._store(space, [(keys[u], row) for u, row in read.items()])
        with self._lock:
            self.disk_hits += len(read)
            self.corrupt += n_bad if count_corrupt else 0
        return found

    def _load(self, fp_name, dtype, key_names, names, max_size):
        """The rows stored for ``names``: an array, None (not stored) or BAD (too large or unsound)."""
        try:
            stored = self.store.get(fp_name, names, max_size, touch_after=eviction.TOUCH_AFTER_SECONDS)
        except StoreError as exc:
            self._warn_unreadable(exc)
            return [None] * len(names)
        mac = self._mac_key
        loaded = []
        for kn, name in zip(key_names, names):
            if name not in stored:
                loaded.append(None)
                continue
            blob = stored[name]
            row = None if blob is None else entry.decode_entry(blob, fp_name, kn, dtype, key=mac)
            loaded.append(entry.BAD if row is None else row)
        return loaded

    def _warn_unreadable(self, exc):
        with self._lock:
            if self._read_warned:
                return
            self._read_warned = True
        warnings.warn(
            f"skmm could not read the cache database {self.database!r} ({exc}); the rows are computed. "
            f"If it is damaged, delete it with `skmm cache clear {self.directory}`",
            RuntimeWarning,
            stacklevel=5,
        )

    def _store(self, space, items):
        self.memory._store(space, items)
        limit = min(self._max_bytes, entry.MAX_ENTRY_BYTES)
        if limit < entry.HEADER_SIZE:
            return
        fingerprint, dtype = space
        fp_name = space_name(*space)
        mac = self._mac_key
        payloads = []
        for key, row in items:
            key_name = storage_name(key)
            payload = entry.encode_entry(row, fp_name, key_name, key=mac)
            if len(payload) <= limit:
                payloads.append((bytes.fromhex(key_name), payload))
        if not payloads:
            return
        try:
            total = self.store.put(fp_name, fingerprint, dtype.name, payloads)
        except StoreError as exc:
            # The rows are computed and returned; only their storage failed.
            warnings.warn(
                f"skmm could not write embeddings to the cache directory "
                f"{self.directory!r} ({exc}); they were computed but not stored",
                RuntimeWarning,
                stacklevel=4,
            )
            return
        if total > self._max_bytes and self._evict_lock.acquire(blocking=False):  # one evicting thread is enough
            try:
                self._prune_to(self._max_bytes, int(self._max_bytes * eviction.LOW_WATER))
            except StoreError:
                pass  # another process holds the database; the next write evicts
            finally:
                self._evict_lock.release()

    def _known_dim(self, space):
        return self.memory._known_dim(space)

    def _remember_dim(self, space, dim):
        self.memory._remember_dim(space, dim)

    # ------------------------------------------------------- size and eviction

    def _prune_to(self, limit, target):
        entries, size, removed, removed_bytes = self.store.evict(limit, target)
        with self._lock:
            self.evicted += removed
        return {"entries": entries, "bytes": size, "removed_entries": removed, "removed_bytes": removed_bytes}

    def prune(self, max_bytes=None):
        """Delete least recently used entries until the entries total at most ``max_bytes``.

        Parameters
        ----------
        max_bytes : int or str, optional
            The bound to prune to; default :attr:`max_bytes`.  0 empties the
            disk (the memory front is kept).

        Returns
        -------
        summary : dict
            ``entries`` and ``bytes`` left, ``removed_entries`` and
            ``removed_bytes``.
        """
        limit = self._max_bytes if max_bytes is None else eviction.parse_bytes(max_bytes)
        with self._evict_lock:
            return self._prune_to(limit, limit)

    def info(self):
        """What is on disk, read from the database's per-fingerprint counts (no scan of the entries).

        Returns
        -------
        info : dict
            ``directory``, ``database`` (the SQLite file), ``max_bytes``,
            ``keyed``, ``entries`` and ``bytes`` (of entries),
            ``file_bytes`` (the database file and its write-ahead log on
            disk), ``old_layout_dirs`` (subdirectories of an older skmm's
            one-file-per-entry cache, ignored), and ``fingerprints``: one
            dict per stored fingerprint and dtype with ``name`` (its storage
            name), ``fingerprint`` and ``dtype`` (as stored, None if they do
            not match the name; written by anyone who can write the
            directory, so for display only), ``entries`` and ``bytes``.
        """
        fingerprints = []
        for name, fingerprint, dtype, n, size in self.store.spaces():
            try:
                believed = name == space_name(fingerprint, check_dtype(dtype))
            except (TypeError, ValueError):
                believed = False
            if not believed:
                fingerprint = dtype = None
            fingerprints.append(
                {"name": name, "fingerprint": fingerprint, "dtype": dtype, "entries": int(n), "bytes": int(size)}
            )
        file_bytes = 0
        for suffix in ("", "-wal"):
            try:
                file_bytes += os.lstat(self.database + suffix).st_blocks * 512
            except OSError:
                pass
        return {
            "directory": self.directory,
            "database": self.database,
            "max_bytes": self._max_bytes,
            "keyed": self.keyed,
            "entries": sum(f["entries"] for f in fingerprints),
            "bytes": sum(f["bytes"] for f in fingerprints),
            "file_bytes": file_bytes,
            "old_layout_dirs": len(eviction.old_layout_dirs(self.directory)),
            "fingerprints": fingerprints,
        }

    def clear(self, fingerprint=None):
        """Delete stored rows, in memory and on disk, and reset the counters.

        Only the cache's own entries are removed (and, when clearing
        everything, the subdirectories of an older skmm's cache); other
        files in :attr:`directory` are left alone.

        Parameters
        ----------
        fingerprint : str, optional
            Delete only this fingerprint's rows, of every dtype (the counters
            are kept).
        """
        self.memory.clear(fingerprint)
        if fingerprint is None:
            self.reset_stats()
            for path in eviction.old_layout_dirs(self.directory):
                shutil.rmtree(path, ignore_errors=True)
        names = None if fingerprint is None else [space_name(fingerprint, dtype) for dtype in DTYPES]
        try:
            self.store.clear(names)
        except StoreError:
            if fingerprint is not None:
                raise
            # A damaged database: clearing everything deletes the file itself.
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.remove(self.database + suffix)
                except FileNotFoundError:
                    pass
            self.store = SQLiteStore(self.directory)


def resolve_dir(directory):
    """The absolute, symlink-free form of a cache directory, or a TypeError/ValueError."""
    if not isinstance(directory, (str, bytes, os.PathLike)):
        raise TypeError(f"cache_dir must be a path or None, got {type(directory).__name__}")
    directory = os.fsdecode(os.fspath(directory))
    if not directory:
        raise ValueError("cache_dir must be a directory path or None, got ''")
    return os.path.realpath(os.path.expanduser(directory))
