"""Names for cache entries: the key of an image file or a text, and storage names.

An entry is addressed by ``(fingerprint, key)``: the fingerprint names the
encoder's output function, the key names one input.  On disk both are stored
under :func:`storage_name`, a fixed-length hash, so that any string is a safe
file name.
"""

import hashlib
import os
import stat

import numpy as np

from ..utils.validation import is_missing

__all__ = ["image_key", "is_storage_name", "space_name", "storage_name", "text_key"]

#: Length of a :func:`storage_name` (hex digits).
STORAGE_NAME_LENGTH = 32


def image_key(path):
    """Identity of an image file: its absolute path, size and modification time.

    Parameters
    ----------
    path : str, bytes or os.PathLike
        The file.  Missing values (``None``, NaN, ``pandas.NA``, ``""``) and
        anything that is not a path are accepted.

    Returns
    -------
    key : str or None
        ``"i:<size>:<mtime_ns>:<absolute normalised path>"``, or ``None`` when
        the value is missing, the file cannot be stat'ed or is not a regular
        file.  A ``None`` key is always computed and never stored, so the
        encoder meets the bad input itself and reports it.

    Examples
    --------
    >>> import os, tempfile
    >>> from skmm.cache import image_key
    >>> fd, p = tempfile.mkstemp(suffix=".png"); os.close(fd)
    >>> image_key(p).startswith("i:0:")
    True
    >>> image_key(None) is None, image_key(p + ".gone") is None
    (True, True)
    >>> os.remove(p)
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        return None
    try:
        path = os.fsdecode(os.fspath(path))
        if not path:
            return None
        path = os.path.normcase(os.path.abspath(path))
        st = os.stat(path)
    except (OSError, ValueError, TypeError):  # ValueError: embedded NUL byte
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    # The numbers first and the path last keep the key unambiguous for any path.
    return f"i:{st.st_size}:{st.st_mtime_ns}:{path}"


def text_key(text):
    """Identity of a text: ``"t:"`` and the BLAKE2b hash of its UTF-8 bytes.

    Parameters
    ----------
    text : str or None
        The text.  Missing values (``None``, NaN, ``pandas.NA``) get the key of
        the empty text; bytes are decoded as UTF-8; anything else goes through
        ``str``.  Every string, blank ones included, is hashed as it is: a
        model may encode ``"  "`` differently from ``""``.

    Returns
    -------
    key : str
        ``"t:"`` followed by the hash in lowercase hex digits.

    Examples
    --------
    >>> from skmm.cache import text_key
    >>> text_key("red shoes") == text_key("red shoes") != text_key("red shoe")
    True
    >>> text_key(None) == text_key("")
    True
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    elif not isinstance(text, str):
        # is_missing also calls blank strings missing; strings never get here.
        text = "" if is_missing(text) else str(text)
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=20)
    return "t:" + digest.hexdigest()


def storage_name(text):
    """The name under which a fingerprint or a key is stored on disk.

    Parameters
    ----------
    text : str

    Returns
    -------
    name : str
        32 lowercase hex digits (a 128-bit BLAKE2b hash of the UTF-8 text).

    Examples
    --------
    >>> from skmm.cache.keys import storage_name
    >>> len(storage_name("any fingerprint")), storage_name("a") == storage_name("a")
    (32, True)
    """
    return hashlib.blake2b(
        text.encode("utf-8", "surrogatepass"), digest_size=STORAGE_NAME_LENGTH // 2
    ).hexdigest()


def is_storage_name(name):
    """Whether ``name`` looks like a :func:`storage_name` (and so was made by the cache)."""
    return len(name) == STORAGE_NAME_LENGTH and all(c in "0123456789abcdef" for c in name)


def space_name(fingerprint, dtype):
    """The storage name of the subdirectory holding ``fingerprint``'s rows of ``dtype``.

    float32 rows, the default, are stored under the fingerprint's own
    storage name; rows of another dtype under that of the fingerprint and
    the dtype's name, so that the two never meet.
    """
    name = np.dtype(dtype).name
    return storage_name(fingerprint if name == "float32" else f"{fingerprint}\x00{name}")
