"""Train-time image augmentation for trainable image branches (``ImageEncoder(augment=...)``).

An :class:`ImageAugmentation` is what a trainable :class:`~skmm.ImageEncoder` hands a
fusion network with its branch (:attr:`skmm.encoders.Branch.augment`): a picklable
callable that gives each uint8 image of a training batch its own random transform.
The network's training loader applies it to every training batch as it is drawn
(in the loader's worker processes when it has some), so each epoch sees new random
versions of the pictures; validation rows, predictions and standalone ``transform``
never go through it.

The presets use :mod:`torchvision.transforms.v2` (the ``vision`` extra):

``"light"``   RandomResizedCrop(scale=(0.6, 1)), horizontal flip, ColorJitter(0.1, 0.1, 0.1)
``"strong"``  RandomResizedCrop(scale=(0.35, 1)), horizontal flip,
              ColorJitter(0.3, 0.3, 0.3, 0.05), RandomGrayscale(p=0.1)
``"photometric"``  colour and tone only, no geometry (the photometric half of the
              SimCLR/BYOL recipes, with AutoAugment's Invert): ColorJitter(0.4,
              0.4, 0.2, 0.1) with p=0.8, RandomGrayscale(p=0.2), GaussianBlur
              (sigma 0.1-2 px at 64 px) with p=0.5, RandomSolarize(128, p=0.2),
              RandomInvert(p=0.2).  What frozen encoders encode their extra
              training views with (:mod:`skmm.estimators.views`).
``"light+photometric"``  "light", then "photometric": what ``augment="auto"``
              gives a backbone trained from scratch (and "strong+photometric").

Random draws come from torch's global RNG, which the estimator seeds from its
``random_state`` for the whole fit (and the DataLoader derives its workers' seeds
from it), so equal seeds give equal augmentations and equal models.
"""

import hashlib
import importlib.util

import torch

from ..utils.optional import import_optional

__all__ = [
    "AUGMENT_OPTIONS",
    "ImageAugmentation",
    "check_augment",
    "preset_transform",
    "require_vision",
    "view_seed",
    "vision_available",
]

#: The string values of ``ImageEncoder(augment=...)``.
AUGMENT_OPTIONS = ("auto", "none", "light", "strong", "photometric", "light+photometric", "strong+photometric")


def vision_available():
    """Whether torchvision (the ``vision`` extra) can be imported."""
    try:
        return importlib.util.find_spec("torchvision") is not None
    except (ImportError, ValueError):
        return False


def check_augment(augment):
    """Validate an ``augment`` value; return it.

    None, one of :data:`AUGMENT_OPTIONS`, or a callable (a torchvision transform
    object) mapping a uint8 image tensor (3, H, W) to one of the same shape.
    Whether torchvision is there is checked when a branch asks for a preset
    (:func:`require_vision`), so a fitted model loads without it.
    """
    if augment is None or callable(augment):
        return augment
    if not isinstance(augment, str):
        raise TypeError(
            f"augment must be one of {AUGMENT_OPTIONS}, None or a transform (a callable on uint8 image "
            f"tensors), got {type(augment).__name__}"
        )
    if augment not in AUGMENT_OPTIONS:
        raise ValueError(f"augment must be one of {AUGMENT_OPTIONS}, None or a transform, got {augment!r}")
    return augment


def require_vision(preset):
    """An ImportError naming ``pip install "skmm[vision]"`` when the preset ``preset`` cannot run."""
    import_optional("torchvision.transforms.v2", "vision", what=f"augment={preset!r}")


