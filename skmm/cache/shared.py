"""One cache per place, shared by everything in a process: :func:`get_cache`."""

import os
import threading

from .disk import DiskCache, resolve_dir
from .eviction import parse_bytes
from .memory import MemoryCache

__all__ = ["get_cache"]

_MEMORY = MemoryCache()
_MEMORY._process_wide = True
_DISK_CACHES = {}
_REGISTRY_LOCK = threading.Lock()


def get_cache(cache_dir=None, *, key=None, max_bytes=None):
    """The cache an encoder should use: shared by everything in the process.

    Encoders call ``get_cache(cache_dir)``; call it yourself with ``key`` or
    ``max_bytes`` first to configure the cache they will get.

    Parameters
    ----------
    cache_dir : str or os.PathLike, optional
        ``None`` for the process-wide :class:`MemoryCache`; a directory for
        the process's :class:`DiskCache` on it (one per resolved path, so
        ``"~/c"``, ``"/home/me/c"`` and a symlink to it share one).
    key : str or bytes, optional
        Secret that signs the disk cache's entries (see :class:`DiskCache`);
        ``""`` for unsigned entries.  None keeps the cache's current setting,
        which starts from the environment variable ``SKMM_CACHE_KEY``.  Only
        for a ``cache_dir``.
    max_bytes : int or str, optional
        Bound of the returned cache: for a ``cache_dir`` the disk's
        (default ``SKMM_CACHE_MAX_BYTES`` or 10 GiB), else the memory
        cache's (default 1 GiB).  None keeps the current bound.

    Returns
    -------
    cache : MemoryCache or DiskCache
        The same object for the same resolved ``cache_dir`` in this process.

    Examples
    --------
    >>> import tempfile
    >>> from skmm.cache import get_cache
    >>> get_cache() is get_cache(None)
    True
    >>> get_cache().max_bytes == 2**30
    True
    >>> root = tempfile.mkdtemp()
    >>> disk = get_cache(root, key="team secret", max_bytes="2G")
    >>> get_cache(root) is disk, disk.keyed, disk.max_bytes == 2 * 2**30
    (True, True, True)
    """
    if cache_dir is None:
        if key is not None:
            raise ValueError("key signs disk entries: pass a cache_dir with it")
        if max_bytes is not None:
            _MEMORY.max_bytes = parse_bytes(max_bytes)
        return _MEMORY
    directory = resolve_dir(cache_dir)
    with _REGISTRY_LOCK:
        cache = _DISK_CACHES.get(directory)
        if cache is None:
            cache = _DISK_CACHES[directory] = DiskCache(directory, max_bytes=max_bytes, key=key)
            return cache
    if max_bytes is not None:
        cache.max_bytes = max_bytes
    if key is not None:
        cache.set_key(key)
    return cache


def _after_fork_in_child():
    global _REGISTRY_LOCK
    _REGISTRY_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
