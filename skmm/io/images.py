"""Loading image files into fixed-size RGB arrays, whatever the file holds.

Every function here turns a path into a ``(3, S, S)`` ``uint8`` array (CHW,
RGB). Real image columns hold every Pillow mode, rotated phone photos, broken
downloads, text files named ``.png`` and clipart tens of thousands of pixels
wide, so the loader:

* converts every mode to RGB, compositing transparency on white;
* applies the EXIF orientation;
* keeps memory bounded for huge files (JPEG decodes at reduced scale, other
  formats are converted and reduced strip by strip, transparent ones as
  premultiplied pixels that are composited on white only at the output size);
* reports every failure as an :class:`ImageLoadError` (a ``ValueError``) that
  names the path, and, from :func:`load_images`, the row and the column.

:func:`load_images` loads a whole column at once; :func:`load_images_parallel`
streams batches through a :class:`torch.utils.data.DataLoader` so worker
processes can decode in parallel, in chunks of a few images so that one huge
file does not hold up a whole batch. Both apply the same ``on_error`` policy.
"""

import collections
import math
import multiprocessing
import numbers
import os
import struct
import threading
import warnings
import zlib

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "DEFAULT_MAX_IMAGE_PIXELS",
    "ImageFolderDataset",
    "ImageLoadError",
    "is_missing",
    "load_image",
    "load_images",
    "load_images_parallel",
    "resolve_num_workers",
]

# 200 megapixels is about a 14000 x 14000 picture: large enough for every
# scanned poster and big clipart sheet seen in practice (16000 x 10562 is 169
# MP), small enough that the one full-resolution decode we cannot avoid for
# PNG/TIFF/GIF (at most 4 bytes per pixel, i.e. <= 800 MB) fits on an ordinary
# machine. Pillow's own default (~89 MP, an error only above ~179 MP) would
# reject real clipart, so we lift Pillow's check and apply this one instead.
# Pass ``max_image_pixels=None`` to accept anything.
DEFAULT_MAX_IMAGE_PIXELS = 200_000_000

_RESIZE_MODES = ("pad", "stretch", "crop")
_ON_ERROR = ("raise", "warn", "ignore")
_WHITE = (255, 255, 255)

# Integer reduction leaves at least this factor for the final resampling
# filter (Pillow's ``reducing_gap``; 2.0 is what ``Image.thumbnail`` uses). On
# clipart it differs from a single fair Lanczos resize by 0.06 grey levels on
# average, and takes a third of its time on a typical 1-MP file.
_REDUCING_GAP = 2.0

# Colour conversion runs on horizontal strips of about this many pixels, so the
# temporary copies stay at a few MB however big the image is. Strips this small
# also stay in the CPU cache between the crop, the conversion and the reduction:
# on a 105-MP RGBA PNG, 0.5 MP strips take about half the time 4 MP strips do.
_STRIP_PIXELS = 500_000

# Pillow's decompression-bomb limit is a module global. We lift it only while
# a header is parsed, under a lock, so concurrent loads in this process do not
# restore each other's value halfway.
_PIXEL_LIMIT_LOCK = threading.Lock()

# EXIF orientation tag value -> the transpose that undoes it (the same table
# as PIL.ImageOps.exif_transpose). We apply it ourselves, after reduction, so
# a rotated 50 MP photo is never copied at full size just to turn it.
_ORIENTATION_TAG = 0x0112
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_WIDE_MODES = ("I", "F")  # plus every "I;16..." variant, see _is_wide_mode

