"""What every skmm estimator shares: parameters, encoders as branches, training, persistence.

:class:`BaseFusionEstimator` is the base of :class:`~skmm.FusionClassifier` (and of
the estimators for other targets).  It reads X through an
:class:`~skmm.io.frame.InputLayout`, turns each modality's encoder into a branch
of a :class:`~skmm.fusion.net.FusionNet` (:meth:`skmm.ImageEncoder.as_branch`),
trains the net with skorch (:func:`skmm.fusion.training.build_net`) and gives the
fitted encoders back rebuilt around the trained modules, so trained weights live
in one place: the net.
"""

import dataclasses
import uuid
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import get_scorer
from sklearn.utils.validation import check_is_fitted
from skorch.helper import SliceDict
from skorch.history import History

from ..encoders import ImageEncoder, TextEncoder
from ..fusion.net import FusionNet
from ..fusion.training import build_net
from ..io.frame import InputLayout
from ..registry import fusions
from ..utils.device import check_precision, resolve_device
from ..utils.seeding import seed_of, seeded
from ..utils.threads import available_cores, torch_threads, training_threads
from ..utils.validation import check_fraction, check_int, check_number, check_on_error

__all__ = ["BaseFusionEstimator"]

_ENCODERS = {"image": (ImageEncoder, "cnn"), "text": (TextEncoder, "gru")}


