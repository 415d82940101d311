"""What every skmm estimator shares: parameters, encoders as branches, training (persistence: state.py).

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

from ..encoders import ImageEncoder, TextEncoder
from ..fusion.base import make_fusion
from ..fusion.net import FusionNet
from ..fusion.training import build_net
from ..io.frame import InputLayout
from ..io.roles import check_columns_param
from ..registry import fusions
from ..utils.device import check_precision, resolve_device
from ..utils.seeding import seed_of, seeded
from ..utils.threads import free_cores, inference_threads, torch_threads, training_threads
from ..utils.validation import check_fraction, check_int, check_number, check_on_error
from .stacked import check_stacking, fit_stackers, stack_inputs
from .state import LAYOUT_ATTRIBUTES, FittedStateMixin
from .views import with_views
from .wide import (
    TABULAR, check_encoders_param, check_image_root, column_encoder, fit_tabular, group_columns, has_several_pictures,
    joined_values, picture_inputs, tabular_inputs,
)

__all__ = ["BaseFusionEstimator"]

_ENCODERS = {"image": (ImageEncoder, "cnn"), "text": (TextEncoder, "gru")}
_WIDE_DEFAULTS = {"columns": None, "encoders": None, "image_root": None, "picture_pooling": "mean"}
_SMALL_INPUT_ROWS = 64  # inputs of at most this many rows skip skorch's DataLoader in prediction


class BaseFusionEstimator(FittedStateMixin, BaseEstimator):
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
        check_columns_param(self._wide("columns"))
        check_encoders_param(self._wide("encoders"))
        check_image_root(self._wide("image_root"))
        if self._wide("picture_pooling") not in ("mean", "attention"):
            raise ValueError(f"picture_pooling must be 'mean' or 'attention', got {self.picture_pooling!r}")
        for kind in _ENCODERS:
            self._encoder_spec(kind).validate_params()  # an unknown backbone fails here, before any encoding
        resolve_device(self.device)
        check_precision(self.precision)
        seed_of(self.random_state)  # a TypeError for anything but None, an int or a numpy generator
        if getattr(self, "accelerator", None) is not None:
            from ..fusion.accelerated import check_accelerator  # skorch.hf and accelerate, only when used

            check_accelerator(self.accelerator)

    def _wide(self, name):
        """A wide-table parameter (columns, encoders, image_root, picture_pooling), or its default for an
        estimator that does not take it."""
        return getattr(self, name, _WIDE_DEFAULTS[name])

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

    def _make_encoder(self, kind, seed, column=None):
        """The encoder of a modality, with the estimator's settings where it leaves them open.

        ``column``: a column ``encoders=`` may give its own encoder.

        One rule for every setting passed down (device, random_state, precision,
        on_error): the encoder's own value wins unless it is "auto" (device,
        precision) or None (random_state, on_error), which mean "take the
        estimator's".
        """
        encoder = column_encoder(self._wide("encoders"), column, kind) if column is not None else None
        if encoder is None:
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

    def _check_fusion_fits(self, names, kinds=None):
        # Build the fusion on paper first (returned): an ablation without its modality fails here, before any
        # encoding.
        try:
            with seeded(0):  # its throwaway weights must not draw from the RNG another thread's fit is seeding
                return make_fusion(self.fusion, names, 4, 2, kinds=kinds, **(self.fusion_kwargs or {}))
        except ValueError as exc:
            raise ValueError(f"fusion={self.fusion!r} cannot use the modalities of X {names}: {exc}") from exc

    # -- reading X ----------------------------------------------------------------------
    def _layout_fit_read(self, X, y):
        layout = InputLayout(
            image_col=self.image_col, text_col=self.text_col, columns=self._wide("columns"), owner=type(self).__name__
        )
        modalities = layout.fit_read(X, y, estimator=self)
        self.input_layout_ = layout
        # the layout's decisions, as fitted attributes of the estimator
        self.layout_ = layout.kind_
        for name in LAYOUT_ATTRIBUTES[1:]:
            if hasattr(layout, name):
                setattr(self, name, getattr(layout, name))
        if self.verbose and hasattr(layout, "column_roles_"):
            print(layout.summary())
        return modalities

    # -- fit ------------------------------------------------------------------------------
    def _fit_modalities(self, modalities, y_enc, *, n_outputs, class_weights=None):
        """Fit the encoders, build the FusionNet and train it on the encoded modalities."""
        kinds = [mod.kind for mod in modalities.values()] if self.layout_ == "wide" else None
        self._check_fusion_fits(list(modalities), kinds)
        check_stacking(getattr(self, "stacking", None))
        # which columns share an encoder; an encoders= key that is no image/text column fails here
        groups = group_columns(modalities, self._wide("encoders"))
        accelerator = getattr(self, "accelerator", None)
        # with an accelerator, this process's device is the one it gives the module
        self.device_ = resolve_device(self.device) if accelerator is None else _device_of(accelerator)
        seed, _ = seed_of(self.random_state)
        self.fit_id_ = uuid.uuid4().hex  # tags features of the trained branches in the cache
        with seeded(seed):
            self.branches_, self.scalers_, self.tabular_, net_branches, data, augment = {}, {}, {}, {}, {}, {}
            self.encoder_groups_, branch_modules = {}, {}
            self.pictures_ = {
                name: self._wide("picture_pooling") for name, mod in modalities.items()
                if mod.kind == "image" and self.layout_ == "wide" and has_several_pictures(mod.values)
            }
            for leader, (kind, names) in groups.items():
                # one encoder per group: fitted on all its columns, one module (one set of weights), one cache
                column = modalities[leader].column if self.layout_ == "wide" else None
                encoder = self._make_encoder(kind, seed, column).fit(joined_values(modalities, names))
                branch = encoder.as_branch()
                branch_modules[leader] = branch.module
                kept = dataclasses.replace(branch, module=None, augment=None)
                for name in names:
                    self.encoder_groups_[name] = leader
                    self.branches_[name] = kept
                    if branch.augment is not None and name not in self.pictures_:
                        augment[name] = branch.augment  # applied by the net's training loader only
            for name, mod in modalities.items():
                if mod.kind == "dense":
                    mean = mod.values.mean(axis=0)
                    scale = mod.values.std(axis=0)
                    scale[scale < 1e-12] = 1.0
                    self.scalers_[name] = (mean.astype(np.float32), scale.astype(np.float32))
                    data[name] = ((mod.values - mean) / scale).astype(np.float32)
                    net_branches[name] = (None, mod.values.shape[1])
                elif mod.kind in TABULAR:
                    self.tabular_[name], net_branches[name] = fit_tabular(name, mod)
                    data.update(tabular_inputs(name, self.tabular_[name], mod.values))
                else:
                    data.update(self._branch_inputs(name, mod, training=True))
                    net_branches[name] = (branch_modules[self.encoder_groups_[name]], self.branches_[name].width)
            # out-of-fold linear text models as extra modalities (FusionClassifier's stacking=)
            self.stackers_, stacked = fit_stackers(
                getattr(self, "stacking", None), modalities if self.layout_ in ("columns", "wide") else {},
                y_enc, n_outputs, multilabel=np.ndim(y_enc) > 1,
            )
            data.update(stacked)
            for name in self.stackers_:
                net_branches[name] = (None, n_outputs)
            self.modalities_ = list(net_branches)
            self.modality_kinds_ = [
                "text" if n in self.stackers_ else modalities[n].kind for n in self.modalities_
            ]
            # inputs decoded per batch by the loaders (ImageEncoder(decode="per_batch")): name -> loader workers
            streamed = {n: v.num_workers for n, v in data.items() if getattr(v, "streamed", False)}
            self.net_ = self._make_net(net_branches, n_outputs, class_weights, seed, augment=augment,
                                       accelerator=accelerator, streamed=streamed,
                                       holdout=self._training_holdout(y_enc, seed))
            # frozen image features also seen through augmented views of the pictures (views.py)
            train_data, train_y = with_views(self, modalities, data, y_enc)
            with torch_threads(self._training_threads(net_branches, augment)):
                self.net_.fit(SliceDict(**train_data), train_y)
                if "iterator_valid__num_workers" in vars(self.net_):
                    self.net_.iterator_valid__num_workers = 0  # predictions read inputs decoded beforehand
                if accelerator is not None:
                    from ..fusion.accelerated import plain_net

                    self.net_ = plain_net(self.net_, lambda module: self._make_net(
                        net_branches, n_outputs, class_weights, seed, augment=augment, module=module))
                self._after_training(data, y_enc)
        return self

    def _after_training(self, data, y_enc):
        """Hook run once the net is trained, on the encoded training inputs (calibration)."""

    def _training_holdout(self, y_enc, seed):
        """Hook: indices of training rows the net must not train on (FusionClassifier's blend), or None."""

    def _training_target(self):
        """What the net is trained for: keyword arguments of build_net (task, loss, label_smoothing)."""
        return {"task": "multiclass", "label_smoothing": getattr(self, "label_smoothing", 0.0)}

    def _validation_outputs(self, data, y_enc):
        """(net outputs, targets) of the validation rows the net was early-stopped on.

        The same rows skorch held out during training (its ``train_split`` is
        seeded), as float64 arrays; outputs are logits or regression values.
        """
        _, valid = self.net_.get_split_datasets(SliceDict(**data), y_enc)
        if valid is None:
            raise ValueError("no validation rows: set validation_fraction")
        outputs = self.net_.forward(valid, training=False).float().numpy().astype(np.float64)
        return outputs, np.asarray(y_enc)[valid.indices]

    def _outputs(self, inputs):
        """The trained net's outputs (logits or standardised values) for model inputs, float64 (N, n_outputs)."""
        check_is_fitted(self)
        rows = len(next(iter(inputs.values()))) if inputs else 0
        with torch_threads(self._inference_threads()):
            if 0 < rows <= _SMALL_INPUT_ROWS and self.net_.device is not None:
                # a prediction request: one forward step, without the DataLoader skorch builds around it
                outputs = self.net_.evaluation_step((SliceDict(**inputs), None), training=False)
            else:  # device None: an accelerator's loader places the batches
                outputs = self.net_.forward(SliceDict(**inputs), training=False)
        return outputs.float().cpu().numpy().astype(np.float64)

    def _training_threads(self, net_branches, augment):
        """Torch threads while the net trains (None: torch's setting); see skmm.utils.threads."""
        # category embeddings are lookups, as light as features: they do not call for more threads
        tabular = getattr(self, "tabular_", {})
        return training_threads(
            trainable=any(module is not None for name, (module, _) in net_branches.items() if name not in tabular),
            loader_workers=max((a.num_workers for a in augment.values()), default=0),
            cores=free_cores(),
        )

    def _inference_threads(self):
        """Torch threads for the trained net's forward pass: 1 on embeddings; see skmm.utils.threads."""
        trainable = any(getattr(branch, "trainable", False) for branch in self.branches_.values())
        return inference_threads(module=trainable, cores=free_cores() if trainable else 1)

    def _make_net(self, net_branches, n_outputs, class_weights, seed, augment=None, module=None, accelerator=None,
                  streamed=None, holdout=None):
        """The skorch net (untrained) around a new FusionNet over ``net_branches`` (or ``module``).

        ``augment``: input name -> the augmentation of its training batches;
        ``accelerator``: an ``accelerate.Accelerator`` that trains the net; ``holdout``: rows it does not train on.
        """
        module = module if module is not None else FusionNet(
            net_branches, n_outputs, fusion=self.fusion, dim=self.dim, hidden_dim=self.hidden_dim,
            dropout=self.dropout, modality_dropout=self.modality_dropout, fusion_kwargs=self.fusion_kwargs,
            unimodal_loss=self.unimodal_loss, kinds=self._net_kinds(),
            pooling=getattr(self, "pictures_", None),
        )
        return build_net(
            module, n_classes=n_outputs, class_weights=class_weights, **self._training_target(), augment=augment, lr=self.lr,
            weight_decay=self.weight_decay, max_epochs=self.max_epochs, batch_size=self.batch_size,
            warmup_epochs=self.warmup_epochs, grad_clip=self.grad_clip, backbone_lr=self.backbone_lr,
            validation_fraction=self.validation_fraction, holdout=holdout, n_iter_no_change=self.n_iter_no_change,
            early_stopping_scoring=self.early_stopping_scoring, callbacks=self.callbacks,
            device=self.device_, precision=self.precision, seed=seed, verbose=self.verbose, accelerator=accelerator,
            streamed=streamed,
        )

    def _net_kinds(self):
        """The kinds the FusionNet's fusion gets: a wide table's, or those of stacked modalities; else None."""
        if self.layout_ == "wide" or getattr(self, "stackers_", None):
            return list(self.modality_kinds_)
        return None

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
        stackers = getattr(self, "stackers_", {})
        for name in self.modalities_:
            if name in stackers:
                data[name], data[f"{name}_mask"] = stack_inputs(stackers[name], modalities[stackers[name]["source"]].values)
                continue
            mod = modalities[name]
            if mod.kind == "dense":
                mean, scale = self.scalers_[name]
                data[name] = ((mod.values - mean) / scale).astype(np.float32)
            elif mod.kind in TABULAR:
                data.update(tabular_inputs(name, self.tabular_[name], mod.values))
            else:
                data.update(self._branch_inputs(name, mod))
        return data

    def _branch_inputs(self, name, mod, training=False):
        """The net's inputs for an image/text modality: pooled pictures for multi-picture columns.

        ``training``: the inputs of fit, which a branch may decode per batch (``Branch.training_inputs``).
        """
        pictures = getattr(self, "pictures_", {})
        if name in pictures:
            data = dict(zip((name, f"{name}_mask", f"{name}_items"), picture_inputs(self.branches_[name], mod.values)))
            return data
        if mod.kind == "image" and self.layout_ == "wide" and has_several_pictures(mod.values):
            raise TypeError(
                f"column {mod.column!r} holds several pictures in a cell, but one picture per cell in fit; "
                "refit with the lists in the training data"
            )
        branch = self.branches_[name]
        values, mask = branch.training_inputs(mod.values) if training else branch.inputs(mod.values)
        return {name: values, f"{name}_mask": mask}

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
        with torch.inference_mode(), torch_threads(self._inference_threads()):
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

    def _group_of(self, name):
        """The modality whose encoder ``name`` shares (itself when it has its own)."""
        return getattr(self, "encoder_groups_", {}).get(name, name)

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
            name: branch.fitted_encoder(net.encoder_of(name), tag=self.fit_id_)
            for name, branch in self.branches_.items()
        }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        return tags


def _device_of(accelerator):
    device = torch.device(accelerator.device)
    return "cpu" if device.type == "cpu" else str(device)  # skmm names the CPU "cpu", not "cpu:0"
