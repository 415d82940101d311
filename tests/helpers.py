"""Small builders shared by the test modules."""

import functools
import importlib.util
import os

import numpy as np

from skmm import FusionClassifier, ImageEncoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_benchmark(name):
    """Import ``benchmarks/<name>.py`` (run by hand, not a package) as a module."""
    spec = importlib.util.spec_from_file_location(f"skmm_{name}_benchmark", os.path.join(ROOT, "benchmarks", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fast_classifier(**params):
    """A small, quick FusionClassifier on frozen features (resized pixels + tf-idf)."""
    defaults = dict(
        image=ImageEncoder("pixels", image_size=12), text="tfidf", max_epochs=25, lr=3e-3,
        dim=32, hidden_dim=32, random_state=0, device="cpu", stacking=None,
    )
    defaults.update(params)
    return FusionClassifier(**defaults)


# Three epochs: enough to check what a fit does with its inputs, not what it learns.
three_epochs = functools.partial(fast_classifier, max_epochs=3)


def messages(record):
    """The texts of the warnings in a ``warnings.catch_warnings(record=True)`` record."""
    return [str(w.message) for w in record]


def cosines(a, b):
    """Row-wise cosine similarity of two (N, D) arrays."""
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

