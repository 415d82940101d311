"""The disk cache's size bound: parsing it, and what is deleted to keep it.

The bound counts the bytes of stored entries (each row's data and its
36-byte header).  After a write takes the total past ``max_bytes``, the
least recently used entries are deleted until the total is 10% below it
(:meth:`skmm.cache.store.SQLiteStore.evict`).  An entry's time of last use
is set when it is written and refreshed when it is read more than a minute
after the last refresh, so eviction order costs no write per read.  The
total is kept by triggers in the database, so checking the bound after a
write reads one small table, never the entries.
"""

import os

import numpy as np

from .keys import is_storage_name

__all__ = ["LOW_WATER", "TOUCH_AFTER_SECONDS", "old_layout_dirs", "parse_bytes"]

#: A read refreshes an entry's time of last use when it is older than this.
TOUCH_AFTER_SECONDS = 60.0
#: Eviction goes down to this fraction of ``max_bytes``.
LOW_WATER = 0.9
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_bytes(value, name="max_bytes"):
    """A byte count from an int or a string such as ``"10G"``, ``"512MiB"`` or ``"1000"``.

    Examples
    --------
    >>> from skmm.cache.eviction import parse_bytes
    >>> parse_bytes("10G") == 10 * 2**30, parse_bytes("512 MiB") == 2**29, parse_bytes(7)
    (True, True, 7)
    """
    if isinstance(value, str):
        text = value.strip().lower().removesuffix("b").removesuffix("i")
        unit = text[-1:] if text[-1:] in _UNITS else ""
        try:
            number = float(text[: len(text) - len(unit)].strip()) * _UNITS[unit]
        except ValueError:
            number = float("nan")
        if not 0 <= number < 2**63:
            raise ValueError(f"{name} must be a number of bytes such as 10G or 500MiB, got {value!r}")
        return int(number)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def old_layout_dirs(directory):
    """The subdirectories of an older skmm's cache (one file per entry) in ``directory``.

    Their names are 32 hex digits; symbolic links are not counted.  The
    current store ignores them (they are never read); :meth:`DiskCache.clear`
    deletes them.
    """
    try:
        with os.scandir(directory) as it:
            return sorted(
                d.path for d in it if is_storage_name(d.name) and d.is_dir(follow_symlinks=False)
            )
    except OSError:
        return []