class BaseFusionEstimator(BaseEstimator):
    """Shared machinery of skmm's estimators; not for direct use.

    Subclasses define ``__init__`` (storing the parameters documented on
    :class:`~skmm.FusionClassifier`), read their targets, and call
    :meth:`_fit_modalities` / :meth:`model_inputs`.
    """

    # -- parameters ---------------------------------------------------------------------
    def _check_params(self):
        """Validate every parameter, so bad values fail in fit before any encoding."""
        for name in ("dim", "max_epochs", "batch_size", "n_iter_no_change"):
            check_int(name, getattr(self, name))
        check_int("hidden_dim", self.hidden_dim, min_value=0)
        check_int("warmup_epochs", self.warmup_epochs, min_value=0, max_value=self.max_epochs - 1)
        check_int("verbose", self.verbose, min_value=0)
        for name in ("dropout", "modality_dropout"):
            check_fraction(name, getattr(self, name))
        check_number("unimodal_loss", self.unimodal_loss, low=0)
        check_number("lr", self.lr, low=0, low_open=True)
        check_number("weight_decay", self.weight_decay, low=0)
        for name in ("backbone_lr", "grad_clip"):
            check_number(name, getattr(self, name), low=0, low_open=True, allow_none=True)
        check_fraction("validation_fraction", self.validation_fraction, allow_none=True, allow_zero=False)
        if self.early_stopping_scoring is not None:
            if self.validation_fraction is None:
                raise ValueError("early_stopping_scoring needs validation_fraction (the rows it scores)")
            get_scorer(self.early_stopping_scoring)  # an unknown name: sklearn's error lists the valid ones
        check_on_error(self.on_error, allow_none=True)
        if not isinstance(self.fusion, str):
            raise TypeError(f"fusion must be a registered name (str), got {type(self.fusion).__name__}")
        fusions.get(self.fusion)  # unknown name: a ValueError listing the known ones
        if self.fusion_kwargs is not None and not isinstance(self.fusion_kwargs, Mapping):
            raise TypeError(f"fusion_kwargs must be a dict or None, got {type(self.fusion_kwargs).__name__}")
        if self.callbacks is not None and not isinstance(self.callbacks, (list, tuple)):
            raise TypeError(f"callbacks must be a list of skorch callbacks or None, got {type(self.callbacks).__name__}")
        for param, col in (("image_col", self.image_col), ("text_col", self.text_col)):
            if col is not None and not isinstance(col, (str, int)):
                raise TypeError(f"{param} must be a column name or None, got {type(col).__name__}")
        for kind in _ENCODERS:
            self._encoder_spec(kind).validate_params()  # an unknown backbone fails here, before any encoding
        resolve_device(self.device)
        check_precision(self.precision)
        seed_of(self.random_state)  # a TypeError for anything but None, an int or a numpy generator

    def _encoder_spec(self, kind):
        cls, default = _ENCODERS[kind]
        spec = getattr(self, kind)
        if spec is None:
            return cls(default)
        if isinstance(spec, str):
            return cls(spec)
        if isinstance(spec, cls):
            return clone(spec)
        raise TypeError(f"{kind} must be a {cls.__name__}, a backbone name or None, got {type(spec).__name__}")

    def _make_encoder(self, kind, seed):
        """The encoder of a modality, with the estimator's settings where it leaves them open.

        One rule for every setting passed down (device, random_state, precision,
        on_error): the encoder's own value wins unless it is "auto" (device,
        precision) or None (random_state, on_error), which mean "take the
        estimator's".
        """
        encoder = self._encoder_spec(kind)
        inherited = {
            "device": ("auto", self.device_),
            "random_state": (None, seed),
            "precision": ("auto", self.precision),
            "on_error": (None, self.on_error),
        }
        own = encoder.get_params(deep=False)
        params = {k: value for k, (open_value, value) in inherited.items() if k in own and own[k] == open_value}
        if self.verbose and not own.get("verbose"):
            params["verbose"] = self.verbose
        return encoder.set_params(**params)

    def _check_fusion_fits(self, names):
        # Build the fusion on paper first: an ablation without its modality fails here, before any encoding.
        try:
            fusions.get(self.fusion)(names, 4, 2, **(self.fusion_kwargs or {}))
        except ValueError as exc:
            raise ValueError(f"fusion={self.fusion!r} cannot use the modalities of X {names}: {exc}") from exc

    # -- reading X ----------------------------------------------------------------------
    def _layout_fit_read(self, X, y):
        layout = InputLayout(image_col=self.image_col, text_col=self.text_col, owner=type(self).__name__)
        modalities = layout.fit_read(X, y, estimator=self)
        self.input_layout_ = layout
        # the layout's decisions, as fitted attributes of the estimator
        self.layout_ = layout.kind_
        for name in ("image_col_", "text_col_", "ignored_columns_", "blocks_"):
            if hasattr(layout, name):
                setattr(self, name, getattr(layout, name))
        return modalities

    # -- fit ------------------------------------------------------------------------------
    def _fit_modalities(self, modalities, y_enc, *, n_outputs, class_weights=None):
        """Fit the encoders, build the FusionNet and train it on the encoded modalities."""
        self._check_fusion_fits(list(modalities))
        self.device_ = resolve_device(self.device)
        seed, _ = seed_of(self.random_state)
        self.fit_id_ = uuid.uuid4().hex  # tags features of the trained branches in the cache
        with seeded(seed):
            self.branches_, self.scalers_, net_branches, data, augment = {}, {}, {}, {}, {}
            for name, mod in modalities.items():
                if mod.kind == "dense":
                    mean = mod.values.mean(axis=0)
                    scale = mod.values.std(axis=0)
                    scale[scale < 1e-12] = 1.0
                    self.scalers_[name] = (mean.astype(np.float32), scale.astype(np.float32))
                    data[name] = ((mod.values - mean) / scale).astype(np.float32)
                    net_branches[name] = (None, mod.values.shape[1])
                    continue
                branch = self._make_encoder(mod.kind, seed).fit(mod.values).as_branch()
                data[name], data[f"{name}_mask"] = branch.inputs(mod.values)
                net_branches[name] = (branch.module, branch.width)
                if branch.augment is not None:
                    augment[name] = branch.augment  # applied by the net's training loader only
                # the net owns a trainable module from here on; the branch keeps what reads inputs
                self.branches_[name] = dataclasses.replace(branch, module=None, augment=None)
            self.modalities_ = list(net_branches)
            self.net_ = self._make_net(net_branches, n_outputs, class_weights, seed, augment=augment)
            with torch_threads(self._training_threads(net_branches, augment)):
                self.net_.fit(SliceDict(**data), y_enc)
        return self

    def _training_threads(self, net_branches, augment):
        """Torch threads while the net trains (None: torch's setting); see skmm.utils.threads."""
        return training_threads(
            trainable=any(module is not None for module, _ in net_branches.values()),
            loader_workers=max((a.num_workers for a in augment.values()), default=0),
            cores=available_cores(),
        )

    def _make_net(self, net_branches, n_outputs, class_weights, seed, augment=None):
        """The skorch net (untrained) around a new FusionNet over ``net_branches``.

        ``augment``: input name -> the augmentation of its training batches.
        """
        module = FusionNet(
            net_branches, n_outputs, fusion=self.fusion, dim=self.dim, hidden_dim=self.hidden_dim,
            dropout=self.dropout, modality_dropout=self.modality_dropout, fusion_kwargs=self.fusion_kwargs,
            unimodal_loss=self.unimodal_loss,
        )
        return build_net(
            module, n_classes=n_outputs, class_weights=class_weights,
            label_smoothing=getattr(self, "label_smoothing", 0.0), augment=augment, lr=self.lr,
            weight_decay=self.weight_decay, max_epochs=self.max_epochs, batch_size=self.batch_size,
            warmup_epochs=self.warmup_epochs, grad_clip=self.grad_clip, backbone_lr=self.backbone_lr,
            validation_fraction=self.validation_fraction, n_iter_no_change=self.n_iter_no_change,
            early_stopping_scoring=self.early_stopping_scoring, callbacks=self.callbacks,
            device=self.device_, precision=self.precision, seed=seed, verbose=self.verbose,
        )

    # -- predict --------------------------------------------------------------------------
    def model_inputs(self, X):
        """The inputs the trained FusionNet takes for ``X``.

        Returns
        -------
        dict
            Modality name -> its encoded features (frozen encoders) or prepared
            inputs (trainable branches), and ``<name>_mask`` -> a bool array, True
            where the row has that modality.  ``net_.module_(**inputs)`` (as
            tensors) gives the logits.
        """
        check_is_fitted(self)
        modalities = self.input_layout_.read(X, estimator=self)
        data = {}
        for name in self.modalities_:
            mod = modalities[name]
            if mod.kind == "dense":
                mean, scale = self.scalers_[name]
                data[name] = ((mod.values - mean) / scale).astype(np.float32)
                continue
            data[name], data[f"{name}_mask"] = self.branches_[name].inputs(mod.values)
        return data

    def modality_weights(self, X):
        """How much each modality weighs in each row's prediction, for fusions that weigh them.

        ``gated`` (its gates, averaged over features), ``attention`` (the pooling
        query's attention over modality tokens) and ``late`` (its learned weights,
        the same for every row).  Rows whose modality is missing use its learned
        "missing" embedding, as in prediction.

        Returns
        -------
        DataFrame of shape (n_samples, n_modalities)
            Columns ``modalities_``, rows summing to 1, index that of ``X`` when it
            is a DataFrame.

        Raises
        ------
        ValueError
            For a fusion that does not weigh modalities (concat, sum, ...).
        """
        check_is_fitted(self)
        inputs = self.model_inputs(X)
        module = self.net_.module_
        module.eval()
        with torch.inference_mode():
            tensors = {k: torch.as_tensor(v).to(self.net_.device) for k, v in inputs.items()}
            weights = module.modality_weights(**tensors)
        if weights is None:
            raise ValueError(
                f"fusion={self.fusion!r} does not weigh modalities per row; modality_weights needs "
                "'gated', 'attention' or 'late' (skmm.inspection.modality_importance works for every fusion)"
            )
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(weights.float().cpu().numpy(), columns=self.modalities_, index=index)

    def _rows_without_any_modality(self, data):
        masks = [data[f"{n}_mask"] for n in self.modalities_ if f"{n}_mask" in data]
        if masks and len(masks) == len(self.modalities_):
            return ~np.any(np.stack(masks), axis=0)
        return np.zeros(len(next(iter(data.values()))), dtype=bool)

    @property
    def encoders_(self):
        """Fitted encoder per modality read from raw columns.

        A trainable encoder comes back around the module the network trained
        (the same weights as ``net_``, not a copy), ready to ``transform`` on
        its own.  Rebuilt on each access.
        """
        check_is_fitted(self, "branches_")
        net = self.net_.module_
        return {
            name: branch.fitted_encoder(net.encoders[name], tag=self.fit_id_) for name, branch in self.branches_.items()
        }

    # -- persistence --------------------------------------------------------------------
    def __getstate__(self):
        state = self.__dict__.copy()
        net = state.get("net_")
        extra = [a for a in _CUDA_DEPENDENT if a not in getattr(net, "cuda_dependent_attributes_", _CUDA_DEPENDENT)]
        if extra:
            # skorch pickles `module` (the FusionNet we gave it, the same object as module_) and
            # `callbacks`/`callbacks_` (the LR scheduler holds the optimizer) with plain pickle:
            # CUDA tensors a CPU-only machine cannot load, and second copies of the weights and
            # the optimizer state. Listed as CUDA-dependent, they travel with module_ and
            # optimizer_ through skorch's map_location path (tensors read with
            # weights_only=True), each tensor once.
            twin = object.__new__(type(net))
            twin.__dict__.update(net.__dict__)
            twin.__dict__["cuda_dependent_attributes_"] = [*net.cuda_dependent_attributes_, *extra]
            state["net_"] = twin
        return state

    def __setstate__(self, state):
        # A model trained on CUDA loads anywhere: skorch moves the net to the CPU with
        # a warning, the encoders do the same, and this records where it now runs.
        self.__dict__.update(state)
        if str(state.get("device_", "")).startswith("cuda") and not torch.cuda.is_available():
            self.device_ = "cpu"

    # -- plain-data state, for skmm.save / skmm.load (skmm/persistence) -------------------
    def __skmm_getstate__(self, context):
        """The fitted state as plain data (None when unfitted); the network's weights go to ``context``."""
        if not hasattr(self, "net_"):
            return None
        context.save_module("net", self.net_.module_)
        weight = self.net_.get_params().get("criterion__weight")
        return {
            "layout": {k: getattr(self.input_layout_, k) for k in _LAYOUT if hasattr(self.input_layout_, k)},
            "input": {k: getattr(self, k) for k in ("n_features_in_", "feature_names_in_") if hasattr(self, k)},
            "modalities": list(self.modalities_),
            "branches": {
                name: {"encoder": b.encoder, "width": int(b.width), "trainable": bool(b.trainable)}
                for name, b in self.branches_.items()
            },
            "scalers": {name: list(pair) for name, pair in self.scalers_.items()},
            "n_outputs": len(self.net_.classes),
            "class_weights": None if weight is None else weight.cpu().numpy(),
            "fit_id": self.fit_id_,
            "device": str(self.device_),
            "history": _plain(list(self.net_.history)),
        }

    def __skmm_setstate__(self, state, context):
        """Rebuild the fitted estimator of :meth:`__skmm_getstate__`: the FusionNet from the parameters."""
        context.checkable(self)._check_params()
        layout = InputLayout(image_col=self.image_col, text_col=self.text_col, owner=type(self).__name__)
        for key, value in state["layout"].items():
            if key not in _LAYOUT:
                raise ValueError(f"{context.where}: unknown layout attribute {key!r}")
            setattr(layout, key, value)
        self.input_layout_, self.layout_ = layout, layout.kind_
        for key in _LAYOUT[1:]:
            if hasattr(layout, key):
                setattr(self, key, getattr(layout, key))
        for key, value in state["input"].items():
            if key not in ("n_features_in_", "feature_names_in_"):
                raise ValueError(f"{context.where}: unknown input attribute {key!r}")
            setattr(self, key, value)
        self.device_ = context.device(state["device"])
        self.fit_id_ = str(state["fit_id"])
        self.modalities_ = list(state["modalities"])
        self.scalers_ = {name: tuple(np.asarray(a, dtype=np.float32) for a in pair) for name, pair in state["scalers"].items()}
        self.branches_, net_branches, augment = {}, {}, {}
        for name in self.modalities_:
            if name in self.scalers_:
                net_branches[name] = (None, len(self.scalers_[name][0]))
                continue
            saved = state["branches"][name]
            if not isinstance(saved["encoder"], (ImageEncoder, TextEncoder)):
                raise ValueError(f"{context.where}: the branch {name!r} has no encoder")
            branch = saved["encoder"].as_branch()
            if (branch.width, branch.trainable) != (saved["width"], saved["trainable"]):
                raise ValueError(f"{context.where}: the rebuilt branch {name!r} does not match the saved one")
            net_branches[name] = (branch.module, branch.width)
            if branch.augment is not None:
                augment[name] = branch.augment
            self.branches_[name] = dataclasses.replace(branch, module=None, augment=None)
        weights = state["class_weights"]
        seed = self.random_state if isinstance(self.random_state, (int, np.integer)) else 0
        with seeded(0):  # the new layers' initial weights are replaced; the caller's RNG is left alone
            self.net_ = self._make_net(net_branches, int(state["n_outputs"]), weights, seed, augment=augment)
            self.net_.initialize()
        context.load_module("net", self.net_.module_)
        self.net_.history = History(state["history"])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        return tags


_CUDA_DEPENDENT = ("module", "callbacks")  # prefixes; see BaseFusionEstimator.__getstate__
_LAYOUT = ("kind_", "image_col_", "text_col_", "ignored_columns_", "blocks_")  # InputLayout's decisions


def _plain(value):
    """``value`` with what is not plain data left out (training history written by callbacks)."""
    if isinstance(value, dict):
        return {k: v for k, v in ((str(k), _plain(v)) for k, v in value.items()) if v is not _DROP}
    if isinstance(value, (list, tuple)):
        return [item for item in map(_plain, value) if item is not _DROP]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    return _DROP


_DROP = object()
