"""The scikit-learn face of skmm: estimators over a skorch-trained FusionNet."""

from .base import BaseFusionEstimator
from .classifier import FusionClassifier
from .regressor import FusionRegressor

__all__ = ["BaseFusionEstimator", "FusionClassifier", "FusionRegressor"]
