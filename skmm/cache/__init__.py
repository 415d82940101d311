"""Embeddings computed once: a cache keyed by encoder fingerprint and input identity.

An encoder whose output does not depend on the training data (a frozen
pretrained backbone, a fixed random one, a fitted vectorizer keyed by its
fitted state) asks the cache for the rows it needs and computes only the ones
it has never seen, so that a grid search over fusion strategies times CV folds
encodes each image once::

    cache = get_cache(cache_dir)                 # None: the process-wide memory cache
    keys = [image_key(p) for p in paths]         # or text_key(t)
    out = cache.get_or_compute(fingerprint, keys, compute)

The package is laid out by job: :mod:`~skmm.cache.keys` (input keys and
storage names), :mod:`~skmm.cache.base` (the ``get_or_compute`` protocol),
:mod:`~skmm.cache.memory`, :mod:`~skmm.cache.disk` (the two stores),
:mod:`~skmm.cache.entry` (the file format of one entry),
:mod:`~skmm.cache.eviction` (the disk's size bound),
:mod:`~skmm.cache.locking` (processes computing the same rows) and
:mod:`~skmm.cache.shared` (:func:`get_cache`).  docs/cache.md is the guide.

Keys
----
An entry is addressed by ``(fingerprint, key)`` and a row dtype (float32, or
uint8 for decoded pixels; rows of each dtype are cached apart).

* ``fingerprint`` is a string made by the encoder that changes whenever its
  output could change: backbone, weights, preprocessing, fitted state.  A stale
  model therefore never meets an old entry.
* ``key`` names one input.  :func:`image_key` is the file's absolute normalised
  path plus its size and modification time in nanoseconds, so rewriting or
  touching a file makes a new key; a missing value or a file that cannot be
  stat'ed gets the key ``None``, which is always computed and never stored (the
  encoder reports the error itself).  :func:`text_key` is a hash of the UTF-8
  text; a missing text shares the key of the empty text.

Memory and disk
---------------
:class:`MemoryCache` is bounded by the bytes of the rows it holds (least
recently used entries go first) and guarded by a lock, so threads may share it.
``get_cache(None)`` returns the same one every time in a process.  Estimators
never hold a cache; they call :func:`get_cache` at transform time, so pickling,
cloning and joblib see nothing of it.

:class:`DiskCache` keeps a :class:`MemoryCache` in front of a directory, one
file per entry, bounded by ``max_bytes`` (10 GiB by default) with the least
recently used entries deleted first.  Each file carries a digest over its
fingerprint, key, header and data, so a truncated, bit-flipped, misplaced or
half-written file is detected; a file that is not a regular file (a symbolic
link, a FIFO, a device), has another size than its header and the row length
of its fingerprint imply, fails its digest or disagrees with the other rows is
treated as a miss: the row is recomputed and the file overwritten, never
returned, and reading it neither blocks nor reads past that size.

Several processes may share a directory: every entry is written to a uniquely
named temporary file in its final directory and moved into place with
:func:`os.replace`, which is atomic, so a reader sees either no file, an old
complete file or a new complete file.  Two processes computing the same entry
write identical bytes; the last rename wins.  Readers lock nothing; a
process that misses rows holds an OS file lock on the fingerprint's ``LOCK``
file while it computes and stores them, so another process missing the same
rows waits and reads them instead of computing them again (the workers of a
search encode each input once between them; :mod:`~skmm.cache.locking`).
The lock goes away with its process, and a crash leaves at most a stray
``.tmp`` file, which is never read (and deleted by eviction after an hour).  Writing is best effort: if the
directory cannot be written the rows are still returned and a
:class:`RuntimeWarning` says so.

Who must be trusted
-------------------
**Anyone who can write to a cache directory can change your model's
predictions** unless entries are signed: the default digest is unkeyed, so a
forged entry with a valid digest is served as if your encoder had computed it.
Set a secret with the environment variable ``SKMM_CACHE_KEY`` (read in every
process, joblib and Dask workers included) or ``get_cache(cache_dir,
key=...)``: entries are then signed with a keyed BLAKE2b, and entries written
without the secret or with another one are misses.  Even with a secret, a
writer can delete entries, fill the disk or slow reads down; only the rows
served are protected.  Use a directory only you can write (``chmod 700``), or
share one only with people and jobs who hold the secret.

One file per entry was measured against the alternatives (4,000 rows of 512
float32 on a local disk): reading them all back with digest checks takes about
50 ms with a warm page cache and 0.25 s cold (eight reader threads; 0.55 s with
one), where ``np.load`` of the same rows as ``.npy`` files takes 145 ms warm.
A hit from the memory front takes about 4 ms.  Per-entry files keep writers
independent, so no shared index has to be locked.
"""

from .disk import DEFAULT_DISK_MAX_BYTES, KEY_ENV, MAX_BYTES_ENV, DiskCache
from .locking import check_cache_dir
from .keys import image_key, text_key
from .memory import DEFAULT_MAX_BYTES, MemoryCache
from .shared import get_cache

__all__ = [
    "DEFAULT_DISK_MAX_BYTES",
    "DEFAULT_MAX_BYTES",
    "KEY_ENV",
    "MAX_BYTES_ENV",
    "DiskCache",
    "MemoryCache",
    "check_cache_dir",
    "get_cache",
    "image_key",
    "text_key",
]
