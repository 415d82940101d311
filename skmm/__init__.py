"""skmm: learn from images and text together, the scikit-learn way."""

from .encoders import ImageEncoder, TextEncoder
from .estimators import FusionClassifier

__all__ = ["FusionClassifier", "ImageEncoder", "TextEncoder"]
__version__ = "0.1.0"
