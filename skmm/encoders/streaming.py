"""Training pictures decoded per batch: a column of image paths a training loader indexes lazily.

A trainable image branch normally decodes every training picture before
training starts (:meth:`skmm.ImageEncoder.prepare`), ``3 * S * S`` bytes a
row held for the whole fit.  :class:`LazyImages` instead stands in the
network's inputs for the column of paths: the training loader's workers
decode each batch's pictures as it is drawn, every epoch, so the memory of a
fit does not grow with its rows (see ``ImageEncoder(decode=...)``).
"""

import warnings

import numpy as np
import torch

from ..io.images import ImageLoadError, load_image
from ..io.images.errors import check_path_type, format_row
from ..io.images.opening import open_image
from ..utils.validation import is_missing

__all__ = ["LazyImages", "check_paths"]


class LazyImages:
    """The pictures of a column of paths, decoded when an item is read.

    ``images[i]`` is ``(pixels, ok)``: a ``torch.uint8`` tensor ``(3, S, S)``
    (white when the picture is missing or failed under ``on_error`` "warn" or
    "ignore") and whether it loaded.  Indexing with an array or a slice gives
    another ``LazyImages`` over those rows (skorch's validation split), and
    ``shape`` is that of the decoded array, so skorch's ``SliceDict`` holds it
    like any input.  Picklable: DataLoader workers get the paths, not pixels.

    Parameters
    ----------
    paths : sequence
        One path (or missing value) per row.
    image_size, resize, max_image_pixels
        As for :class:`skmm.ImageEncoder`.
    on_error : {"raise", "warn", "ignore"}
        "raise": a picture that fails raises a ValueError naming its row,
        column and path (from the loader, during training).
    index, column
        Row labels and column name for error messages.
    num_workers : int
        Worker processes the training loader decodes with.
    """

    streamed = True  # what the classifier looks for to collate these inputs

    def __init__(self, paths, image_size, *, resize="pad", max_image_pixels=None, on_error="raise", index=None,
                 column=None, num_workers=0):
        self.paths = np.asarray(paths, dtype=object)
        self.index = np.asarray(list(range(len(self.paths))) if index is None else index, dtype=object)
        self.image_size, self.resize, self.max_image_pixels = int(image_size), resize, max_image_pixels
        self.on_error, self.column, self.num_workers = on_error, column, int(num_workers)

    @property
    def shape(self):
        return (len(self.paths), 3, self.image_size, self.image_size)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        if isinstance(i, (int, np.integer)):
            return self._load(int(i))
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.paths, twin.index = self.paths[i], self.index[i]
        return twin

    def _load(self, i):
        path = self.paths[i]
        if not is_missing(path):
            try:
                pixels = load_image(path, self.image_size, max_image_pixels=self.max_image_pixels, resize=self.resize)
                return torch.from_numpy(pixels), True
            except ImageLoadError as err:
                if self.on_error == "raise":
                    # a plain ValueError: a DataLoader worker's error reaches the training process
                    # rebuilt from its message, which ImageLoadError's signature does not allow
                    raise ValueError(str(ImageLoadError(path, err.reason, row=self.index[i], column=self.column)))
        size = self.image_size
        return torch.full((3, size, size), 255, dtype=torch.uint8), False


def check_paths(paths, *, index, column, max_image_pixels, on_error):
    """Which rows have a picture, from each file's header (opened, not decoded).

    Under "raise", a missing, unreadable, non-image or oversized file raises
    before training starts, naming its row, column and path, as when every
    picture is decoded first; under "warn" the failures are counted and named
    in one warning.  A file whose data turns out damaged only when decoded
    (truncated) is found by the loader during training.
    """
    present = np.zeros(len(paths), dtype=bool)
    failed = []
    for i, path in enumerate(paths):
        if is_missing(path):
            continue
        check_path_type(path, i, column=column, index=index)
        try:
            with open_image(path, max_image_pixels):
                present[i] = True
        except ImageLoadError as err:
            if on_error == "raise":
                raise ImageLoadError(path, err.reason, row=index[i], column=column) from None
            failed.append(f"row {format_row(index[i])}: {path!r} ({err.reason})")
    if failed and on_error == "warn":
        warnings.warn(
            f"{len(failed)} image(s) in column {column!r} could not be loaded and count as missing: "
            + "; ".join(failed[:5]) + (" ..." if len(failed) > 5 else ""),
            UserWarning,
            stacklevel=3,
        )
    return present
