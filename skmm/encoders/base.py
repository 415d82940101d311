"""What ImageEncoder and TextEncoder share: backbone construction, batched frozen
inference with the embedding cache, the branch they hand a fusion network, pickling.

An encoder is the same object whether it runs alone (a frozen feature extractor
in any Pipeline or ColumnTransformer, its embeddings cached) or inside
:class:`skmm.FusionClassifier`, which asks it for a :class:`~skmm.encoders.Branch`
(:meth:`BaseEncoder.as_branch`): a trainable backbone's module then becomes part
of the FusionNet and learns end to end, and the classifier gives the fitted encoder
back around the trained module (:meth:`BaseEncoder.with_trained_module`).
"""

import copy
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data
from tqdm.auto import tqdm

from .. import cache as _cache
from ..utils.device import autocast, check_precision, resolve_device, uses_bf16
from ..utils.seeding import seed_of
from ..utils.serialization import dump_module, load_module
from ..utils.threads import free_cores, inference_threads, torch_threads
from ..utils.validation import check_int, is_missing
from .backend import check_backend_device, frozen_backend, uses_backend
from .branch import Branch
from .columns import SeveralColumnsMixin, joined_columns, several_columns
from .modules import set_module, without_module

__all__ = ["BaseEncoder", "Batch", "check_nonempty", "check_trainable", "column_of", "is_path_like_array"]


def check_trainable(trainable):
    """``trainable`` itself: "auto", True, False or "last:<n>" with n >= 1; else a ValueError."""
    if trainable == "auto" or trainable is True or trainable is False:
        return trainable
    if isinstance(trainable, str) and trainable.startswith("last:"):
        n = trainable[5:]
        if n.isdigit() and int(n) > 0:
            return trainable
    raise ValueError(f"trainable must be 'auto', True, False or 'last:<n>' with n >= 1, got {trainable!r}")


def column_of(X):
    """Raw values, their index labels and the column name of a 1-column input (else None)."""
    if isinstance(X, pd.DataFrame):
        if X.shape[1] != 1:
            return None
        return list(X.iloc[:, 0]), list(X.index), str(X.columns[0])
    if isinstance(X, pd.Series):
        return list(X), list(X.index), None if X.name is None else str(X.name)
    return None


def is_path_like_array(X):
    """True for inputs made of paths/strings/missing values rather than numbers."""
    col = column_of(X)
    if col is not None:
        values = col[0]
    elif isinstance(X, (list, tuple)):
        values = X
    elif isinstance(X, np.ndarray) and X.dtype.kind in "OUS" and X.ndim <= 2 and (X.ndim == 1 or X.shape[1] == 1):
        values = X.ravel().tolist()
    else:
        return False
    return any(isinstance(v, (str, bytes)) or hasattr(v, "__fspath__") for v in values) or all(
        is_missing(v) for v in values
    )


def check_nonempty(n, name):
    if n == 0:
        raise ValueError(f"{name} got 0 samples; at least 1 is required")


class Batch:
    """Validated raw inputs: values, their index labels, the column name, the kind."""

    def __init__(self, kind, values, index=None, column=None):
        self.kind = kind
        self.values = values
        self.n = len(values)
        self.index = list(range(self.n)) if index is None else index
        self.column = column


