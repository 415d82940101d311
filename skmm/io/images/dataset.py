"""A torch Dataset over a column of image paths that reports failures instead of raising."""

import torch
from torch.utils.data import Dataset

from ...utils.validation import is_missing
from .decode import check_load_options, load_image
from .errors import ImageLoadError, check_path_type
from .opening import DEFAULT_MAX_IMAGE_PIXELS

__all__ = ["Collate", "ImageFolderDataset"]


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
        self.image_size = check_load_options(image_size, max_image_pixels, resize)
        self.paths = list(paths)
        if index is not None and len(index) != len(self.paths):
            raise ValueError(
                f"index has {len(index)} labels but there are {len(self.paths)} "
                "paths."
            )
        for position, value in enumerate(self.paths):
            check_path_type(value, position, column=column, index=index)
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


class Collate:
    """DataLoader collate_fn: items -> (pixels, present, errors); an empty chunk too."""

    def __init__(self, image_size):
        self.image_size = image_size

    def __call__(self, items):
        if not items:
            size = self.image_size
            return torch.empty((0, 3, size, size), dtype=torch.uint8), torch.empty(0, dtype=torch.bool), []
        pixels, present, errors = zip(*items)
        # One picture (a prediction request) needs no copy: torch.stack runs on torch's
        # threads, and took 3-7 ms for one 224 px picture with a core taken by another job.
        stacked = pixels[0].unsqueeze(0) if len(pixels) == 1 else torch.stack(pixels)
        return stacked, torch.tensor(present, dtype=torch.bool), list(errors)


