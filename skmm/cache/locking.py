"""Processes sharing a cache directory: who computes missing rows, and whether it can be written.

A process that misses rows of a fingerprint holds :class:`ComputeLock` on
``locks/<space>.lock`` while it computes and stores them; another process missing
the same rows waits, then reads what the first one stored and computes only
what is still missing.  So the workers of a grid search (joblib or Dask
processes, on one machine or several mounting the same directory) encode
each input once between them.  The lock is an OS file lock
(:mod:`filelock`), released by the kernel when its process dies, so a killed
worker never leaves one behind.
"""

import os
import tempfile

import filelock

__all__ = ["LOCK_TIMEOUT_SECONDS", "ComputeLock", "check_cache_dir"]

#: How long a process waits for another one computing the same fingerprint's rows.
LOCK_TIMEOUT_SECONDS = 1800.0


class ComputeLock:
    """A :class:`filelock.FileLock` that, past its timeout or on a file system without
    locks, lets the caller go ahead unlocked (duplicate work, never a wrong row)."""

    def __init__(self, path):
        self._lock = filelock.FileLock(path, timeout=LOCK_TIMEOUT_SECONDS)
        self._held = False

    def __enter__(self):
        try:
            self._lock.acquire()
            self._held = True
        except (filelock.Timeout, OSError):
            self._held = False
        return self

    def __exit__(self, *exc):
        if self._held:
            self._lock.release()
        return False


def check_cache_dir(directory):
    """The resolved ``directory`` if this process can keep a disk cache there, else a ValueError.

    The directory is created if needed, and a file is written in it and
    deleted.  Encoders call it in ``fit``, so that a
    mistyped, read-only or unmounted ``cache_dir`` stops a search or a
    training run at once rather than silently computing without a cache.

    Examples
    --------
    >>> import tempfile
    >>> from skmm.cache import check_cache_dir
    >>> check_cache_dir(tempfile.mkdtemp()).startswith("/")
    True
    >>> check_cache_dir("/dev/null/cache")
    Traceback (most recent call last):
    ...
    ValueError: cache_dir='/dev/null/cache' cannot hold a cache: Not a directory; ...
    """
    from .disk import resolve_dir  # disk.py imports this module

    path = resolve_dir(directory)
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        problem = f"{exc.strerror or exc}"
    else:
        return path
    raise ValueError(
        f"cache_dir={os.fsdecode(os.fspath(directory))!r} cannot hold a cache: {problem}; give a directory "
        "every process of the job can write (on a cluster: storage every worker mounts), or cache_dir=None"
    )
