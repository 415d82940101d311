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
:mod:`~skmm.cache.memory`, :mod:`~skmm.cache.disk` (the two caches),
:mod:`~skmm.cache.store` (the SQLite file behind the disk cache),
:mod:`~skmm.cache.entry` (the bytes of one entry),
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

:class:`DiskCache` keeps a :class:`MemoryCache` in front of one SQLite file
in a directory (:mod:`~skmm.cache.store`), bounded by ``max_bytes`` (10 GiB by
default) with the least recently used entries deleted first.  Each entry
carries a digest over its fingerprint, key, header and data, so an entry
damaged in the file, copied under another key or written for another
fingerprint is detected; an entry larger than the row length of its
fingerprint implies is never read, and one that fails its digest or disagrees
with the other rows is treated as a miss: the row is recomputed and the entry
overwritten, never returned.  A database file that is not a regular file (a
symbolic link, a FIFO) is never opened, and one SQLite cannot read (damaged)
is a miss with a :class:`RuntimeWarning`; ``clear()`` deletes it.

Several processes may share a directory: a batch of rows is written in one
SQLite transaction, so a reader in another process sees either none or all
of it, and in WAL mode readers never wait for writers.  A process that misses
rows holds an OS file lock on the fingerprint's file under ``locks/`` while it
computes and stores them, so another process missing the same rows waits and
reads them instead of computing them again (the workers of a search encode
each input once between them; :mod:`~skmm.cache.locking`).  The lock goes
away with its process.  Writing is best effort: if the directory cannot be
written the rows are still returned and a :class:`RuntimeWarning` says so.
A cache directory written by an skmm older than the SQLite store (one file
per entry) is ignored, never read; ``clear()`` deletes its subdirectories.

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

One file per entry, the store before, was measured against SQLite at 10^5
and 10^6 entries (benchmarks/scale.py; BENCHMARKS.md, "Scale"): one file
writes and lists entries far faster and takes about the data's size on disk
(64 KiB pages hold 31 rows of 512 float32) instead of twice it.
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
