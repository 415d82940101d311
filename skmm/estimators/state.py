"""The fitted state of skmm's estimators: pickling (joblib) and the plain-data form of skmm.save.

:class:`FittedStateMixin` is part of
:class:`~skmm.estimators.base.BaseFusionEstimator`: ``__getstate__`` keeps each
tensor once and loadable on a CPU-only machine; ``__skmm_getstate__`` /
``__skmm_setstate__`` give the fitted state as plain data and rebuild the
FusionNet from the parameters (skmm/persistence).
"""

import dataclasses

import numpy as np
import torch
from skorch.history import History

from ..encoders import ImageEncoder, TextEncoder
from ..io.frame import InputLayout
from ..utils.seeding import seeded
from .wide import tabular_from_state, tabular_state

__all__ = ["LAYOUT_ATTRIBUTES", "FittedStateMixin"]


class FittedStateMixin:
    """Pickling and skmm.save support of a fitted BaseFusionEstimator; not for direct use."""

    # -- persistence --------------------------------------------------------------------
    def __getstate__(self):
        state = self.__dict__.copy()
        if state.get("accelerator") is not None:
            # an Accelerator belongs to the processes of one run (their process group); the
            # trained model pickles without it and predicts in any process
            state["accelerator"] = None
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
        params = self.net_.get_params()
        weight = params.get("criterion__weight", params.get("criterion__pos_weight"))
        return {
            "layout": {k: getattr(self.input_layout_, k) for k in LAYOUT_ATTRIBUTES if hasattr(self.input_layout_, k)},
            "input": {k: getattr(self, k) for k in ("n_features_in_", "feature_names_in_") if hasattr(self, k)},
            "modalities": list(self.modalities_),
            "branches": {
                # a shared encoder is stored once, under the first of its columns (its group's leader)
                name: {"encoder": b.encoder, "width": int(b.width), "trainable": bool(b.trainable)}
                if self._group_of(name) == name else {"shared_with": self._group_of(name)}
                for name, b in self.branches_.items()
            },
            "kinds": list(getattr(self, "modality_kinds_", [])),
            "pictures": dict(getattr(self, "pictures_", {})),
            "tabular": {name: tabular_state(col) for name, col in getattr(self, "tabular_", {}).items()},
            "scalers": {name: list(pair) for name, pair in self.scalers_.items()},
            "stackers": {
                name: {"source": st["source"], "model": st["model"], "classes": [int(c) for c in st["classes"]],
                       "n_classes": int(st["n_classes"])}
                for name, st in getattr(self, "stackers_", {}).items()
            },
            "n_outputs": int(self.net_.module_.n_outputs),
            "class_weights": None if weight is None else weight.cpu().numpy(),
            "fit_id": self.fit_id_,
            "device": str(self.device_),
            "history": _plain(list(self.net_.history)),
        }

    def __skmm_setstate__(self, state, context):
        """Rebuild the fitted estimator of :meth:`__skmm_getstate__`: the FusionNet from the parameters."""
        context.checkable(self)._check_params()
        layout = InputLayout(
            image_col=self.image_col, text_col=self.text_col, columns=self._wide("columns"), owner=type(self).__name__
        )
        for key, value in state["layout"].items():
            if key not in LAYOUT_ATTRIBUTES:
                raise ValueError(f"{context.where}: unknown layout attribute {key!r}")
            setattr(layout, key, value)
        self.input_layout_, self.layout_ = layout, layout.kind_
        for key in LAYOUT_ATTRIBUTES[1:]:
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
        self.modality_kinds_ = [str(k) for k in state.get("kinds", [])]
        self.pictures_ = {str(k): str(v) for k, v in state.get("pictures", {}).items()}
        self.branches_, self.tabular_, self.encoder_groups_, net_branches, augment = {}, {}, {}, {}, {}
        self.stackers_ = {}
        modules = {}
        for name in self.modalities_:
            if name in state.get("stackers", {}):
                saved = state["stackers"][name]
                self.stackers_[name] = {"source": str(saved["source"]), "model": saved["model"],
                                        "classes": np.asarray(saved["classes"], dtype=np.int64),
                                        "n_classes": int(saved["n_classes"])}
                net_branches[name] = (None, int(saved["n_classes"]))
                continue
            if name in self.scalers_:
                net_branches[name] = (None, len(self.scalers_[name][0]))
                continue
            if name in state.get("tabular", {}):
                self.tabular_[name], net_branches[name] = tabular_from_state(state["tabular"][name])
                continue
            saved = state["branches"][name]
            leader = saved.get("shared_with", name) if isinstance(saved, dict) else name
            if leader not in modules:
                saved = state["branches"][leader]
                if not isinstance(saved.get("encoder"), (ImageEncoder, TextEncoder)):
                    raise ValueError(f"{context.where}: the branch {leader!r} has no encoder")
                branch = saved["encoder"].as_branch()
                if (branch.width, branch.trainable) != (saved["width"], saved["trainable"]):
                    raise ValueError(f"{context.where}: the rebuilt branch {leader!r} does not match the saved one")
                modules[leader] = (branch, dataclasses.replace(branch, module=None, augment=None))
            branch, kept = modules[leader]
            net_branches[name] = (branch.module, branch.width)
            if branch.augment is not None and name not in self.pictures_:
                augment[name] = branch.augment
            self.branches_[name] = kept
            self.encoder_groups_[name] = leader
        weights = state["class_weights"]
        seed = self.random_state if isinstance(self.random_state, (int, np.integer)) else 0
        with seeded(0):  # the new layers' initial weights are replaced; the caller's RNG is left alone
            self.net_ = self._make_net(net_branches, int(state["n_outputs"]), weights, seed, augment=augment)
            self.net_.initialize()
        context.load_module("net", self.net_.module_)
        self.net_.history = History(state["history"])


_CUDA_DEPENDENT = ("module", "callbacks")  # prefixes; see BaseFusionEstimator.__getstate__
LAYOUT_ATTRIBUTES = ("kind_", "image_col_", "text_col_", "ignored_columns_", "blocks_", "roles_", "column_roles_")  # InputLayout's decisions


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
