"""The contract between encoders and the backbones the registries build.

A *backbone* is what a registry factory returns.  It knows how to turn raw inputs
(image files, strings) into model inputs (``prepare``) and owns the
``torch.nn.Module`` that turns model inputs into features.  The same backbone
object serves :class:`skmm.ImageEncoder` / :class:`skmm.TextEncoder` (frozen
feature extraction) and :class:`skmm.FusionClassifier` (where a trainable
backbone's module becomes a branch of the FusionNet and learns end to end).

Image factories are called as ``factory(spec, image_size=..., random_state=...,
weights=..., **backbone_kwargs)`` and return an :class:`ImageBackbone`.  Images are
loaded by :mod:`skmm.io.images` into uint8 tensors of shape (N, 3, S, S); the
backbone's module receives them already scaled to [0, 1] and normalised with its
``mean``/``std``.

Text factories are called as ``factory(spec, max_length=..., n_components=...,
dim=..., random_state=..., **backbone_kwargs)`` and return a :class:`TextBackbone`.
"""

from dataclasses import dataclass

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ImageBackbone:
    """An image feature extractor and the preprocessing it expects.

    Attributes
    ----------
    module : torch.nn.Module
        Maps a float tensor (N, 3, image_size, image_size), normalised with
        ``mean`` and ``std``, to features (N, out_dim).
    out_dim : int
        Number of features ``module`` returns.
    image_size : int
        Side of the square images ``module`` expects.
    mean, std : tuple of 3 floats
        Per-channel normalisation applied to [0, 1] pixels.
    trainable : bool
        Whether FusionClassifier trains this module end to end by default
        (True for nets trained from scratch, False for pretrained extractors).
    fingerprint : str
        Identifies the weights and preprocessing, for the embedding cache.
    """

    module: nn.Module
    out_dim: int
    image_size: int
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    trainable: bool = True
    fingerprint: str = ""
    channels_last: bool = False


class TextBackbone:
    """Base class of text backbones: learn a vocabulary, prepare batches, embed them.

    Subclasses implement :meth:`fit` (learn what depends on the training texts) and
    :meth:`prepare` (strings -> a numpy array or tensor, one row per text), and set
    ``module`` (prepared rows -> (N, out_dim) features; ``None`` when prepared rows
    already are the features, as for TF-IDF) and ``out_dim`` by the end of ``fit``.
    """

    module = None
    out_dim = None
    trainable = False

    def fit(self, texts):
        return self

    def prepare(self, texts):
        raise NotImplementedError

    def fingerprint(self):
        """A string that changes whenever ``prepare``/``module`` would give other features."""
        raise NotImplementedError


class Normalize(nn.Module):
    """uint8 or [0, 1] images -> normalised float images (runs on the model's device)."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        return (x - self.mean) / self.std