# Decoding errors Pillow and its codecs raise for corrupt or truncated data.
_DECODE_ERRORS = (
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
            where.append(f"row {_format_row(self.row)}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        prefix = f"Could not load image in {', '.join(where)}" if where else (
            "Could not load image"
        )
        return f"{prefix}: {self.path!r}: {self.reason}"


def _rebuild_error(path, reason, row, column):
    return ImageLoadError(path, reason, row=row, column=column)


def _format_row(row):
    # numpy integers repr as "np.int64(3)"; people want "3".
    if isinstance(row, numbers.Integral):
        return str(int(row))
    return repr(row)


def is_missing(value):
    """Tell whether a cell of a path column holds no path.

    ``None``, float NaN (Python or NumPy), ``pd.NA``, ``pd.NaT`` and empty or
    whitespace-only strings count as missing.

    Parameters
    ----------
    value : object
        One cell.

    Returns
    -------
    bool

    Examples
    --------
    >>> from skmm.io.images import is_missing
    >>> [is_missing(v) for v in (None, float("nan"), "  ", "cat.png")]
    [True, True, True, False]
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (float, np.floating)):
        return bool(np.isnan(value))
    return False


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _validate_image_size(image_size):
    if not _is_int(image_size) or image_size < 1:
        raise ValueError(
            f"image_size must be a positive integer, got {image_size!r}."
        )
    return int(image_size)


def _validate_options(image_size, max_image_pixels, resize):
    image_size = _validate_image_size(image_size)
    if max_image_pixels is not None and (
        not _is_int(max_image_pixels) or max_image_pixels < 1
    ):
        raise ValueError(
            "max_image_pixels must be a positive integer or None, got "
            f"{max_image_pixels!r}."
        )
    if resize not in _RESIZE_MODES:
        raise ValueError(
            f"resize must be one of {_RESIZE_MODES}, got {resize!r}."
        )
    return image_size


def _validate_on_error(on_error):
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error must be one of {_ON_ERROR}, got {on_error!r}.")


def _check_path_type(value, position, *, column=None, index=None):
    """Raise TypeError unless ``value`` is missing, a str or an os.PathLike."""
    if is_missing(value) or isinstance(value, (str, os.PathLike)):
        return
    row = index[position] if index is not None else position
    where = f"row {_format_row(row)}"
    if column is not None:
        where += f", column {column!r}"
    raise TypeError(
        f"Image paths must be str or os.PathLike, got {type(value).__name__} "
        f"{value!r} in {where}."
    )


# --------------------------------------------------------------------------
# One file


def load_image(
    path,
    image_size,
    *,
    max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS,
    resize="pad",
):
    """Load one image file as a square RGB ``uint8`` array.

    Every Pillow mode becomes RGB; transparent pixels are composited on white;
    16-bit and floating-point images are scaled to 0..255 (see Notes); the EXIF
    orientation is applied. Huge files are decoded with bounded extra memory.

    Parameters
    ----------
    path : str or os.PathLike
        The image file.
    image_size : int
        Side ``S`` of the square output.
    max_image_pixels : int or None, default=DEFAULT_MAX_IMAGE_PIXELS
        Largest accepted ``width * height`` of the file, checked from the
        header before anything is decoded. None accepts any size. This limit
        replaces Pillow's decompression-bomb check for the duration of the
        call.
    resize : {"pad", "stretch", "crop"}, default="pad"
        ``"pad"`` keeps the aspect ratio, fits the image inside ``S x S`` and
        pads with white, centred; ``"stretch"`` resizes to ``S x S`` ignoring
        the aspect ratio; ``"crop"`` scales the shorter side to ``S`` and takes
        the central square.

    Returns
    -------
    ndarray of shape (3, image_size, image_size), dtype uint8
        The image, channels first, RGB.

    Raises
    ------
    ImageLoadError
        The file is missing, not an image Pillow can read, truncated or
        corrupt, or larger than ``max_image_pixels``. ``err.path`` and
        ``err.reason`` say which and why.
    TypeError
        ``path`` is not a str or os.PathLike.

    Notes
    -----
    Wide modes are mapped to 0..255 by range: values that already fit in
    0..255 are kept; 16-bit ranges (``I;16``, or ``I`` up to 65535) of
    integer images are divided by 257, which maps 65535 to 255 exactly;
    ``F`` images within 0..1 are multiplied by 255; anything else (negative
    values, 32-bit integer ranges, floats beyond 255) is stretched linearly
    from its minimum to its maximum.

    Memory: a JPEG is decoded directly at 1/2, 1/4 or 1/8 scale when that is
    still at least twice the output size. Other formats must be decoded
    at full size in their own mode (1 byte per pixel for palette and grey
    images); the colour conversion and an integer reduction (box average) then
    run on strips, so no full-size RGB or RGBA copy is ever made. A final
    Lanczos resize takes the reduced image (at least twice the output size,
    as in ``Image.thumbnail``) to the output size.

    Speed: transparent images are reduced and resized as premultiplied
    ``RGBa`` / ``La`` and composited on white only at the output size. Both
    steps are linear, so this matches compositing at full size and then
    resizing up to rounding (and Lanczos overshoot at hard alpha edges), at a
    fraction of the cost for big clipart.

    Examples
    --------
    >>> import os, tempfile
    >>> from PIL import Image
    >>> from skmm.io.images import load_image
    >>> path = os.path.join(tempfile.mkdtemp(), "red.png")
    >>> Image.new("RGBA", (40, 20), (255, 0, 0, 255)).save(path)
    >>> pixels = load_image(path, 16)
    >>> pixels.shape, pixels.dtype
    ((3, 16, 16), dtype('uint8'))
    >>> pixels[:, 0, 0].tolist(), pixels[:, 8, 8].tolist()   # white pad, red image
    ([255, 255, 255], [255, 0, 0])
    """
    image_size = _validate_options(image_size, max_image_pixels, resize)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be str or os.PathLike, got {type(path).__name__} {path!r}."
        )
    path = os.fspath(path)

    img = _open(path, max_image_pixels)
    try:
        # Read the pixels out before closing: for an RGB file already at the
        # output size, ``rgb`` is the opened image itself.
        rgb = np.asarray(_decode_to_rgb(img, path, image_size, resize), dtype=np.uint8)
    finally:
        img.close()
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def _open(path, max_image_pixels):
    """Open ``path`` lazily (header only) and apply our pixel limit."""
    with _PIXEL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        # Our own limit (checked below, before decoding) decides; Pillow's
        # global must not reject or warn about sizes the caller allowed.
        Image.MAX_IMAGE_PIXELS = None
        try:
            img = Image.open(path)
        except FileNotFoundError as exc:
            raise ImageLoadError(path, "file not found") from exc
        except IsADirectoryError as exc:
            raise ImageLoadError(path, "is a directory, not a file") from exc
        except PermissionError as exc:
            raise ImageLoadError(path, "permission denied") from exc
        except UnidentifiedImageError as exc:
            raise ImageLoadError(
                path, "not an image file Pillow can read"
            ) from exc
        except _DECODE_ERRORS as exc:
            raise ImageLoadError(path, f"corrupt image header ({exc})") from exc
        finally:
            Image.MAX_IMAGE_PIXELS = saved

    width, height = img.size
    if max_image_pixels is not None and width * height > max_image_pixels:
        img.close()
        raise ImageLoadError(
            path,
            f"image is {width} x {height} = {width * height} pixels, more than "
            f"max_image_pixels={max_image_pixels}; raise max_image_pixels (or "
            "pass None) to load it",
        )
    return img


def _decode_to_rgb(img, path, image_size, resize):
    """Decode an opened image into an ``S x S`` RGB Pillow image."""
    try:
        # JPEG only: let libjpeg decode at 1/2, 1/4 or 1/8 scale. A square
        # request keeps at least _REDUCING_GAP * S pixels on both sides, which
        # is enough for every resize mode.
        request = math.ceil(image_size * _REDUCING_GAP)
        img.draft("RGB", (request, request))
        img.load()
    except _DECODE_ERRORS as exc:
        raise ImageLoadError(path, _decode_reason(exc)) from exc

    orientation = _exif_orientation(img)

    try:
        width, height = img.size
        box = (0, 0, width, height)
        if resize == "crop":
            # The central square is the same region before and after any EXIF
            # rotation or flip, so we can cut it first and never touch the rest.
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            box = (left, top, left + side, top + side)
        box_w, box_h = box[2] - box[0], box[3] - box[1]

        # Size (in file orientation) the region is finally resampled to.
        if resize == "pad":
            scale = image_size / max(box_w, box_h)
            target = (max(1, round(box_w * scale)), max(1, round(box_h * scale)))
        else:
            target = (image_size, image_size)

        factor = (
            max(1, int(box_w // (target[0] * _REDUCING_GAP))),
            max(1, int(box_h // (target[1] * _REDUCING_GAP))),
        )
        # Reduce, turn and resize in a "working" mode (RGB, L, or premultiplied
        # RGBa / La for transparent images) and only then composite on white,
        # at the small size: compositing on white and resampling are both
        # linear, so this equals compositing first up to rounding.
        work = _reduce_working(img, box, factor)
        if work.size != target:
            # The last column and row of reduced pixels may stand for partial
            # blocks: resample exactly the extent the region covers, as
            # Pillow's own ``reducing_gap`` does, so nothing shifts or stretches.
            extent = (0.0, 0.0, box_w / factor[0], box_h / factor[1])
            if work.width < target[0] or work.height < target[1]:
                # Enlarging: Lanczos overshoot at hard alpha edges would be
                # clipped differently in premultiplied form, and compositing
                # a small image first costs nothing.
                work = _working_to_rgb(work)
            work = work.resize(target, Image.Resampling.LANCZOS, box=extent)
        # Turning the small image is exact and cheaper than turning a big one.
        if orientation in _EXIF_TRANSPOSE:
            work = work.transpose(_EXIF_TRANSPOSE[orientation])
        rgb = _working_to_rgb(work)
    except _DECODE_ERRORS as exc:
        raise ImageLoadError(path, _decode_reason(exc)) from exc

    if rgb.size == (image_size, image_size):
        return rgb
    canvas = Image.new("RGB", (image_size, image_size), _WHITE)
    canvas.paste(rgb, ((image_size - rgb.width) // 2, (image_size - rgb.height) // 2))
    return canvas


def _decode_reason(exc):
    text = str(exc)
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return f"file is truncated ({text})" if text else "file is truncated"
    if isinstance(exc, MemoryError):
        return "not enough memory to decode the image"
    if isinstance(exc, Image.DecompressionBombError):
        return f"rejected by Pillow's decompression-bomb check ({text})"
    return f"corrupt or unsupported image data ({type(exc).__name__}: {text})"


def _exif_orientation(img):
    try:
        return int(img.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - broken EXIF must not lose the pixels
        return 1


def _is_wide_mode(mode):
    return mode in _WIDE_MODES or mode.startswith("I;16")


def _wide_to_uint8(array, mode, lo, hi):
    """Map one strip of an I/I;16/F image to uint8 with the image-wide range."""
    array = array.astype(np.float64, copy=False)
    if mode == "F" and lo >= 0 and hi <= 1:
        array = array * 255.0
    elif lo >= 0 and hi <= 255:
        pass
    elif mode != "F" and lo >= 0 and hi <= 65535:
        array = array / 257.0
    else:
        span = hi - lo
        array = (array - lo) * (255.0 / span) if span > 0 else array * 0.0
    return np.clip(np.rint(array), 0, 255).astype(np.uint8)


def _has_transparency(img):
    # Image.has_transparency_data only exists from Pillow 10.1.
    if img.mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in img.info:
        return True
    return img.mode == "P" and img.palette is not None and img.palette.mode.endswith("A")


def _to_working(strip, wide_range):
    """One strip in a mode where resampling commutes with compositing on white.

    Returns an ``"RGB"`` or ``"L"`` image for opaque strips and a premultiplied
    ``"RGBa"`` or ``"La"`` image for transparent ones (RGBA/LA/PA, P with an
    alpha palette or a tRNS index, L/RGB colour keys): in premultiplied form a
    box or Lanczos average of the pixels composited on white is the average of
    the premultiplied pixels plus ``255 - average alpha``, so the compositing
    can wait until the image is small (see :func:`_working_to_rgb`).
    """
    mode = strip.mode
    if _is_wide_mode(mode):
        return Image.fromarray(_wide_to_uint8(np.asarray(strip), mode, *wide_range), "L")
    if _has_transparency(strip):
        if mode in ("RGBa", "La"):
            return strip
        if mode == "LA":
            return strip.convert("La")
        if mode != "RGBA":
            strip = strip.convert("RGBA")
        return strip.convert("RGBa")
    if mode in ("RGB", "L"):
        return strip
    if mode == "1":
        return strip.convert("L")
    return strip.convert("RGB")


def _working_to_rgb(work):
    """The RGB image of a (small) working-mode image, transparency on white."""
    if work.mode in ("RGBa", "La"):
        pixels = np.asarray(work)
        if pixels.ndim == 2:  # some Pillow versions give La as one band
            pixels = pixels[:, :, None]
        colour = pixels[:, :, :-1].astype(np.int16)
        alpha = pixels[:, :, -1:].astype(np.int16)
        # Premultiplied colour + white where the pixel is transparent; Lanczos
        # ringing can push colour a little above alpha, hence the clip.
        flat = np.clip(colour + (255 - alpha), 0, 255).astype(np.uint8)
        if flat.shape[2] == 1:
            return Image.fromarray(flat[:, :, 0], "L").convert("RGB")
        return Image.fromarray(flat, "RGB")
    return work if work.mode == "RGB" else work.convert("RGB")


def _reduce_working(img, box, factor):
    """Working-mode version of ``img`` cropped to ``box`` and shrunk ``factor`` times.

    Works on horizontal strips whose height is a multiple of the vertical
    factor, so each strip reduces independently and the temporary converted
    copies stay at about ``_STRIP_PIXELS`` pixels. The mode of the result is
    the one :func:`_to_working` picks (RGB, L, RGBa or La).
    """
    fx, fy = factor
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    wide_range = (0, 0)
    if _is_wide_mode(img.mode):
        # The mapping to 0..255 must be the same for every strip.
        region = img if box == (0, 0, *img.size) else img.crop(box)
        wide_range = region.getextrema()

    strip_h = max(fy, (_STRIP_PIXELS // max(1, width)) // fy * fy)
    if strip_h >= height:
        region = img if box == (0, 0, *img.size) else img.crop(box)
        work = _to_working(region, wide_range)
        return work if factor == (1, 1) else work.reduce(factor)

    out = None
    for y in range(0, height, strip_h):
        strip = img.crop((left, top + y, right, top + min(y + strip_h, height)))
        work = _to_working(strip, wide_range)
        if factor != (1, 1):
            work = work.reduce(factor)
        if out is None:
            out = Image.new(work.mode, (-(-width // fx), -(-height // fy)))
        out.paste(work, (0, y // fy))
    return out


# --------------------------------------------------------------------------
# Many files


class ImageFolderDataset(Dataset):
    """A torch Dataset that loads image files without ever raising on bad ones.

    Each item reports what happened instead of raising, so a
    :class:`~torch.utils.data.DataLoader` with worker processes can load a
    whole column and the caller applies its ``on_error`` policy afterwards
    (:func:`load_images_parallel` does exactly that).

    Parameters
    ----------
    paths : sequence of str, os.PathLike or missing values
        One entry per row; missing entries (see :func:`is_missing`) are allowed.
    image_size : int
        Side ``S`` of the square images.
    max_image_pixels : int or None, default=DEFAULT_MAX_IMAGE_PIXELS
        See :func:`load_image`.
    resize : {"pad", "stretch", "crop"}, default="pad"
        See :func:`load_image`.
    column : str, optional
        Column name, used in the TypeError raised for a non-path entry.
    index : sequence, optional
        Row labels, used in the TypeError raised for a non-path entry.

    Notes
    -----
    ``dataset[i]`` returns ``(pixels, present, error)``: a ``torch.uint8``
    tensor of shape ``(3, S, S)`` (white when not present), whether the image
    was loaded, and the reason it failed (``""`` when it loaded or the entry
    is missing).

    Examples
    --------
    >>> from skmm.io.images import ImageFolderDataset
    >>> dataset = ImageFolderDataset([None, "no/such.png"], 8)
    >>> [(present, error) for _, present, error in dataset]
    [(False, ''), (False, 'file not found')]
    """

    def __init__(
        self,
        paths,
        image_size,
        *,
        max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS,
        resize="pad",
        column=None,
        index=None,
    ):
        self.image_size = _validate_options(image_size, max_image_pixels, resize)
        self.paths = list(paths)
        if index is not None and len(index) != len(self.paths):
            raise ValueError(
                f"index has {len(index)} labels but there are {len(self.paths)} "
                "paths."
            )
        for position, value in enumerate(self.paths):
            _check_path_type(value, position, column=column, index=index)
        self.max_image_pixels = max_image_pixels
        self.resize = resize

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        path = self.paths[i]
        if is_missing(path):
            return self._blank(), False, ""
        try:
            pixels = load_image(
                path,
                self.image_size,
                max_image_pixels=self.max_image_pixels,
                resize=self.resize,
            )
        except ImageLoadError as err:
            return self._blank(), False, err.reason
        return torch.from_numpy(pixels), True, ""

    def _blank(self):
        size = self.image_size
        return torch.full((3, size, size), 255, dtype=torch.uint8)


class _Collate:
    """DataLoader collate_fn: items -> (pixels, present, errors); an empty chunk too."""

    def __init__(self, image_size):
        self.image_size = image_size

    def __call__(self, items):
        if not items:
            size = self.image_size
            return torch.empty((0, 3, size, size), dtype=torch.uint8), torch.empty(0, dtype=torch.bool), []
        pixels, present, errors = zip(*items)
        return torch.stack(pixels), torch.tensor(present, dtype=torch.bool), list(errors)


# "auto" never starts more decoding processes than this: beyond four, decoding
# outpaces any CPU model and each worker only adds its memory.
_MAX_AUTO_WORKERS = 4


def _available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def resolve_num_workers(num_workers, n_items, batch_size):
    """The number of DataLoader worker processes to decode ``n_items`` images with.

    Parameters
    ----------
    num_workers : "auto" or int
        An int is returned as it is. ``"auto"`` means
        ``min(4, cores available to this process)``, except 0 (decode in
        this process) when only one core is available, when everything fits
        in one batch (starting the workers, about 0.1-0.3 s, costs more than
        a typical batch takes to decode), or when this process is itself a
        worker of a process pool (joblib, multiprocessing): the pool already
        uses the cores, and loky's workers cannot start DataLoader workers.
    n_items : int
        Images to load.
    batch_size : int
        Images per batch.

    Returns
    -------
    int

    Examples
    --------
    >>> from skmm.io.images import resolve_num_workers
    >>> resolve_num_workers(3, 1000, 64)
    3
    >>> resolve_num_workers("auto", 10, 64)
    0
    """
    if num_workers == "auto":
        cores = _available_cores()
        if cores <= 1 or n_items <= batch_size or multiprocessing.parent_process() is not None:
            return 0
        return min(_MAX_AUTO_WORKERS, cores)
    if not _is_int(num_workers) or num_workers < 0:
        raise ValueError(
            f"num_workers must be 'auto' or a non-negative integer, got {num_workers!r}."
        )
    return int(num_workers)


def _init_worker(worker_id):
    # Each decoding process is one of several sharing the cores with the model
    # in the main process; torch ops in Pillow-adjacent code (torch.stack,
    # from_numpy) must not each start a full intra-op thread pool.
    torch.set_num_threads(1)


def load_images_parallel(
    paths,
    image_size,
    *,
    num_workers=0,
    batch_size=64,
    on_error="raise",
    max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS,
    resize="pad",
    column=None,
    index=None,
    pin_memory=False,
):
    """Stream batches of loaded images, decoding in worker processes.

    Parameters
    ----------
    paths : sequence of str, os.PathLike or missing values
        One entry per row. Missing entries (see :func:`is_missing`) come back
        white and not present.
    image_size : int
        Side ``S`` of the square images.
    num_workers : "auto" or int, default=0
        Worker processes for the DataLoader; 0 loads in this process; "auto"
        picks a number from the cores available (see
        :func:`resolve_num_workers`). Order is kept either way. Workers
        decode chunks of at most 8 images (see Notes), together at most
        about two batches ahead of the consumer, so the decoded pixels alive
        at once do not grow with the number of paths.
    batch_size : int, default=64
        Rows per yielded batch.
    on_error : {"raise", "warn", "ignore"}, default="raise"
        What to do with a file that cannot be loaded. ``"raise"`` raises
        :class:`ImageLoadError` (a ValueError) for the first failing row in
        order; ``"warn"`` marks it not present and, once the stream is
        exhausted, emits one UserWarning counting the failures and listing the
        first few; ``"ignore"`` marks it not present silently.
    max_image_pixels : int or None, default=DEFAULT_MAX_IMAGE_PIXELS
        See :func:`load_image`.
    resize : {"pad", "stretch", "crop"}, default="pad"
        See :func:`load_image`.
    column : str, optional
        Column name, used in error messages.
    index : sequence, optional
        Row labels (e.g. ``df.index``), used in error messages instead of
        positions.
    pin_memory : bool, default=False
        Put the batches in page-locked memory (faster, asynchronous copies to
        a CUDA device).

    Returns
    -------
    generator of (int, Tensor, Tensor)
        ``(start, pixels, present)`` per batch: the position of the batch's
        first row, a ``torch.uint8`` tensor ``(B, 3, S, S)`` and a
        ``torch.bool`` tensor ``(B,)``.

    Notes
    -----
    With worker processes, each batch is split into chunks of at most
    ``8`` images that the workers decode independently and that are joined
    again, in order, into batches of ``batch_size``.  Decoding time follows a
    file's pixel count, which its header tells cheaply, so each batch's rows
    are dealt to the workers largest first, each to the least loaded one: one
    slow file (a 100-MP PNG takes most of a second) has a worker to itself
    while the others decode the rest of the batch and the chunks after it.
    (The batch holding the slow file still cannot be ready before that file
    is.)

    Raises
    ------
    ValueError
        Invalid options, raised at the call, before any file is read.
    TypeError
        An entry is neither missing nor a path; raised at the call.
    ImageLoadError
        Under ``on_error="raise"``, while iterating.

    Examples
    --------
    >>> from skmm.io.images import load_images_parallel
    >>> batches = load_images_parallel([None, None, None], 8, batch_size=2)
    >>> [(start, tuple(pixels.shape), present.tolist())
    ...  for start, pixels, present in batches]
    [(0, (2, 3, 8, 8), [False, False]), (2, (1, 3, 8, 8), [False])]
    """
    # Validate everything now: a generator body would only run at first next().
    _validate_on_error(on_error)
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    paths = list(paths)
    num_workers = resolve_num_workers(num_workers, len(paths), batch_size)
    dataset = ImageFolderDataset(
        paths,
        image_size,
        max_image_pixels=max_image_pixels,
        resize=resize,
        column=column,
        index=index,
    )
    return _stream(
        dataset, num_workers, int(batch_size), on_error, column, index, bool(pin_memory)
    )


# How many failures the single on_error="warn" warning spells out.
_MAX_LISTED_FAILURES = 5


# Images per DataLoader item when workers decode: small enough that one huge
# file holds up few others and every worker gets a share of each batch, large
# enough that the per-item inter-process overhead stays negligible.
_DECODE_CHUNK = 8


# Decoding time is close to proportional to a file's pixels (on clipart the
# correlation is 0.999); this is what a file costs on top of its pixels
# (opening, the output resize), so many tiny files are dealt out evenly too.
_FILE_COST = 50_000


def _decode_cost(path):
    """Pixels in the file's header (a cheap, lazy open), plus a per-file constant."""
    if is_missing(path):
        return 0
    try:
        img = _open(path, None)
    except (ImageLoadError, TypeError, ValueError, OSError):
        return _FILE_COST  # refused in a moment by the worker, without decoding
    with img:
        return img.width * img.height + _FILE_COST


class _ChunkSampler:
    """Index lists for the DataLoader: each batch of ``batch_size`` rows cut into chunks.

    No chunk straddles two batches, so every batch is a whole number of chunks.

    With ``paths`` and two or more workers, each batch's rows are dealt to the
    workers by decoding cost (the pixels in each file's header, read here in
    the main process just before the batch is handed out): largest first, each
    to the least loaded worker.  The DataLoader gives its ``k``-th chunk to
    worker ``k % num_workers``, so every worker gets the same number of chunks
    per batch (some may be empty) and they are yielded in worker order.  One
    100-megapixel file then has a worker to itself while the others decode the
    rest of the batch, instead of also waiting behind it.  Rows inside a
    batch come back in the order yielded; :attr:`issued` records it, and the
    consumer puts every row back in its place.
    """

    def __init__(self, n, batch_size, chunk, num_workers=0, paths=None):
        self.n, self.batch_size, self.chunk = n, batch_size, chunk
        self.num_workers = num_workers
        self.paths = paths if num_workers > 1 else None
        self.issued = collections.deque()

    def _per_worker(self, rows):
        return -(-rows // (self.num_workers * self.chunk))

    def __len__(self):
        total = 0
        for start in range(0, self.n, self.batch_size):
            rows = min(self.batch_size, self.n - start)
            if self.paths is None:
                total += -(-rows // self.chunk)
            else:
                total += self._per_worker(rows) * self.num_workers
        return total

    def _chunks(self, start, stop):
        if self.paths is None:
            return [list(range(first, min(first + self.chunk, stop))) for first in range(start, stop, self.chunk)]
        workers = self.num_workers
        costs = {i: _decode_cost(self.paths[i]) for i in range(start, stop)}
        loads, dealt = [0] * workers, [[] for _ in range(workers)]
        for i in sorted(costs, key=lambda i: (-costs[i], i)):
            w = loads.index(min(loads))
            dealt[w].append(i)
            loads[w] += costs[i]
        k = self._per_worker(stop - start)
        pieces = [[part.tolist() for part in np.array_split(np.sort(rows).astype(int), k)] for rows in dealt]
        return [pieces[w][j] for j in range(k) for w in range(workers)]

    def __iter__(self):
        self.issued.clear()
        for start in range(0, self.n, self.batch_size):
            for chunk in self._chunks(start, min(start + self.batch_size, self.n)):
                self.issued.append(chunk)
                yield chunk


def _stream(dataset, num_workers, batch_size, on_error, column, index, pin_memory):
    n = len(dataset)
    # In this process, chunks would only add overhead: decode whole batches.
    chunk = min(batch_size, _DECODE_CHUNK) if num_workers > 0 else batch_size
    chunks_per_batch = -(-batch_size // chunk)
    workers = {}
    if num_workers > 0:
        workers = dict(
            worker_init_fn=_init_worker,
            # Chunks queued per worker: together about two batches (at least
            # two chunks each), which keeps the model fed, lets the other
            # workers run on while one decodes a huge file, and bounds the
            # decoded pixels alive at once.
            prefetch_factor=max(2, -(-2 * chunks_per_batch // num_workers)),
            # The workers live for this one pass over the paths and are reused
            # for all its batches; keeping them past it would need a loader
            # owned by the estimator (unpicklable, holding processes between
            # transforms), which costs more than the ~0.1 s a fork takes.
            persistent_workers=False,
        )
    sampler = _ChunkSampler(n, batch_size, chunk, num_workers, dataset.paths)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=_Collate(dataset.image_size),
        # The loader draws its workers' base seed from this generator rather
        # than from torch's global RNG, so loading images (or skipping the
        # loading on a cache hit) never shifts the seeds of a model trained
        # afterwards.
        generator=torch.Generator().manual_seed(0),
        **workers,
    )
    pin_memory = pin_memory and torch.cuda.is_available()
    failures = []
    start = 0  # first row of the batch being assembled
    rows_in, parts, part_present, part_errors = [], [], [], []
    for pixels, present, errors in loader:
        # The sampler hands out chunks in the order the loader returns them.
        rows_in.extend(sampler.issued.popleft())
        parts.append(pixels)
        part_present.append(present)
        part_errors.extend(errors)
        stop = min(start + batch_size, n)
        if len(rows_in) < stop - start:
            continue
        batch = parts[0] if len(parts) == 1 else torch.cat(parts)
        batch_present = part_present[0] if len(part_present) == 1 else torch.cat(part_present)
        order = np.asarray(rows_in) - start
        if not np.array_equal(order, np.arange(stop - start)):
            # Rows were dealt to the workers out of order: put each back in its place.
            inverse = torch.as_tensor(np.argsort(order))
            batch, batch_present = batch[inverse], batch_present[inverse]
            part_errors = [part_errors[i] for i in inverse.tolist()]
        # The on_error policy, row by row in order, whatever the chunking.
        for offset, reason in enumerate(part_errors):
            if not reason:
                continue
            row_position = start + offset
            row = index[row_position] if index is not None else row_position
            error = ImageLoadError(dataset.paths[row_position], reason, row=row, column=column)
            if on_error == "raise":
                raise error
            failures.append(error)
        rows_in, parts, part_present, part_errors = [], [], [], []
        del pixels, present
        if pin_memory:
            batch = batch.pin_memory()
        yield start, batch, batch_present
        del batch, batch_present
        start = stop

    if failures and on_error == "warn":
        listed = "; ".join(
            f"row {_format_row(err.row)}: {err.path!r}: {err.reason}"
            for err in failures[:_MAX_LISTED_FAILURES]
        )
        more = len(failures) - _MAX_LISTED_FAILURES
        if more > 0:
            listed += f"; and {more} more"
        where = f" in column {column!r}" if column is not None else ""
        warnings.warn(
            # No total here: with the embedding cache, only the files not cached yet are read.
            f"{len(failures)} image{'s' if len(failures) != 1 else ''}{where} could not be "
            f"loaded and {'are' if len(failures) != 1 else 'is'} treated as missing: {listed}.",
            UserWarning,
            stacklevel=2,
        )


def load_images(
    paths,
    image_size,
    *,
    on_error="raise",
    max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS,
    resize="pad",
    column=None,
    index=None,
    num_workers=0,
):
    """Load a column of image paths into one array.

    Parameters
    ----------
    paths : sequence of str, os.PathLike or missing values
        One entry per row, e.g. ``df["image_path"]``. Missing entries (see
        :func:`is_missing`) come back white and not present.
    image_size : int
        Side ``S`` of the square images.
    on_error : {"raise", "warn", "ignore"}, default="raise"
        What to do with a file that cannot be loaded, see
        :func:`load_images_parallel`.
    max_image_pixels : int or None, default=DEFAULT_MAX_IMAGE_PIXELS
        See :func:`load_image`.
    resize : {"pad", "stretch", "crop"}, default="pad"
        See :func:`load_image`.
    column : str, optional
        Column name, used in error messages.
    index : sequence, optional
        Row labels (e.g. ``df.index``), used in error messages instead of
        positions.
    num_workers : int, default=0
        Worker processes used to decode; 0 loads in this process.

    Returns
    -------
    pixels : ndarray of shape (n_paths, 3, image_size, image_size), dtype uint8
        The images, channels first, RGB; white where not present.
    present : ndarray of shape (n_paths,), dtype bool
        Whether each image was loaded.

    Raises
    ------
    ImageLoadError
        Under ``on_error="raise"``, for the first row that fails; the message
        names the row, the column and the path. It is a ValueError.
    TypeError
        An entry is neither missing nor a path.
    ValueError
        An invalid option.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> from PIL import Image
    >>> from skmm.io.images import load_images
    >>> path = os.path.join(tempfile.mkdtemp(), "blue.png")
    >>> Image.new("RGB", (10, 10), "blue").save(path)
    >>> df = pd.DataFrame({"image_path": [path, None]}, index=["a", "b"])
    >>> pixels, present = load_images(df["image_path"], 4, column="image_path",
    ...                               index=df.index)
    >>> pixels.shape, present.tolist()
    ((2, 3, 4, 4), [True, False])
    """
    paths = list(paths)
    stream = load_images_parallel(
        paths,
        image_size,
        num_workers=num_workers,
        on_error=on_error,
        max_image_pixels=max_image_pixels,
        resize=resize,
        column=column,
        index=index,
    )
    size = int(image_size)
    pixels = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    present = np.zeros(len(paths), dtype=bool)
    for start, batch_pixels, batch_present in stream:
        stop = start + len(batch_present)
        pixels[start:stop] = batch_pixels.numpy()
        present[start:stop] = batch_present.numpy()
    return pixels, present
