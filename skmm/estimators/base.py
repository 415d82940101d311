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
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import get_scorer
from sklearn.utils.validation import check_is_fitted
from skorch.helper import SliceDict

from ..encoders import ImageEncoder, TextEncoder
from ..fusion.net import FusionNet
from ..fusion.training import build_net
from ..io.frame import InputLayout
from ..registry import fusions
from ..utils.device import check_precision, resolve_device
from ..utils.seeding import seed_of, seeded
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
            self.branches_, self.scalers_, net_branches, data = {}, {}, {}, {}
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
                # the net owns a trainable module from here on; the branch keeps what reads inputs
                self.branches_[name] = dataclasses.replace(branch, module=None)
            self.modalities_ = list(net_branches)
            module = FusionNet(
                net_branches, n_outputs, fusion=self.fusion, dim=self.dim, hidden_dim=self.hidden_dim,
                dropout=self.dropout, modality_dropout=self.modality_dropout, fusion_kwargs=self.fusion_kwargs,
                unimodal_loss=self.unimodal_loss,
            )
            self.net_ = build_net(
                module, n_classes=n_outputs, class_weights=class_weights, lr=self.lr,
                weight_decay=self.weight_decay, max_epochs=self.max_epochs, batch_size=self.batch_size,
                warmup_epochs=self.warmup_epochs, grad_clip=self.grad_clip, backbone_lr=self.backbone_lr,
                validation_fraction=self.validation_fraction, n_iter_no_change=self.n_iter_no_change,
                early_stopping_scoring=self.early_stopping_scoring, callbacks=self.callbacks,
                device=self.device_, precision=self.precision, seed=seed, verbose=self.verbose,
            )
            self.net_.fit(SliceDict(**data), y_enc)
        return self

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
    def __setstate__(self, state):
        # A model trained on CUDA loads anywhere: skorch moves the net to the CPU with
        # a warning, the encoders do the same, and this records where it now runs.
        self.__dict__.update(state)
        if str(state.get("device_", "")).startswith("cuda") and not torch.cuda.is_available():
            self.device_ = "cpu"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        return tags
