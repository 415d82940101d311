"""Rows stored under a directory: shared by processes, checked, signed and bounded.

Layout::

    cache_dir/<space name>/FINGERPRINT          the fingerprint (and dtype), for humans
    cache_dir/<space name>/<kn[:2]>/<kn>.emb    one entry (:mod:`skmm.cache.entry`)

where the space name is the :func:`~skmm.cache.keys.storage_name` of the
fingerprint (of the fingerprint and the dtype for rows other than float32)
and ``kn`` that of the key.  The disk is bounded by ``max_bytes``: after a
write that takes the estimated total past it, the least recently used entries
(by modification time, which a read refreshes when it is over a minute old)
are deleted until the total is 10% below it.  The estimate is the total
found by the last scan of the directory plus what this process wrote since;
the directory is scanned again after a tenth of ``max_bytes`` was written or
ten minutes passed, so other processes' writes are noticed without a scan per
write.
"""

import contextlib
import os
import shutil
import threading
import time
import warnings
from collections import Counter

import numpy as np

from . import entry, eviction
from .base import DTYPES, BaseCache, check_dtype
from .locking import LOCK_FILE, ComputeLock
from .keys import is_storage_name, space_name, storage_name
from .memory import DEFAULT_MAX_BYTES, MemoryCache

__all__ = ["DEFAULT_DISK_MAX_BYTES", "DiskCache", "KEY_ENV", "MAX_BYTES_ENV", "resolve_dir"]

#: Default bound of a disk cache, in bytes of entry files (10 GiB).
DEFAULT_DISK_MAX_BYTES = 10 << 30
#: Environment variable holding the secret that signs entries (unset or empty: unsigned).
KEY_ENV = "SKMM_CACHE_KEY"
#: Environment variable overriding the disk bound ("10G", "500MiB" or a number of bytes).
MAX_BYTES_ENV = "SKMM_CACHE_MAX_BYTES"

#: A read refreshes an entry's modification time when it is older than this.
TOUCH_AFTER_SECONDS = 60.0
_RESCAN_SECONDS = 600.0
_LOW_WATER = 0.9
# Reading many small files from a cold disk is latency bound; a few threads
# overlap the waits (4,000 files: 0.77 s with one thread, 0.24 s with eight).
_READ_THREADS = 8
_THREADED_READ_MIN = 256
_SAMPLE = 16


def _with_length(row, dim):
    return entry.BAD if isinstance(row, np.ndarray) and row.shape[0] != dim else row


