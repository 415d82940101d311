"""skmm: learn from images and text together, the scikit-learn way."""

from .encoders import ImageEncoder, TextEncoder
from .estimators import FusionClassifier, FusionRegressor
from .persistence import load, save
from .stacking import OutOfFoldTransformer

__all__ = ["FusionClassifier", "FusionRegressor", "ImageEncoder", "OutOfFoldTransformer", "TextEncoder", "load", "save"]
__version__ = "0.1.0"