def preset_transform(name, image_size):
    """The torchvision v2 transform of the preset ``name`` ("light", "strong", "photometric") for square images.

    Examples
    --------
    >>> import torch
    >>> from skmm.encoders.augmentation import preset_transform
    >>> preset_transform("light", 16)(torch.zeros(3, 16, 16, dtype=torch.uint8)).shape
    torch.Size([3, 16, 16])
    """
    v2 = import_optional("torchvision.transforms.v2", "vision", what=f"augment={name!r}")
    if "+" in name:
        return v2.Compose([preset_transform(part, image_size) for part in name.split("+")])
    if name == "light":
        return v2.Compose([
            v2.RandomResizedCrop(image_size, scale=(0.6, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1),
        ])
    if name == "strong":
        return v2.Compose([
            v2.RandomResizedCrop(image_size, scale=(0.35, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05),
            v2.RandomGrayscale(p=0.1),
        ])
    if name == "photometric":
        sigma = max(2.0 * image_size / 64, 0.2)
        return v2.Compose([
            v2.RandomApply([v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.RandomApply([v2.GaussianBlur(2 * int(1.5 * sigma) + 1, sigma=(0.05 * sigma, sigma))], p=0.5),
            v2.RandomSolarize(threshold=128, p=0.2),
            v2.RandomInvert(p=0.2),
        ])
    raise ValueError(f"no augmentation preset {name!r}; the presets are 'light', 'strong' and 'photometric'")


class ImageAugmentation:
    """A per-image random transform applied to uint8 batches ``(N, 3, S, S)``.

    A preset's torchvision transform is built on first use and never pickled,
    so a model trained with augmentation loads without torchvision.

    Parameters
    ----------
    transform : str or callable
        A preset name ("light", "strong", "photometric"; see :func:`preset_transform`) or a
        callable mapping one uint8 image tensor ``(3, S, S)`` to a uint8 tensor
        of the same shape, drawing its randomness from torch's global RNG (as
        torchvision's transforms do).
    image_size : int, optional
        ``S``; needed by the presets.
    num_workers : int, default=0
        Worker processes of the training loader that runs it (0: the training
        process itself).

    Examples
    --------
    >>> import torch
    >>> from skmm.encoders.augmentation import ImageAugmentation
    >>> flip = ImageAugmentation(lambda img: img.flip(-1))
    >>> flip(torch.arange(4, dtype=torch.uint8).view(1, 1, 2, 2)).flatten().tolist()
    [1, 0, 3, 2]
    """

    def __init__(self, transform, *, image_size=None, num_workers=0):
        self.transform = transform
        self.image_size = image_size
        self.num_workers = int(num_workers)
        self._built = None

    def _transform(self):
        if self._built is None:
            t = self.transform
            self._built = preset_transform(t, self.image_size) if isinstance(t, str) else t
        return self._built

    def __call__(self, images, present=None, seeds=None):
        """Transform each image of ``images`` (rows where ``present`` is False are left alone).

        ``seeds``: one int per image; each image's random draws then start from its
        own seed of torch's RNG (call it inside :func:`skmm.utils.seeding.seeded`,
        which restores the RNG after), so an image's transform does not depend on the
        images beside it.
        """
        images = torch.as_tensor(images)
        rows = range(len(images)) if present is None else torch.nonzero(torch.as_tensor(present)).flatten().tolist()
        if not len(rows):
            return images
        transform = self._transform()
        out = images.clone()
        for i in rows:
            if seeds is not None:
                torch.manual_seed(int(seeds[i]))
            img = transform(images[i])
            if not torch.is_tensor(img) or img.shape != images[i].shape or img.dtype != images.dtype:
                got = f"{tuple(img.shape)} {img.dtype}" if torch.is_tensor(img) else type(img).__name__
                raise ValueError(
                    f"augment must map a {images.dtype} image tensor {tuple(images[i].shape)} to one of the same "
                    f"shape and dtype, got {got}"
                )
            out[i] = img
        return out

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_built"] = None
        return state

    def __repr__(self):
        return f"ImageAugmentation({self.transform!r}, image_size={self.image_size}, num_workers={self.num_workers})"


def view_seed(seed, identity):
    """The seed of one picture's view: a stable hash of ``seed`` and the picture's ``identity`` (its cache key).

    Examples
    --------
    >>> from skmm.encoders.augmentation import view_seed
    >>> view_seed(0, "a.png") == view_seed(0, "a.png") != view_seed(1, "a.png")
    True
    """
    digest = hashlib.sha256(f"{seed}|{identity}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % (2**63)