class DiskCache(BaseCache):
    """Rows stored under a directory, shared by processes, with a memory front.

    Use :func:`get_cache` with the directory to get the one shared by a
    process.  See :mod:`skmm.cache` for why concurrent writers and damaged
    files are safe, and who must be trusted to write to the directory.

    Parameters
    ----------
    directory : str or os.PathLike
        Where the entries live; created when the first entry is written.
    max_bytes : int or str, optional
        Bound on the bytes of entry files, kept by deleting the least
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
    memory : MemoryCache
        The in-memory front, consulted before the disk.
    keyed : bool
        Whether entries are signed with a secret.
    hits, misses : int
        As for :class:`MemoryCache`; hits include those served by the front.
    disk_hits : int
        Rows read from files.
    corrupt : int
        Files found unreadable, not regular files, of the wrong size,
        failing their digest or inconsistent, recomputed and rewritten.
    evicted : int
        Entry files this object deleted to keep within ``max_bytes``.

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
        if max_bytes is None:
            env = os.environ.get(MAX_BYTES_ENV, "").strip()
            max_bytes = eviction.parse_bytes(env, MAX_BYTES_ENV) if env else DEFAULT_DISK_MAX_BYTES
        self.max_bytes = max_bytes
        self.set_key(os.environ.get(KEY_ENV) if key is None else key)
        self.disk_hits = 0
        self.corrupt = 0
        self.evicted = 0
        self._spaces_written = set()
        self._scanned_bytes = None  # total found by the last scan; None: never scanned
        self._scanned_at = 0.0
        self._written_since_scan = 0

    def _reset_locks(self):
        super()._reset_locks()
        self._evict_lock = threading.Lock()

    @property
    def max_bytes(self):
        return self._max_bytes

    @max_bytes.setter
    def max_bytes(self, value):
        # Takes effect at the next write or prune(): changing it touches no file.
        self._max_bytes = eviction.parse_bytes(value)

    @property
    def keyed(self):
        return self._mac_key is not None

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

    # ------------------------------------------------------------ entry files

    def entry_path(self, fingerprint, key, *, dtype="float32"):
        """Path of the file that holds (or would hold) the row of ``key``.

        Examples
        --------
        >>> import os, tempfile
        >>> from skmm.cache import DiskCache
        >>> path = DiskCache(tempfile.mkdtemp()).entry_path("fp", "t:abc")
        >>> os.path.basename(path).endswith(".emb")
        True
        """
        fp_name = space_name(fingerprint, check_dtype(dtype))
        key_name = storage_name(key)
        return os.path.join(self.directory, fp_name, key_name[:2], key_name + entry.SUFFIX)

    def encode_entry(self, fingerprint, key, row, *, dtype="float32"):
        """The bytes this cache writes to :meth:`entry_path` for ``row`` (signed if :attr:`keyed`)."""
        dtype = check_dtype(dtype)
        row = np.ascontiguousarray(row, dtype=dtype).reshape(-1)
        fp_name = space_name(fingerprint, dtype)
        return entry.encode_entry(row, fp_name, storage_name(key), key=self._mac_key)

    # ------------------------------------------------------ get_or_compute parts

    def _compute_lock(self, space):
        # One process computes the missing rows of a fingerprint at a time; the others wait
        # and read them. flock locks go away with their process, so a killed worker never
        # leaves one behind; after LOCK_TIMEOUT_SECONDS a waiter computes anyway.
        path = os.path.join(self.directory, space_name(*space), LOCK_FILE)
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
        fp_dir = os.path.join(self.directory, fp_name)
        # The row length this process already trusts bounds every read exactly.
        dim = next((row.shape[0] for row in found if row is not None), None)
        if dim is None:
            dim = self.memory._known_dim(space)
        key_names = [storage_name(keys[u]) for u in todo]
        jobs = [(os.path.join(fp_dir, kn[:2], kn + entry.SUFFIX), kn) for kn in key_names]
        loaded = []
        if dim is None:
            # Learn the row length from a few entries (each read bounded by its
            # header and MAX_ENTRY_BYTES); it then bounds the rest exactly.
            loaded = self._load_all(jobs[:_SAMPLE], fp_name, dtype, None)
            lengths = Counter(row.shape[0] for row in loaded if isinstance(row, np.ndarray))
            if lengths:
                # Rows must agree in length; the odd ones out are damaged or stale.
                dim = lengths.most_common(1)[0][0]
                loaded = [_with_length(row, dim) for row in loaded]
        loaded += self._load_all(jobs[len(loaded) :], fp_name, dtype, dim)
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

    def _load_all(self, jobs, fp_name, dtype, dim):
        mac = self._mac_key

        def load(chunk):
            return [
                entry.load_entry(
                    path, fp_name, kn, dtype, dim=dim, key=mac, touch_after=TOUCH_AFTER_SECONDS
                )
                for path, kn in chunk
            ]

        if len(jobs) < _THREADED_READ_MIN:
            return load(jobs)
        from concurrent.futures import ThreadPoolExecutor

        size = -(-len(jobs) // _READ_THREADS)
        chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        with ThreadPoolExecutor(len(chunks)) as pool:
            return [row for rows in pool.map(load, chunks) for row in rows]

    def _store(self, space, items):
        self.memory._store(space, items)
        limit = min(self._max_bytes, entry.MAX_ENTRY_BYTES)
        if limit < entry.HEADER_SIZE:
            return
        fp_name = space_name(*space)
        fp_dir = os.path.join(self.directory, fp_name)
        mac = self._mac_key
        written, failed, first_error = 0, 0, None
        try:
            if space not in self._spaces_written:
                os.makedirs(fp_dir, exist_ok=True)
                marker = os.path.join(fp_dir, eviction.MARKER)
                if not os.path.lexists(marker):
                    entry.atomic_write(marker, eviction.marker_text(*space).encode("utf-8", "surrogatepass"))
                with self._lock:
                    self._spaces_written.add(space)
        except OSError as exc:
            first_error, items = exc, []
        for key, row in items:
            key_name = storage_name(key)
            payload = entry.encode_entry(row, fp_name, key_name, key=mac)
            if len(payload) > limit:
                continue
            try:
                entry.atomic_write(os.path.join(fp_dir, key_name[:2], key_name + entry.SUFFIX), payload)
            except OSError as exc:  # e.g. a directory planted where the entry goes
                failed += 1
                first_error = first_error or exc
                if failed >= 3 and not written:  # a read-only directory fails them all
                    break
            else:
                written += len(payload)
        if first_error is not None:
            # The rows are computed and returned; only their storage failed.
            warnings.warn(
                f"skmm could not write embeddings to the cache directory "
                f"{self.directory!r} ({first_error}); they were computed but not stored",
                RuntimeWarning,
                stacklevel=4,
            )
        if written:
            self._after_write(written)

    def _known_dim(self, space):
        return self.memory._known_dim(space)

    def _remember_dim(self, space, dim):
        self.memory._remember_dim(space, dim)

    # ------------------------------------------------------- size and eviction

    def _after_write(self, nbytes):
        with self._lock:
            self._written_since_scan += nbytes
            scanned = self._scanned_bytes
            due = (
                scanned is None
                or scanned + self._written_since_scan > self._max_bytes
                or self._written_since_scan > self._max_bytes // 10
                or time.monotonic() - self._scanned_at > _RESCAN_SECONDS
            )
        if due and self._evict_lock.acquire(blocking=False):  # one evicting thread is enough
            try:
                self._prune_to(self._max_bytes, int(self._max_bytes * _LOW_WATER))
            finally:
                self._evict_lock.release()

    def _prune_to(self, limit, target):
        """Delete least recently used entries if the total exceeds ``limit``, down to ``target``."""
        files = eviction.scan_entries(self.directory)
        total = sum(f.size for f in files)
        removed, removed_bytes = eviction.delete_oldest(files, target) if total > limit else (0, 0)
        with self._lock:
            self._scanned_bytes = total - removed_bytes
            self._scanned_at = time.monotonic()
            self._written_since_scan = 0
            self.evicted += removed
        return {
            "entries": len(files) - removed,
            "bytes": total - removed_bytes,
            "removed_entries": removed,
            "removed_bytes": removed_bytes,
        }

    def prune(self, max_bytes=None):
        """Delete least recently used entries until the files total at most ``max_bytes``.

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
        """What is on disk, counted by one scan of the directory.

        Returns
        -------
        info : dict
            ``directory``, ``max_bytes``, ``keyed``, ``entries`` and ``bytes``
            (of entry files), and ``fingerprints``: one dict per stored
            fingerprint and dtype with ``name`` (the subdirectory),
            ``fingerprint`` and ``dtype`` (from its FINGERPRINT file, None if
            that is missing or does not match the name; written by anyone
            who can write the directory, so for display only), ``entries``
            and ``bytes``.
        """
        per_space = {}
        for f in eviction.scan_entries(self.directory):
            count = per_space.setdefault(f.space, [0, 0])
            count[0] += 1
            count[1] += f.size
        fingerprints = []
        for name, (n, size) in sorted(per_space.items()):
            fingerprint, dtype = eviction.read_marker(os.path.join(self.directory, name))
            fingerprints.append(
                {"name": name, "fingerprint": fingerprint, "dtype": dtype, "entries": n, "bytes": size}
            )
        return {
            "directory": self.directory,
            "max_bytes": self._max_bytes,
            "keyed": self.keyed,
            "entries": sum(f["entries"] for f in fingerprints),
            "bytes": sum(f["bytes"] for f in fingerprints),
            "fingerprints": fingerprints,
        }

    def clear(self, fingerprint=None):
        """Delete stored rows, in memory and on disk, and reset the counters.

        Only the cache's own subdirectories (named by storage names) are
        removed; other files in :attr:`directory` are left alone.

        Parameters
        ----------
        fingerprint : str, optional
            Delete only this fingerprint's rows, of every dtype (the counters
            are kept).
        """
        self.memory.clear(fingerprint)
        if fingerprint is None:
            self.reset_stats()
            names = [d.name for d in eviction.scandir(self.directory) if is_storage_name(d.name)]
        else:
            names = [space_name(fingerprint, dtype) for dtype in DTYPES]
        for name in names:
            path = os.path.join(self.directory, name)
            if os.path.islink(path):
                os.remove(path)
            else:
                shutil.rmtree(path, ignore_errors=True)
        with self._lock:
            if fingerprint is None:
                self._spaces_written.clear()
            else:
                self._spaces_written = {s for s in self._spaces_written if s[0] != fingerprint}
            self._scanned_bytes = None


def resolve_dir(directory):
    """The absolute, symlink-free form of a cache directory, or a TypeError/ValueError."""
    if not isinstance(directory, (str, bytes, os.PathLike)):
        raise TypeError(f"cache_dir must be a path or None, got {type(directory).__name__}")
    directory = os.fsdecode(os.fspath(directory))
    if not directory:
        raise ValueError("cache_dir must be a directory path or None, got ''")
    return os.path.realpath(os.path.expanduser(directory))