class BaseEncoder(SeveralColumnsMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared machinery of :class:`~skmm.ImageEncoder` and :class:`~skmm.TextEncoder`."""

    _registry = None  # set by subclasses

    # -- hooks the subclasses implement -------------------------------------------------
    def _read(self, X, reset):
        """Validate X -> a Batch of raw inputs."""
        raise NotImplementedError

    def _build_backbone(self):
        raise NotImplementedError

    def _fit_backbone(self, batch):
        pass

    def _check_params(self):
        """Validate the subclass's own parameters (the shared ones are checked in fit)."""

    def _iter_prepared(self, batch, positions):
        """Yield (start, model_inputs, present) over ``positions`` of ``batch``, streaming."""
        raise NotImplementedError

    def _keys(self, batch):
        return None  # no caching by default

    def _fingerprint_parts(self, fp):
        """The backbone's fingerprint plus what the encoder adds to it."""
        return fp

    def _wrap_module(self, module):
        """The backbone's module with what runs before it (image normalisation)."""
        return module

    def _unwrap_module(self, module):
        """Inverse of :meth:`_wrap_module`."""
        return module

    def _branch_augmentation(self, trainable):
        """The train-time augmentation a branch trains with (None: none)."""
        return None

    # -- scikit-learn API ---------------------------------------------------------------
    def fit(self, X, y=None):
        """Build the backbone and learn what it learns from ``X`` (a vocabulary, a vectorizer).

        Parameters
        ----------
        X : DataFrame column, Series, list or array
            The inputs (see the class docstring).
        y : None
            Ignored; there for scikit-learn's API.

        Returns
        -------
        self
            The fitted encoder.
        """
        self.validate_params()
        if self.cache and self.cache_dir is not None:
            _cache.check_cache_dir(self.cache_dir)  # an unreachable directory fails here, not after hours of encoding
        columns = several_columns(X) if self._takes_columns_apart() else None
        self.__dict__.pop("columns_", None)
        if columns is None:
            batch = self._read(X, reset=True)
        else:  # one backbone fitted on every column's values; one feature block per column (encoders/columns.py)
            batch = self._read(joined_columns(columns), reset=True)
            validate_data(self, X, skip_check_array=True, reset=True)  # n_features_in_, feature_names_in_
            self.columns_ = list(columns)
        self.device_ = resolve_device(self.device)
        check_backend_device(self)
        self.backbone_ = self._build_backbone()
        self._fit_backbone(batch)
        self._n_features_out = int(self.backbone_.out_dim)
        self._setup_module()
        return self

    def validate_params(self):
        """Check every parameter, raising a ValueError/TypeError that names the bad one.

        ``fit`` starts with it; a classifier calls it on its encoders before
        reading any data.
        """
        self._check_shared_params()
        self._check_params()

    def _check_shared_params(self):
        if not isinstance(self.backbone, str):
            raise TypeError(f"backbone must be a registered name (str), got {type(self.backbone).__name__}")
        self._registry.get(self.backbone)  # an unknown name lists the known ones
        check_trainable(self.trainable)
        check_int("verbose", self.verbose, min_value=0)
        check_precision(self.precision)
        resolve_device(self.device)
        seed_of(self.random_state)
        if not isinstance(self.cache, bool):
            raise TypeError(f"cache must be True or False, got {self.cache!r}")
        if self.cache_dir is not None and not isinstance(self.cache_dir, (str, bytes)) and not hasattr(
            self.cache_dir, "__fspath__"
        ):
            raise TypeError(f"cache_dir must be a directory path or None, got {type(self.cache_dir).__name__}")
        if self.backbone_kwargs is not None and not isinstance(self.backbone_kwargs, dict):
            raise TypeError(f"backbone_kwargs must be a dict or None, got {type(self.backbone_kwargs).__name__}")
        if self.weights is not None and not isinstance(self.weights, (str, bytes)) and not hasattr(
            self.weights, "__fspath__"
        ):
            raise TypeError(f"weights must be a name, a file path or None, got {type(self.weights).__name__}")

    def transform(self, X):
        """Encode ``X`` into a float32 array of shape (n_samples, n_features_out).

        Rows whose input is missing (or failed to load under ``on_error`` 'warn' /
        'ignore') are all zeros.
        """
        check_is_fitted(self)
        if getattr(self, "columns_", None) is not None:
            validate_data(self, X, skip_check_array=True, reset=False)  # the columns seen in fit, in order
            columns = several_columns(X) or {}
            return np.hstack([self._encode(self._read_column(col))[0] for col in columns.values()])
        features, _ = self._encode(self._read(X, reset=False))
        return features

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = False
        return tags

    # -- what a fusion network uses -------------------------------------------------------
    @property
    def is_trainable_(self):
        """Whether a fusion network trains this encoder's module end to end."""
        check_is_fitted(self)
        if self.backbone_.module is None and not getattr(self, "module_in_network_", False):
            return False
        if self.trainable == "auto":
            return bool(self.backbone_.trainable)
        return self.trainable is not False

    def as_branch(self):
        """This fitted encoder as one branch of a fusion network.

        A frozen encoder is its own branch: the network reads its (cached)
        embeddings.  A trainable one hands over its module, with the parts
        ``trainable="last:<n>"`` keeps frozen set to ``requires_grad=False``, and
        keeps a copy of itself without the module to prepare inputs; the network
        owns the module from then on, so its weights are stored once.  A
        trainable image branch also carries the train-time augmentation its
        encoder's ``augment`` asks for (:attr:`Branch.augment`).

        Returns
        -------
        Branch
            What the fusion network reads, and trains, for this modality.
        """
        check_is_fitted(self)
        if not self.is_trainable_:
            return Branch(encoder=self, module=None, width=self._n_features_out, trainable=False,
                          views=self._branch_augmentation(False))
        if isinstance(self.trainable, str) and self.trainable.startswith("last:"):
            n = int(self.trainable[5:])
            blocks = list(self.backbone_.blocks or [])
            if not blocks:
                raise ValueError(f"trainable={self.trainable!r}: backbone {self.backbone!r} names no blocks")
            for p in self.backbone_.module.parameters():
                p.requires_grad_(False)
            for block in blocks[-n:]:
                for p in block.parameters():
                    p.requires_grad_(True)
        reader = copy.copy(self)
        reader.backbone_ = without_module(self.backbone_)
        reader._module = None
        reader.module_in_network_ = True
        return Branch(encoder=reader, module=self._module, width=int(self.backbone_.out_dim), trainable=True,
                      augment=self._branch_augmentation(True))

    def with_trained_module(self, module, *, tag=None):
        """A fitted encoder like this one whose backbone runs ``module``.

        ``module`` is what :meth:`as_branch` handed a network, after training (the
        same object, not a copy).  ``tag`` marks the trained weights, so their
        embeddings never share cache entries with the untrained backbone's.
        """
        check_is_fitted(self)
        twin = copy.copy(self)
        twin.backbone_ = copy.copy(self.backbone_)
        set_module(twin.backbone_, self._unwrap_module(module))
        twin.__dict__.pop("module_in_network_", None)
        twin.trained_tag_ = tag or "trained"
        param = next(module.parameters(), None)
        if param is not None:
            twin.device_ = str(param.device)
        twin._setup_module()
        return twin

    def prepare(self, X):
        """Model inputs for a trainable branch: (array of inputs, bool array of present rows)."""
        check_is_fitted(self)
        return self._prepare_batch(self._read(X, reset=False))

    def _prepare_batch(self, batch):
        parts, present = {}, np.zeros(batch.n, dtype=bool)
        for start, inputs, ok in self._iter_prepared(batch, np.arange(batch.n)):
            parts[start] = np.asarray(inputs)  # batches may come in the order their inputs were decoded
            present[start : start + len(ok)] = np.asarray(ok)
        return np.concatenate([parts[s] for s in sorted(parts)]) if parts else np.empty((0,)), present

    def encode(self, X):
        """Features and a bool array telling which rows had an input."""
        check_is_fitted(self)
        return self._encode(self._read(X, reset=False))

    def fingerprint(self):
        """What identifies this fitted encoder's features in the embedding cache.

        None when they are not reproducible (randomly initialised weights without
        a fixed ``random_state``): such features are never cached.  Trained
        weights and bf16 arithmetic are part of it.
        """
        check_is_fitted(self)
        fp = self.backbone_.fingerprint()
        if fp is None:
            return None
        fp = self._fingerprint_parts(fp)
        if getattr(self, "trained_tag_", None):
            fp = f"{fp}|trained={self.trained_tag_}"
        if self._module is not None and uses_bf16(self.device_, self.precision):
            # bf16 embeddings differ from float32 ones: never answer one with the other.
            fp = f"{fp}|bf16"
        if self._module is not None and getattr(self, "backend", "torch") == "onnxruntime-int8":
            fp = f"{fp}|int8"  # so do int8 ones
        return fp

    # -- frozen inference ----------------------------------------------------------------
    def _setup_module(self):
        # Done once in fit (and on load), so transform never changes the estimator's state.
        module = self.backbone_.module
        if module is not None:
            module.to(self.device_)
            module = self._wrap_module(module).to(self.device_)
        # NHWC pays on GPUs and, on the CPU, with bf16 (oneDNN's AMX kernels); float32
        # CPU convolutions gain nothing from it.
        self.channels_last_ = bool(
            module is not None
            and getattr(self.backbone_, "channels_last", False)
            and (self.device_ != "cpu" or uses_bf16(self.device_, self.precision))
        )
        if self.channels_last_:
            module.to(memory_format=torch.channels_last)
        self._module = module
        self._setup_backend()

    def _setup_backend(self, trusted=True):
        """The inference backend of a frozen module (see :mod:`skmm.encoders.backend`)."""
        self._backend, self._backend_trusted = None, trusted
        if uses_backend(self) and self._module is not None and not self.is_trainable_:
            frozen_backend(self)

    def _export_module(self):
        """``(module, one row of its input, its other axes of varying size, a function of the inputs or None)``."""
        raise NotImplementedError

    def _forward(self, inputs):
        module = self._module
        if module is None:
            return np.asarray(inputs, dtype=np.float32)
        if uses_backend(self):
            # torch's setting is the ceiling here too (a service giving each model one core)
            return frozen_backend(self)(inputs, threads=min(free_cores(), torch.get_num_threads()))
        if module.training:  # eval() walks every submodule: 2 ms a call for a transformers model
            module.eval()
        x = torch.as_tensor(np.asarray(inputs) if not torch.is_tensor(inputs) else inputs)
        x = x.to(self.device_, non_blocking=True)
        if self.channels_last_ and x.ndim == 4:
            # The convolutions only run in NHWC when their input is NHWC too.
            x = x.contiguous(memory_format=torch.channels_last)
        # One thread per core this process may use (torch alone counts the host's cores, not a
        # container's CPU quota) that no other job holds: a thread on a taken core makes every
        # operator wait for it (benchmarks/latency.py: one row through EfficientNet-Lite0 + MiniLM took
        # 8.0 s on 2 threads against 0.48 s on 1, on a 2-core machine other jobs kept busy).
        threads = inference_threads(module=True, cores=free_cores()) if self.device_ == "cpu" else None
        with torch_threads(threads), torch.inference_mode(), autocast(self.device_, self.precision):
            out = module(x)
        return out.float().cpu().numpy()

    def _compute(self, batch, positions):
        """Features of ``positions`` of ``batch``; NaN rows where the input is missing."""
        out = np.full((len(positions), self._n_features_out), np.nan, dtype=np.float32)
        with tqdm(total=len(positions), disable=not self.verbose, desc=f"{type(self).__name__}({self.backbone})") as bar:
            for start, inputs, ok in self._iter_prepared(batch, positions):
                ok = np.asarray(ok, dtype=bool)
                feats = self._forward(inputs)
                feats[~ok] = np.nan
                out[start : start + len(ok)] = feats
                bar.update(len(ok))
        return out

    def _encode(self, batch):
        if getattr(self, "module_in_network_", False):
            raise RuntimeError(
                "this encoder's module is trained inside a fusion network; use the fitted classifier's "
                "encoders_[name] to transform with the trained weights"
            )
        keys = self._keys(batch) if self.cache else None
        fingerprint = self.fingerprint() if keys is not None else None
        positions = np.arange(batch.n)
        if fingerprint is None:
            features = self._compute(batch, positions)
        else:
            store = _cache.get_cache(self.cache_dir)
            features = store.get_or_compute(fingerprint, keys, lambda pos: self._compute(batch, np.asarray(pos)))
            features = np.array(features, dtype=np.float32, copy=True)
        present = ~np.isnan(features).any(axis=1) if features.size else np.ones(batch.n, bool)
        features[~present] = 0.0
        return features, present

    # -- persistence: modules travel as torch bytes so CUDA-trained models load on CPU ----
    def __copy__(self):
        # A shallow copy, as copy.copy promises (as_branch and with_trained_module use it);
        # without it, copy.copy would go through __getstate__ and serialise the module.
        twin = type(self).__new__(type(self))
        twin.__dict__.update(self.__dict__)
        return twin

    def __getstate__(self):
        state = self.__dict__.copy()
        backbone = state.get("backbone_")
        if backbone is not None and getattr(backbone, "module", None) is not None:
            state["_module_bytes"] = dump_module(backbone.module)
            state["backbone_"] = without_module(backbone)
        state.pop("_module", None)
        state.pop("_backend", None)  # rebuilt on load (an ONNX Runtime session does not pickle)
        return state

    def __setstate__(self, state):
        data = state.pop("_module_bytes", None)
        self.__dict__.update(state)
        if data is not None:
            module, device = load_module(data, self.device_)
            self.device_ = device
            set_module(self.backbone_, module)
        elif str(state.get("device_", "")).startswith("cuda") and not torch.cuda.is_available():
            self.device_ = "cpu"
        if "backbone_" in state:
            self._setup_module()

    # -- plain-data state, for skmm.save / skmm.load (skmm/persistence) -------------------
    def __skmm_getstate__(self, context):
        """The fitted state as plain data (None when unfitted); the module's weights go to ``context``."""
        if not hasattr(self, "backbone_"):
            return None
        backbone_state = self.backbone_.fitted_state()
        if backbone_state is None:
            raise TypeError(
                f"{type(self).__name__}(backbone={self.backbone!r}): {type(self.backbone_).__name__} learns in fit but "
                "does not implement fitted_state(), so skmm.save cannot store it; use joblib (trusted files only)"
            )
        in_network = bool(getattr(self, "module_in_network_", False))
        if self.backbone_.module is not None and not in_network:
            context.save_module("backbone", self.backbone_.module)
        return {
            "device": str(self.device_),
            "n_features_out": int(self._n_features_out),
            "backbone": backbone_state,
            "module_in_network": in_network,  # its weights are the network's: the classifier saves them
            "trained_tag": getattr(self, "trained_tag_", None),
            "input": {k: getattr(self, k) for k in ("n_features_in_", "feature_names_in_") if hasattr(self, k)},
            "columns": getattr(self, "columns_", None),
        }

    def __skmm_setstate__(self, state, context):
        """Rebuild the fitted encoder of :meth:`__skmm_getstate__`: the backbone through its factory."""
        context.checkable(self).validate_params()
        self.device_ = context.device(state["device"])
        self.backbone_ = self._build_backbone()
        self.backbone_.restore_fitted_state(state["backbone"])
        self._n_features_out = int(self.backbone_.out_dim)
        if self._n_features_out != state["n_features_out"]:
            raise ValueError(
                f"{context.where}: the rebuilt backbone gives {self._n_features_out} features, "
                f"the saved encoder {state['n_features_out']}"
            )
        for key, value in state["input"].items():
            if key not in ("n_features_in_", "feature_names_in_"):
                raise ValueError(f"{context.where}: unknown input attribute {key!r}")
            setattr(self, key, value)
        if state["trained_tag"] is not None:
            self.trained_tag_ = str(state["trained_tag"])
        if state.get("columns") is not None:
            self.columns_ = [str(c) for c in state["columns"]]
        backend, self.backend = getattr(self, "backend", "torch"), "torch"  # exported once the weights are loaded
        self._setup_module()
        self.backend = backend
        module = self.backbone_.module
        if module is None or state["module_in_network"]:
            return  # a classifier hands the module to its network and loads the network's weights
        fingerprint = self.fingerprint()
        changed = context.load_module("backbone", module, compare=True)
        if changed and fingerprint is not None and not state["trained_tag"] and self.fingerprint() == fingerprint:
            # The weights behind the backbone's name (a file, a checkpoint) are not the saved
            # ones any more, and its fingerprint cannot tell: never cache these embeddings.
            warnings.warn(
                f"{type(self).__name__}(backbone={self.backbone!r}): the weights it was built from differ from "
                "the saved ones, which it uses; its embeddings are not cached (cache=False)",
                UserWarning,
                stacklevel=4,
            )
            self.cache = False
        self._setup_backend(trusted=not (changed and fingerprint is not None and not state["trained_tag"]))
