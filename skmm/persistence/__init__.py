"""Saving fitted models as data, not code: :func:`save` and :func:`load`.

joblib and pickle files run code when they are loaded, so they must only come
from sources you trust.  :func:`save` writes a directory that holds data only --
``model.json`` (parameters and fitted state as plain JSON), ``arrays.safetensors``
and ``weights.safetensors`` -- and :func:`load` rebuilds the model from it
without unpickling anything: each object through the constructor of a class
skmm knows, each module through skmm's own code, weights read from safetensors.
See docs/persistence.md.

- :mod:`skmm.persistence.plain`: plain data <-> JSON and arrays.
- :mod:`skmm.persistence.objects`: estimators <-> records, the classes that may be loaded.
- :mod:`skmm.persistence.format`: the directory and its files.
"""

from .format import load, save

__all__ = ["load", "save"]
