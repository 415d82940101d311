"""What can go wrong with an image path, and how it is reported.

:class:`ImageLoadError` names the path and a short reason, and, once the
loader knows them, the row and the column; the helpers here turn decoding
exceptions and bad cell types into those reasons and messages.
"""

import numbers
import os
import struct
import zlib

from PIL import Image

from ...utils.validation import is_missing

__all__ = ["DECODE_ERRORS", "ImageLoadError", "check_path", "check_path_type", "decode_reason", "format_row"]

# Decoding errors Pillow and its codecs raise for corrupt or truncated data.
DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    struct.error,
    zlib.error,
    Image.DecompressionBombError,
)


class ImageLoadError(ValueError):
    """An image file could not be loaded.

    Parameters
    ----------
    path : str
        The file that failed.
    reason : str
        A short, human-readable explanation ("file not found", ...).
    row : object, optional
        The row label (DataFrame index label or position) the path came from.
    column : str, optional
        The column the path came from.

    Attributes
    ----------
    path, reason, row, column
        As given; ``row`` and ``column`` are None when unknown.

    Examples
    --------
    >>> from skmm.io.images import ImageLoadError, load_image
    >>> try:
    ...     load_image("no/such/file.png", 32)
    ... except ImageLoadError as err:
    ...     print(err.reason)
    file not found
    """

    def __init__(self, path, reason, *, row=None, column=None):
        self.path = str(path)
        self.reason = reason
        self.row = row
        self.column = column
        super().__init__(self._message())

    def __reduce__(self):
        # Keyword-only arguments need an explicit recipe to survive pickling
        # (e.g. across DataLoader worker processes).
        return (_rebuild_error, (self.path, self.reason, self.row, self.column))

    def _message(self):
        where = []
        if self.row is not None:
            where.append(f"row {format_row(self.row)}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        prefix = f"Could not load image in {', '.join(where)}" if where else "Could not load image"
        return f"{prefix}: {self.path!r}: {self.reason}"


def _rebuild_error(path, reason, row, column):
    return ImageLoadError(path, reason, row=row, column=column)


def format_row(row):
    """A row label as people write it: ``3`` for any integer (not ``np.int64(3)``), else its repr."""
    if isinstance(row, numbers.Integral):
        return str(int(row))
    return repr(row)


def decode_reason(exc):
    """The :attr:`ImageLoadError.reason` for an exception raised while decoding."""
    text = str(exc)
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return f"file is truncated ({text})" if text else "file is truncated"
    if isinstance(exc, MemoryError):
        return "not enough memory to decode the image"
    if isinstance(exc, Image.DecompressionBombError):
        return f"rejected by Pillow's decompression-bomb check ({text})"
    return f"corrupt or unsupported image data ({type(exc).__name__}: {text})"


def check_path(path):
    """``os.fspath(path)``, or a TypeError unless ``path`` is a str or os.PathLike."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be str or os.PathLike, got {type(path).__name__} {path!r}.")
    return os.fspath(path)


def check_path_type(value, position, *, column=None, index=None):
    """Raise a TypeError naming the row unless ``value`` is missing, a str or an os.PathLike."""
    if is_missing(value) or isinstance(value, (str, os.PathLike)):
        return
    row = index[position] if index is not None else position
    where = f"row {format_row(row)}"
    if column is not None:
        where += f", column {column!r}"
    raise TypeError(f"Image paths must be str or os.PathLike, got {type(value).__name__} {value!r} in {where}.")
