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
