"""Estimators as JSON records, rebuilt by calling their constructors: only known classes.

A record is ``{"class": <public name>, "id": <n>, "params": {...}, "state": ...}``.
``class`` is looked up in :data:`CLASSES`, a fixed table: a file can name no other
class, module or function.  ``params`` are the estimator's ``get_params(deep=False)``
(nested estimators are records too) and go to its constructor.  ``state`` is the
fitted state, ``null`` for an unfitted estimator:

- skmm's estimators and encoders give it through two methods, ``__skmm_getstate__(context)``
  and ``__skmm_setstate__(state, context)``: plain data, with modules' weights handed
  to the :class:`SaveContext` / :class:`LoadContext`.  Architecture is rebuilt from
  the parameters by skmm's own code (registry factories), never read from the file.
- the scikit-learn classes of the table hold plain data only (arrays, numbers,
  strings, nested estimators), so their state is their attributes other than
  parameters, restored as pickle would restore them, without pickle.
"""

import re

import torch
from sklearn.base import BaseEstimator, clone
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, MaxAbsScaler, MinMaxScaler, Normalizer, StandardScaler

from ..encoders import ImageEncoder, TextEncoder
from ..estimators import FusionClassifier, FusionRegressor
from ..utils.device import resolve_device
from ..utils.serialization import available_device
from .plain import Decoder, Encoder

__all__ = ["CLASSES", "LoadContext", "Reader", "SaveContext", "Writer"]

#: skmm classes, restored through their ``__skmm_getstate__`` / ``__skmm_setstate__``.
SKMM_CLASSES = {"skmm.FusionClassifier": FusionClassifier, "skmm.FusionRegressor": FusionRegressor,
                "skmm.ImageEncoder": ImageEncoder,
                "skmm.TextEncoder": TextEncoder}
#: scikit-learn classes whose fitted state is plain data, restored attribute by attribute.
SKLEARN_CLASSES = {
    f"sklearn.{module}.{cls.__name__}": cls
    for module, classes in {
        "pipeline": (Pipeline, FeatureUnion),
        "compose": (ColumnTransformer,),
        "preprocessing": (FunctionTransformer, StandardScaler, MinMaxScaler, MaxAbsScaler, Normalizer),
        "decomposition": (PCA, TruncatedSVD),
        "feature_extraction.text": (TfidfVectorizer, TfidfTransformer, CountVectorizer, HashingVectorizer),
        "linear_model": (LogisticRegression,),
    }.items()
    for cls in classes
}
#: Every class :func:`skmm.load` builds, by the name ``model.json`` gives it.
CLASSES = {**SKMM_CLASSES, **SKLEARN_CLASSES}
_NAMES = {cls: name for name, cls in CLASSES.items()}
_ATTRIBUTE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OUTPUT_KEYS = {"transform"}


class SaveContext:
    """What an object's ``__skmm_getstate__`` hands its modules to.

    Each object's modules are stored under its own prefix (``"<id>/<name>/<key>"``)
    in ``weights.safetensors``.
    """

    def __init__(self, tensors, prefix):
        self._tensors = tensors
        self._prefix = prefix

    def save_module(self, name, module):
        """Store ``module.state_dict()`` under ``name`` (unique within the object)."""
        seen = {t.untyped_storage().data_ptr() for t in self._tensors.values() if t.numel()}
        for key, tensor in module.state_dict().items():
            t = tensor.detach().to("cpu").contiguous()
            if t.numel() and t.untyped_storage().data_ptr() in seen:
                t = t.clone()  # tied weights: safetensors stores each storage once
            seen.add(t.untyped_storage().data_ptr())
            self._tensors[f"{self._prefix}{name}/{key}"] = t


class LoadContext:
    """What an object's ``__skmm_setstate__`` loads its modules' weights from, and where it runs."""

    def __init__(self, reader, prefix, where):
        self._reader, self._prefix, self.where = reader, prefix, where

    def device(self, saved):
        """The device to run on, given the one the object was saved on.

        The device :func:`skmm.load` was given, else ``saved``, else (``saved`` is
        CUDA and this machine has none) the CPU, with one warning per load.
        """
        reader = self._reader
        if reader.device is not None:
            return resolve_device(reader.device)
        saved = str(saved)
        if saved.startswith("cuda") and not torch.cuda.is_available():
            if not reader.warned:
                reader.warned = True
                return available_device(saved, stacklevel=4)
            return "cpu"
        return saved

    def checkable(self, estimator):
        """``estimator``, or a clone of it whose CUDA ``device`` parameters say "cpu" when CUDA is missing here.

        For validating saved parameters on a machine without CUDA: where the model
        runs is :meth:`device`'s decision, and the parameters stay as saved.
        """
        if torch.cuda.is_available():
            return estimator
        cuda = {k: "cpu" for k, v in estimator.get_params(deep=True).items()
                if k.split("__")[-1] == "device" and str(v).startswith("cuda")}
        return clone(estimator).set_params(**cuda) if cuda else estimator

    def load_module(self, name, module, *, compare=False):
        """Load the weights saved under ``name`` into ``module``, every key exactly.

        Returns whether they differ from the weights ``module`` had (only computed
        with ``compare=True``; False otherwise).
        """
        prefix = f"{self._prefix}{name}/"
        tensors = self._reader.tensors
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        own = module.state_dict()
        changed = compare and any(
            key not in own or own[key].shape != t.shape or not torch.equal(own[key].detach().cpu(), t.to(own[key].dtype))
            for key, t in state.items()
        )
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"weights.safetensors does not fit {self.where} as model.json rebuilds it: {exc}") from None
        self._reader.used.update(prefix + k for k in state)
        return changed


