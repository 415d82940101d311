"""Fusion modules (registered by name) and the FusionNet that joins encoders, fusion and head."""

from . import modules  # noqa: F401  (registers the built-in fusions)
