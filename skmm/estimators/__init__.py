"""The scikit-learn face of skmm: estimators over a skorch-trained FusionNet."""

from .base import BaseFusionEstimator
from .classifier import FusionClassifier

__all__ = ["BaseFusionEstimator", "FusionClassifier"]
