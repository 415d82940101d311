"""What a disk cache holds, and deleting its least recently used entries.

Each fingerprint's subdirectory holds a FINGERPRINT file naming it (written
by anyone who can write the directory, so for display only), and entry files.

Entries are ordered by modification time, which a write sets and a read
refreshes (:func:`skmm.cache.entry.load_entry` with ``touch_after``), so the
oldest is the least recently used.  Nothing here follows a symbolic link: a
link planted in the directory is neither counted nor descended into.
"""

import os
import time
from typing import NamedTuple

import numpy as np

from .base import DTYPES
from .entry import SUFFIX, read_regular_file
from .keys import is_storage_name, space_name

__all__ = [
    "MARKER",
    "EntryFile",
    "delete_oldest",
    "marker_text",
    "parse_bytes",
    "read_marker",
    "scan_entries",
    "scandir",
]

#: The file in each fingerprint's subdirectory that names it, for humans and info().
MARKER = "FINGERPRINT"
_MARKER_MAX_BYTES = 1 << 16

#: A temporary file older than this was left by a crashed writer and is deleted.
STALE_TMP_SECONDS = 3600.0
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class EntryFile(NamedTuple):
    mtime_ns: int
    size: int
    path: str
    space: str  # the name of its fingerprint's subdirectory


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


def scandir(path):
    """The entries of a directory as a list; empty if it cannot be listed."""
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError:
        return []


def scan_entries(directory):
    """Every entry file under ``directory`` as an :class:`EntryFile`.

    Only ``<storage name>/<2 characters>/*.emb`` regular files count.
    Temporary files of crashed writers older than an hour are deleted on
    the way.
    """
    found = []
    now = time.time()
    for space in scandir(directory):
        if not is_storage_name(space.name) or not space.is_dir(follow_symlinks=False):
            continue
        for sub in scandir(space.path):
            if len(sub.name) != 2 or not sub.is_dir(follow_symlinks=False):
                continue
            for f in scandir(sub.path):
                try:
                    if not f.is_file(follow_symlinks=False):
                        continue
                    if f.name.endswith(SUFFIX):
                        st = f.stat(follow_symlinks=False)
                        found.append(EntryFile(st.st_mtime_ns, st.st_size, f.path, space.name))
                    elif f.name.startswith(".") and f.name.endswith(".tmp"):
                        if now - f.stat(follow_symlinks=False).st_mtime > STALE_TMP_SECONDS:
                            os.remove(f.path)
                except OSError:  # removed meanwhile
                    continue
    return found


def delete_oldest(files, target):
    """Delete the oldest of ``files`` until they total at most ``target`` bytes.

    Returns
    -------
    removed, removed_bytes : int
    """
    total = sum(f.size for f in files)
    removed = removed_bytes = 0
    emptied = set()
    for f in sorted(files):
        if total - removed_bytes <= target:
            break
        try:
            os.remove(f.path)
        except FileNotFoundError:  # another process evicted it first
            pass
        except OSError:
            continue
        removed += 1
        removed_bytes += f.size
        emptied.add(os.path.dirname(f.path))
    for directory in emptied:
        try:
            os.rmdir(directory)  # succeeds only if nothing is left in it
        except OSError:
            pass
    return removed, removed_bytes


def marker_text(fingerprint, dtype):
    """The content of the FINGERPRINT file of ``fingerprint``'s rows of ``dtype``."""
    name = np.dtype(dtype).name
    return f"{fingerprint}\n" if name == "float32" else f"{fingerprint}\ndtype={name}\n"


def read_marker(space_dir):
    """(fingerprint, dtype name) from a subdirectory's FINGERPRINT file, or (None, None).

    The file is believed only if it names the fingerprint and dtype whose
    :func:`~skmm.cache.keys.space_name` is the subdirectory's name.
    """
    blob = read_regular_file(os.path.join(space_dir, MARKER), _MARKER_MAX_BYTES)
    try:
        text = blob.decode("utf-8", "surrogatepass")
    except (AttributeError, UnicodeDecodeError):  # no file, or not text
        return None, None
    name = os.path.basename(space_dir)
    for dtype in DTYPES:
        tail = marker_text("", dtype)  # "\n" or "\ndtype=...\n"
        fingerprint = text[: len(text) - len(tail)]
        if text.endswith(tail) and space_name(fingerprint, dtype) == name:
            return fingerprint, dtype.name
    return None, None
