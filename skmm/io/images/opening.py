"""Opening one image file: regular files only, header only, under our pixel limit.

A path in an image column can name anything: a named pipe that blocks forever
when read, a device, a directory. :func:`open_image` refuses everything that
is not a regular file before reading a byte, parses only the header, and
applies ``max_image_pixels`` in place of Pillow's decompression-bomb limit.
"""

import contextlib
import os
import stat
import threading

from PIL import Image, UnidentifiedImageError

from .errors import DECODE_ERRORS, ImageLoadError

__all__ = ["DEFAULT_MAX_IMAGE_PIXELS", "open_image", "open_regular_file"]

# 200 megapixels is about a 14000 x 14000 picture: large enough for every
# scanned poster and big clipart sheet seen in practice (16000 x 10562 is 169
# MP), small enough that the one full-resolution decode we cannot avoid for
# PNG/TIFF/GIF (at most 4 bytes per pixel, i.e. <= 800 MB) fits on an ordinary
# machine. Pillow's own default (~89 MP, an error only above ~179 MP) would
# reject real clipart, so we lift Pillow's check and apply this one instead.
# Pass ``max_image_pixels=None`` to accept anything.
DEFAULT_MAX_IMAGE_PIXELS = 200_000_000

# Every Pillow plugin is imported now, once, rather than by the first
# Image.open that needs it: a DataLoader worker forked while another thread
# is halfway through such an import inherits that module's import lock, held
# by a thread the worker does not have, and its own first open would wait for
# it forever.
Image.init()

# Opening a pipe or a device must not wait for a writer, and a terminal must
# not become our controlling terminal (the flags do not exist on Windows).
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_OPEN_FLAGS = (
    os.O_RDONLY
    | _NONBLOCK
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)

_FILE_KINDS = (
    (stat.S_ISDIR, "is a directory, not a file"),
    (stat.S_ISFIFO, "is a named pipe (FIFO), not a regular file"),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
    (stat.S_ISCHR, "is a character device, not a regular file"),
    (stat.S_ISBLK, "is a block device, not a regular file"),
)


def _not_regular_reason(mode):
    for is_kind, reason in _FILE_KINDS:
        if is_kind(mode):
            return reason
    return "is not a regular file"


def _os_error_reason(exc):
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot open the file ({exc.strerror or exc})"


def open_regular_file(path):
    """Open ``path`` for binary reading if, and only if, it is a regular file.

    Anything else (directory, FIFO, socket, device) is refused from its
    ``stat`` without being opened, so a named pipe cannot block and opening a
    device has no side effect. The file is then opened without blocking and
    checked again, in case the path was replaced in between.

    Parameters
    ----------
    path : str, bytes or os.PathLike
        The file.

    Returns
    -------
    file object
        Opened ``"rb"``; the caller closes it.

    Raises
    ------
    ImageLoadError
        The path is missing, unreadable or not a regular file.
    """
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise ImageLoadError(path, _not_regular_reason(mode))
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise ImageLoadError(path, _os_error_reason(exc)) from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ImageLoadError(path, _not_regular_reason(mode))
        if _NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return open(fd, "rb")


# Pillow's decompression-bomb limit is a module global that Image.open reads.
# While at least one of our opens runs it is None (our own limit, checked from
# the header, decides): the first open in saves Pillow's value, the last one
# out restores it. The lock guards only this bookkeeping, never a file read,
# and is taken around every fork (see the hooks below), so a child process --
# a DataLoader worker forked while another thread was opening a file -- gets
# a free lock and Pillow's value, never a lock held by a thread it does not
# have.
_lift_lock = threading.Lock()
_lifts = 0
_saved_limit = None


@contextlib.contextmanager
def _pillow_limit_lifted():
    global _lifts, _saved_limit
    with _lift_lock:
        if _lifts == 0:
            _saved_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _lifts += 1
    try:
        yield
    finally:
        with _lift_lock:
            _lifts -= 1
            if _lifts == 0:
                Image.MAX_IMAGE_PIXELS = _saved_limit


def _before_fork():
    _lift_lock.acquire()


def _after_fork_in_parent():
    _lift_lock.release()


def _after_fork_in_child():
    global _lift_lock, _lifts
    # The threads whose opens lifted the limit exist only in the parent.
    _lift_lock = threading.Lock()
    if _lifts:
        Image.MAX_IMAGE_PIXELS = _saved_limit
        _lifts = 0


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
    )


@contextlib.contextmanager
def open_image(path, max_image_pixels):
    """Open an image file lazily (header only) under our pixel limit.

    Parameters
    ----------
    path : str, bytes or os.PathLike
        The file.
    max_image_pixels : int or None
        Largest accepted ``width * height``; None accepts any size.

    Yields
    ------
    PIL.Image.Image
        Not decoded yet. The image and its file are closed on exit.

    Raises
    ------
    ImageLoadError
        The file cannot be opened (see :func:`open_regular_file`), is not an
        image Pillow can read, has a corrupt header or too many pixels.
    """
    with open_regular_file(path) as file:
        try:
            with _pillow_limit_lifted():
                img = Image.open(file)
        except UnidentifiedImageError as exc:
            raise ImageLoadError(path, "not an image file Pillow can read") from exc
        except DECODE_ERRORS as exc:
            raise ImageLoadError(path, f"corrupt image header ({exc})") from exc
        try:
            width, height = img.size
            if max_image_pixels is not None and width * height > max_image_pixels:
                raise ImageLoadError(
                    path,
                    f"image is {width} x {height} = {width * height} pixels, more than "
                    f"max_image_pixels={max_image_pixels}; raise max_image_pixels (or "
                    "pass None) to load it",
                )
            yield img
        finally:
            img.close()
