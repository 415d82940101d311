"""Encoders: the scikit-learn transformers that run a backbone over a column.

:class:`ImageEncoder` reads image files, :class:`TextEncoder` reads texts; both
turn them into features with a backbone from :mod:`skmm.backbones` (cached when
frozen), or hand the backbone to :class:`skmm.FusionClassifier` as a trainable
branch.
"""

from .base import ImageEncoder, TextEncoder

__all__ = ["ImageEncoder", "TextEncoder"]
