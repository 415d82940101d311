"""Fusion modules (registered by name), the FusionNet that joins branches, fusion and
head, and how it is trained (:mod:`skmm.fusion.training`)."""

from . import modules, multiplicative  # noqa: F401  (register the built-in fusions)
from .base import Fusion, find_modalities, find_modality, make_fusion, register_fusion
from .net import FusionNet

__all__ = ["Fusion", "FusionNet", "find_modalities", "find_modality", "make_fusion", "register_fusion"]