class Writer:
    """Estimators -> records; modules' weights -> :attr:`tensors`; arrays -> :attr:`encode.arrays`."""

    def __init__(self):
        self.tensors = {}
        self.encode = Encoder(self.object)
        self.sklearn = False  # whether scikit-learn objects are stored attribute by attribute
        self._count = 0

    def object(self, obj, where):
        """The record of a supported estimator (see the module docstring), else a TypeError naming ``where``."""
        cls = type(obj)
        name = _NAMES.get(cls)
        if name is None:
            raise TypeError(_unsupported(obj, where))
        record = {"class": name, "id": self._count}
        self._count += 1
        params = obj.get_params(deep=False)
        record["params"] = {k: self.encode(v, f"{where}.{k}") for k, v in params.items()}
        if cls in SKMM_CLASSES.values():
            state = obj.__skmm_getstate__(SaveContext(self.tensors, f"{record['id']}/"))
            record["state"] = None if state is None else self.encode(state, f"{where} (fitted state)")
            output = vars(obj).get("_sklearn_output_config")
            if output:
                record["output"] = self.encode(dict(output), f"{where} (set_output)")
        else:
            self.sklearn = True
            state = {k: v for k, v in vars(obj).items() if k not in params}
            record["state"] = {k: self.encode(v, f"{where}.{k}") for k, v in state.items()}
        return {"__object__": record}


class Reader:
    """Records -> estimators, built only from :data:`CLASSES`; weights from :attr:`tensors`."""

    def __init__(self, arrays, tensors, device):
        self.tensors, self.used, self.device, self.warned = tensors, set(), device, False
        self.sklearn = False  # whether scikit-learn objects were restored attribute by attribute
        self.decode = Decoder(arrays, self.object)

    def object(self, record, where):
        """Rebuild the estimator of a record: its constructor, then its fitted state."""
        if type(record) is not dict or not {"class", "id", "params", "state"} <= set(record):
            raise ValueError(f"model.json: {where} is not an object record (class, id, params, state)")
        name = record["class"]
        cls = CLASSES.get(name) if type(name) is str else None
        if cls is None:
            raise ValueError(
                f"model.json: {where} names the class {name!r}, which skmm.load does not build; "
                f"it builds only {sorted(CLASSES)}"
            )
        where = f"{where} ({cls.__name__})"
        params = self.decode(record["params"], f"{where}.params")
        if type(params) is not dict:
            raise ValueError(f"model.json: {where}.params must be an object")
        try:
            obj = cls(**params)
        except TypeError as exc:
            raise ValueError(f"model.json: {where} has parameters {cls.__name__} does not take ({exc})") from None
        state = record["state"]
        if cls in SKMM_CLASSES.values():
            if state is not None:
                context = LoadContext(self, f"{record['id']}/", where)
                state = self.decode(state, f"{where}.state")
                try:
                    obj.__skmm_setstate__(state, context)
                except (KeyError, TypeError, AttributeError, IndexError) as exc:
                    raise ValueError(
                        f"model.json: {where} has a fitted state skmm cannot use ({type(exc).__name__}: {exc})"
                    ) from None
            output = self.decode(record.get("output"), f"{where}.output")
            if output:
                if type(output) is not dict or set(output) - _OUTPUT_KEYS:
                    raise ValueError(f"model.json: {where} has an unknown set_output configuration {output!r}")
                obj.set_output(**output)
            return obj
        self.sklearn = True
        state = self.decode(state, f"{where}.state")
        if type(state) is not dict:
            raise ValueError(f"model.json: {where}.state must be an object")
        for key in state:
            if not _ATTRIBUTE.match(key) or key.startswith("__") or key in params:
                raise ValueError(f"model.json: {where}.state sets the attribute {key!r}, which it may not")
        vars(obj).update(state)  # what unpickling does, for plain values only
        return obj


def _unsupported(obj, where):
    cls = type(obj)
    known = ", ".join(n.rsplit(".", 1)[-1] for n in CLASSES)
    if isinstance(obj, BaseEstimator):
        search = cls.__name__.endswith("SearchCV") or hasattr(obj, "best_estimator_")
        hint = " (save its best_estimator_ instead)" if search else ""
        return (
            f"{where} is a {cls.__module__}.{cls.__qualname__}, which skmm.save cannot store{hint}; it stores "
            f"{known}. Use joblib for other models, and load such files only from sources you trust"
        )
    if callable(obj):
        return (
            f"{where} is a callable ({getattr(obj, '__qualname__', cls.__qualname__)}): skmm.save stores data, "
            "never code; set it to None (or a plain value) before saving, or use joblib"
        )
    return f"{where} is a {cls.__module__}.{cls.__qualname__}, which skmm.save cannot store as plain data"
