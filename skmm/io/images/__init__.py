"""Loading image files into fixed-size RGB arrays, whatever the file holds.

Every loader here turns a path into a ``(3, S, S)`` ``uint8`` array (CHW,
RGB). Real image columns hold every Pillow mode, rotated phone photos, broken
downloads, text files named ``.png``, named pipes and clipart tens of
thousands of pixels wide, so the loader:

* refuses anything that is not a regular file before opening it;
* converts every mode to RGB, compositing transparency on white;
* applies the EXIF orientation;
* keeps memory bounded for huge files (JPEG decodes at reduced scale, other
  formats are converted and reduced strip by strip, transparent ones as
  premultiplied pixels that are composited on white only at the output size);
* reports every failure as an :class:`ImageLoadError` (a ``ValueError``) that
  names the path, and, from :func:`load_images`, the row and the column.

The modules, one job each:

``errors``
    :class:`ImageLoadError`, failure reasons, path-type checks.
``opening``
    Opening one file: regular files only, header only, our pixel limit.
``decode``
    :func:`load_image`: one opened file to an ``S x S`` RGB array.
``dataset``
    :class:`ImageFolderDataset`: a torch Dataset that reports failures.
``sampling``
    Which rows each DataLoader worker decodes.
``loading``
    :func:`load_images`, :func:`load_images_parallel`, :func:`resolve_num_workers`.
"""

from ...utils.validation import is_missing
from .dataset import ImageFolderDataset
from .decode import load_image
from .errors import ImageLoadError
from .loading import load_images, load_images_parallel, resolve_num_workers
from .opening import DEFAULT_MAX_IMAGE_PIXELS

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
