"""Encoders (scikit-learn transformers) and the backbones they are built on.

Built-in backbones register on import; pretrained families register a lazy
factory that imports their module (and its optional library) only when a name
of that family is used.
"""

from ..registry import image_encoders, text_encoders
from . import image, text  # noqa: F401  (register the built-in backbones)
from ._utils import lazy
from .base import ImageEncoder, TextEncoder

__all__ = ["ImageEncoder", "TextEncoder"]

# Pretrained families: "<family>:<model>" names; each module imports its library on first use.
image_encoders.register("torchvision", lazy("skmm.encoders.torchvision", "image_backbone"))
image_encoders.register("timm", lazy("skmm.encoders.timm", "image_backbone"))
image_encoders.register("hf", lazy("skmm.encoders.hf", "image_backbone"))
image_encoders.register("clip", lazy("skmm.encoders.clip", "image_backbone"))
text_encoders.register("hf", lazy("skmm.encoders.hf", "text_backbone"))
text_encoders.register("clip", lazy("skmm.encoders.clip", "text_backbone"))
text_encoders.register("st", lazy("skmm.encoders.sentence_transformers", "text_backbone"))
