"""Encoders: scikit-learn transformers over a backbone (:mod:`skmm.backbones`).

Each is usable alone in any Pipeline or ColumnTransformer, and hands a fusion
network a :class:`Branch` (:meth:`ImageEncoder.as_branch`) inside
:class:`skmm.FusionClassifier`.
"""

from .base import BaseEncoder
from .branch import Branch
from .image import ImageEncoder
from .text import TextEncoder

__all__ = ["BaseEncoder", "Branch", "ImageEncoder", "TextEncoder"]
