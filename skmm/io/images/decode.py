"""Decoding one image file into a square RGB ``uint8`` array, whatever the file holds.

:func:`load_image` turns a path into a ``(3, S, S)`` array (CHW, RGB):

* every Pillow mode becomes RGB, transparency composited on white, 16-bit and
  floating-point images scaled to 0..255;
* the EXIF orientation is applied (after reduction, on the small image);
* memory stays bounded for huge files: JPEG decodes at reduced scale, other
  formats are converted and reduced strip by strip, transparent ones as
  premultiplied pixels that are composited on white only at the output size.
"""

import itertools
import math

import numpy as np
from PIL import Image

from ...utils.validation import check_int, check_option
from .errors import DECODE_ERRORS, ImageLoadError, check_path, decode_reason
from .opening import DEFAULT_MAX_IMAGE_PIXELS, open_image

__all__ = ["RESIZE_MODES", "check_load_options", "decode_to_rgb", "load_image"]

RESIZE_MODES = ("pad", "stretch", "crop")
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

# Image.reduce averages a block with fixed-point arithmetic whose error grows
# with the block: pure white comes out 254 from blocks of about 200 x 200
# pixels and more (a 10000 x 10000 image at a small size). Larger factors are
# reduced in steps of at most this much per side, where it is exact.
_MAX_REDUCE_STEP = 64

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


def check_load_options(image_size, max_image_pixels, resize):
    """Validate the options every loader takes; return ``image_size`` as an int."""
    image_size = check_int("image_size", image_size)
    check_int("max_image_pixels", max_image_pixels, allow_none=True)
    check_option("resize", resize, RESIZE_MODES)
    return image_size


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
    image_size = check_load_options(image_size, max_image_pixels, resize)
    path = check_path(path)
    with open_image(path, max_image_pixels) as img:
        # Read the pixels out before closing: for an RGB file already at the
        # output size, ``rgb`` is the opened image itself.
        rgb = np.asarray(decode_to_rgb(img, path, image_size, resize), dtype=np.uint8)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def decode_to_rgb(img, path, image_size, resize):
    """Decode an opened image into an ``S x S`` RGB Pillow image."""
    try:
        # JPEG only: let libjpeg decode at 1/2, 1/4 or 1/8 scale. A square
        # request keeps at least _REDUCING_GAP * S pixels on both sides, which
        # is enough for every resize mode.
        request = math.ceil(image_size * _REDUCING_GAP)
        img.draft("RGB", (request, request))
        img.load()
    except DECODE_ERRORS as exc:
        raise ImageLoadError(path, decode_reason(exc)) from exc

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
            _exact_factor(max(1, int(box_w // (target[0] * _REDUCING_GAP)))),
            _exact_factor(max(1, int(box_h // (target[1] * _REDUCING_GAP)))),
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
    except DECODE_ERRORS as exc:
        raise ImageLoadError(path, decode_reason(exc)) from exc

    if rgb.size == (image_size, image_size):
        return rgb
    canvas = Image.new("RGB", (image_size, image_size), _WHITE)
    canvas.paste(rgb, ((image_size - rgb.width) // 2, (image_size - rgb.height) // 2))
    return canvas



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
        return _reduce(work, factor)

    out = None
    for y in range(0, height, strip_h):
        strip = img.crop((left, top + y, right, top + min(y + strip_h, height)))
        work = _to_working(strip, wide_range)
        work = _reduce(work, factor)
        if out is None:
            out = Image.new(work.mode, (-(-width // fx), -(-height // fy)))
        out.paste(work, (0, y // fy))
    return out


def _reduction_steps(factor):
    """Factors of at most ``_MAX_REDUCE_STEP`` whose product is the largest one up to ``factor``.

    A factor with a prime above the step (say 67) is rounded down: reducing a
    little less only leaves the final resize a little more to do.
    """
    for total in range(factor, 0, -1):
        steps, rest = [], total
        while rest > _MAX_REDUCE_STEP:
            step = next((d for d in range(_MAX_REDUCE_STEP, 1, -1) if rest % d == 0), None)
            if step is None:
                break
            steps.append(step)
            rest //= step
        else:
            return [*steps, rest]
    return [1]


def _exact_factor(factor):
    """The reduction factor actually applied for ``factor`` (see :func:`_reduction_steps`)."""
    return math.prod(_reduction_steps(factor))


def _reduce(work, factor):
    """``work.reduce(factor)`` done in steps that keep the averages exact.

    ``factor`` must come from :func:`_exact_factor` on each side.
    """
    steps = itertools.zip_longest(_reduction_steps(factor[0]), _reduction_steps(factor[1]), fillvalue=1)
    for step in steps:
        if step != (1, 1):
            work = work.reduce(step)
    return work
