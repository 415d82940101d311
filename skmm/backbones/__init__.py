"""The torch side of skmm: the backbone contract and one module per family.

A backbone is what a registry factory builds from a name such as ``"cnn"`` or
``"timm:convnext_tiny"``: a torch module, its output width, the preprocessing it
expects and a fingerprint for the embedding cache (see :mod:`skmm.backbones.base`).
:class:`skmm.ImageEncoder` and :class:`skmm.TextEncoder` run backbones;
:class:`skmm.FusionClassifier` trains them.

Families and their modules:

- ``cnn``, ``pixels`` -- :mod:`skmm.backbones.cnn`
- ``tfidf``, ``hashing`` -- :mod:`skmm.backbones.vectorizers`
- ``embedding-bag``, ``gru``, ``lstm`` -- :mod:`skmm.backbones.sequence`
- ``torchvision:<model>`` -- :mod:`skmm.backbones.torchvision`
- ``timm:<model>`` -- :mod:`skmm.backbones.timm`
- ``hf:<model id or directory>`` -- :mod:`skmm.backbones.hf`
- ``clip:<model>`` -- :mod:`skmm.backbones.clip`
- ``st:<model>`` -- :mod:`skmm.backbones.sentence_transformers`

Importing this package registers them all in :data:`skmm.registry.image_backbones`
and :data:`skmm.registry.text_backbones`; the pretrained families register a lazy
factory that imports their module (and its optional library) only when a name of
that family is used.
"""

from ..registry import image_backbones, lazy, text_backbones
from . import cnn, sequence, vectorizers  # noqa: F401  (register the built-in backbones)
from .base import IMAGENET_MEAN, IMAGENET_STD, ImageBackbone, Normalize, TextBackbone, fingerprint_of

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageBackbone", "Normalize", "TextBackbone", "fingerprint_of"]

image_backbones.register("torchvision", lazy("skmm.backbones.torchvision", "image_backbone"))
image_backbones.register("timm", lazy("skmm.backbones.timm", "image_backbone"))
image_backbones.register("hf", lazy("skmm.backbones.hf", "image_backbone"))
image_backbones.register("clip", lazy("skmm.backbones.clip", "image_backbone"))
text_backbones.register("hf", lazy("skmm.backbones.hf", "text_backbone"))
text_backbones.register("clip", lazy("skmm.backbones.clip", "text_backbone"))
text_backbones.register("st", lazy("skmm.backbones.sentence_transformers", "text_backbone"))
