"""How a FusionNet is trained: the skorch net, its learning-rate schedule and callbacks.

:func:`build_net` turns an estimator's training settings into a skorch net around a
:class:`~skmm.fusion.net.FusionNet`; :class:`AutocastNet` is that net for one class
per row (skorch's classifier with bf16 autocast and the uni-modal auxiliary losses),
:class:`AutocastRegressorNet` for real-valued outputs (regression) and
:class:`AutocastMultilabelNet` for several 0/1 labels per row (sigmoid outputs,
binary cross-entropy).
"""

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import EarlyStopping, EpochScoring, GradientNormClipping, LRScheduler
from skorch.dataset import ValidSplit
from skorch.utils import to_tensor
from torch.utils.data import default_collate

from ..utils.device import autocast

__all__ = [
    "LOSSES", "TASKS", "AugmentingCollate", "AutocastMultilabelNet", "AutocastNet", "AutocastRegressorNet",
    "HeldOutRows", "WarmupCosine", "build_net",
]

#: What a net is trained for: one class per row, several 0/1 labels per row, real values.
TASKS = ("multiclass", "multilabel", "regression")
#: Regression losses, by scikit-learn's names.
LOSSES = {"squared_error": torch.nn.MSELoss, "absolute_error": torch.nn.L1Loss, "huber": torch.nn.HuberLoss}


class _Autocast:
    """bf16 autocast of the forward pass and the uni-modal auxiliary losses, for any skorch net.

    In training, a FusionNet with uni-modal auxiliary losses returns
    ``(outputs, modality_outputs, mask)``; :meth:`get_loss` then adds
    ``module_.unimodal_loss`` times the mean over modalities of
    :meth:`modality_loss`, each over the rows that had the modality.
    """

    def __init__(self, module, *, precision="auto", **kwargs):
        super().__init__(module, **kwargs)
        self.precision = precision

    def infer(self, x, **fit_params):
        # device None: an accelerator places the module and runs its own autocast
        with autocast(self.device, self.precision) if self.device is not None else contextlib.nullcontext():
            out = super().infer(x, **fit_params)
        if isinstance(out, tuple):
            logits, per, mask = out
            return logits.float(), per.float(), mask
        return out.float()

    def get_iterator(self, dataset, training=False):
        loader = super().get_iterator(dataset, training=training)
        if not training and isinstance(loader, torch.utils.data.DataLoader) and loader.generator is None:
            # A loader draws a base seed from torch's global RNG each pass, shuffled or not.  Predicting (and
            # validating) must not: a predict in one thread would shift the seeded stream of a fit in another
            loader.generator = torch.Generator().manual_seed(0)
        return loader

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if not isinstance(y_pred, tuple):
            return super().get_loss(y_pred, y_true, X=X, training=training)
        logits, per, mask = y_pred
        loss = super().get_loss(logits, y_true, X=X, training=training)
        y_true = to_tensor(y_true, device=self.device)
        losses = []
        for m in range(per.shape[1]):
            rows = mask[:, m]
            if rows.any():
                term = self.modality_loss(per[rows, m], y_true[rows])
                if term is not None:
                    losses.append(term)
        if losses:
            loss = loss + self.unimodal_weight() * torch.stack(losses).mean()
        return loss

    def unimodal_weight(self):
        """The FusionNet's ``unimodal_loss``, the weight of the auxiliary losses."""
        return self.module_.unimodal_loss

    def modality_loss(self, outputs, y):
        """The criterion on one modality's outputs (its rows only); None to skip it."""
        return self.criterion_(outputs, y.to(outputs.dtype))


class AutocastNet(_Autocast, NeuralNetClassifier):
    """skorch's classifier with the forward pass under bf16 autocast where ``precision``
    asks for it (by default on CUDA only).

    bf16 keeps float32's range, so no gradient scaling is needed; logits come back as
    float32 so the loss and the probabilities are computed at full precision.

    In training, a FusionNet with uni-modal auxiliary losses returns
    ``(logits, modality_logits, mask)``; :meth:`get_loss` then adds
    ``module_.unimodal_loss`` times the mean of the per-modality cross-entropies,
    each over the rows that had the modality, weighted by the criterion's class
    weights and smoothed by its ``label_smoothing``.
    """

    def modality_loss(self, outputs, y):
        """The (weighted) mean cross-entropy CrossEntropyLoss(weight) computes; None for a 0/0."""
        weight = self.criterion_.weight
        smoothing = getattr(self.criterion_, "label_smoothing", 0.0)
        total = weight[y].sum() if weight is not None else y.new_tensor(len(y), dtype=outputs.dtype)
        if not total > 0:
            return None
        return F.cross_entropy(outputs, y, weight=weight, reduction="sum", label_smoothing=smoothing) / total


class AutocastRegressorNet(_Autocast, NeuralNetRegressor):
    """skorch's regressor with bf16 autocast (as :class:`AutocastNet`): outputs are real values.

    ``y`` is float32 of shape ``(n_samples, n_outputs)``; the uni-modal auxiliary
    losses apply the criterion (squared, absolute or Huber error) to each
    modality's own outputs.
    """


class AutocastMultilabelNet(AutocastRegressorNet):
    """The net of a multilabel classifier: one logit per label, binary cross-entropy.

    ``predict_proba`` gives each label's sigmoid probability, ``(n_samples,
    n_labels)``, and ``predict`` thresholds them at 0.5 (what validation scoring
    during training sees); the estimator applies its own thresholds.
    """

    def predict_proba(self, X):
        return 1.0 / (1.0 + np.exp(-super().predict_proba(X).astype(np.float64)))

    def predict(self, X):
        return (self.predict_proba(X) > 0.5).astype(np.int64)


class AugmentingCollate:
    """The training loader's collate function: skorch's batch, with some inputs augmented.

    Parameters
    ----------
    augment : dict
        Input name -> a callable ``f(images, present)`` giving the batch's
        ``images`` (uint8, ``(N, 3, S, S)``) randomly transformed, where
        ``present`` (the ``<name>_mask`` input, or None) says which rows have an
        image (:class:`skmm.encoders.augmentation.ImageAugmentation`).

    Only the training loader uses it (``iterator_train__collate_fn``), so
    validation rows and predictions are never augmented; it runs once per
    batch drawn, in the loader's workers when it has some, so every epoch gets
    new random transforms.
    """

    def __init__(self, augment, streamed=()):
        self.augment = dict(augment)
        self.streamed = tuple(streamed)

    def __call__(self, rows):
        X, y = default_collate(rows)
        X = dict(X)
        for name in self.streamed:
            if not isinstance(X[name], (list, tuple)):
                continue  # prediction inputs, decoded beforehand
            # decoded per batch (skmm.encoders.streaming.LazyImages): (pixels, loaded) pairs
            X[name], loaded = X[name]
            mask = f"{name}_mask"
            X[mask] = X[mask] & loaded if mask in X else loaded
        for name, augment in self.augment.items():
            X[name] = augment(X[name], X.get(f"{name}_mask"))
        return X, y


def _one_thread_worker(worker_id):
    # augmenting workers share the cores with the training process: one torch thread each
    torch.set_num_threads(1)


class WarmupCosine:
    """Learning-rate factor per epoch: linear warm-up, then cosine decay to zero.

    A class rather than a lambda so that fitted models pickle.

    Examples
    --------
    >>> from skmm.fusion.training import WarmupCosine
    >>> [round(WarmupCosine(1, 3)(e), 2) for e in range(3)]
    [1.0, 1.0, 0.5]
    """

    def __init__(self, warmup_epochs, max_epochs):
        self.warmup_epochs, self.max_epochs = int(warmup_epochs), int(max_epochs)

    def __call__(self, epoch):
        if epoch < self.warmup_epochs:
            return (epoch + 1) / self.warmup_epochs
        span = max(1, self.max_epochs - self.warmup_epochs)
        return 0.5 * (1 + math.cos(math.pi * min(epoch - self.warmup_epochs, span) / span))


class HeldOutRows:
    """A skorch ``train_split`` that keeps the rows at ``indices`` out of training (validation rows).

    Unlike ``validation_fraction`` it stops nothing early: the held-out rows are
    scored after training (FusionClassifier's ``blend``).
    """

    def __init__(self, indices):
        self.indices = np.asarray(indices, dtype=np.int64)

    def __call__(self, dataset, y=None, groups=None):
        keep = np.ones(len(dataset), dtype=bool)
        keep[self.indices] = False
        return (torch.utils.data.Subset(dataset, np.flatnonzero(keep)),
                torch.utils.data.Subset(dataset, self.indices))


def build_net(
    module,
    *,
    n_classes,
    task="multiclass",
    loss="squared_error",
    class_weights=None,
    label_smoothing=0.0,
    augment=None,
    lr,
    weight_decay,
    max_epochs,
    batch_size,
    warmup_epochs=0,
    grad_clip=None,
    backbone_lr=None,
    validation_fraction=None,
    holdout=None,
    n_iter_no_change=5,
    early_stopping_scoring=None,
    callbacks=None,
    device="cpu",
    precision="auto",
    seed=0,
    verbose=0,
    accelerator=None,
    streamed=None,
):
    """The skorch net that trains ``module``: AdamW, warm-up + cosine schedule, optional
    gradient clipping, and early stopping on a stratified validation split.

    Parameters are the estimator's training settings (see
    :class:`skmm.FusionClassifier`); ``n_classes`` is the number of outputs (classes,
    labels or regression targets), ``task`` one of :data:`TASKS`, ``loss`` a key of
    :data:`LOSSES` (regression); ``class_weights`` is one weight per class (multiclass:
    CrossEntropyLoss's ``weight``; multilabel: BCEWithLogitsLoss's ``pos_weight``, the
    weight of each label's positive rows) or None, ``label_smoothing`` goes to the
    CrossEntropyLoss criterion, ``augment`` maps input
    names to the augmentation of their training batches (see :class:`AugmentingCollate`;
    the training loader gets the largest ``num_workers`` they ask for), ``streamed``
    maps input names decoded per batch to their loader workers, ``seed``
    fixes the validation split.  With an ``accelerator`` (``accelerate.Accelerator``)
    the net is an :class:`~skmm.fusion.accelerated.AcceleratedNet`, placed by it.
    ``holdout``: indices of rows kept out of training without early stopping
    (:class:`HeldOutRows`), when ``validation_fraction`` is None.
    """
    schedule = WarmupCosine(warmup_epochs, max_epochs)
    cbs = [("lr_schedule", LRScheduler(policy=torch.optim.lr_scheduler.LambdaLR, lr_lambda=schedule))]
    if grad_clip is not None:
        cbs.append(("grad_clip", GradientNormClipping(gradient_clip_value=grad_clip)))
    train_split = None
    if validation_fraction is not None:
        # stratified on the class; rows of several labels or real values are split at random
        train_split = ValidSplit(validation_fraction, stratified=task == "multiclass", random_state=seed)
        monitor, lower_is_better = "valid_loss", True
        if early_stopping_scoring is not None:
            monitor, lower_is_better = "valid_score", False
            cbs.append((monitor, EpochScoring(early_stopping_scoring, lower_is_better=False, name=monitor)))
        cbs.append(("early_stopping", EarlyStopping(
            monitor=monitor, lower_is_better=lower_is_better, patience=n_iter_no_change, load_best=True)))
    elif holdout is not None:
        train_split = HeldOutRows(holdout)
    cbs.extend(callbacks or [])
    kwargs = {}
    if class_weights is not None:
        key = "criterion__pos_weight" if task == "multilabel" else "criterion__weight"
        kwargs[key] = torch.tensor(class_weights, dtype=torch.float32)
    if backbone_lr is not None:
        kwargs["optimizer__param_groups"] = [("encoders.*", {"lr": backbone_lr})]
    if str(device).startswith("cuda"):
        kwargs.update(iterator_train__pin_memory=True, iterator_valid__pin_memory=True)
    if augment or streamed:
        kwargs["iterator_train__collate_fn"] = AugmentingCollate(augment or {}, streamed or ())
        workers = max([int(getattr(a, "num_workers", 0)) for a in (augment or {}).values()]
                      + list((streamed or {}).values()))
        if streamed:
            # validation rows are decoded per batch too (never augmented)
            kwargs["iterator_valid__collate_fn"] = AugmentingCollate({}, streamed)
            if workers:
                kwargs.update(iterator_valid__num_workers=workers, iterator_valid__worker_init_fn=_one_thread_worker)
        if workers:
            # skorch makes a new loader every epoch; each draws its workers' seeds from torch's RNG
            kwargs.update(iterator_train__num_workers=workers, iterator_train__worker_init_fn=_one_thread_worker)
    if task == "multiclass":
        net_class = AutocastNet
        kwargs.update(criterion=torch.nn.CrossEntropyLoss, criterion__label_smoothing=float(label_smoothing),
                      classes=np.arange(n_classes))
    elif task == "multilabel":
        net_class = AutocastMultilabelNet
        kwargs.update(criterion=torch.nn.BCEWithLogitsLoss, predict_nonlinearity=None)
    elif task == "regression":
        net_class = AutocastRegressorNet
        kwargs.update(criterion=LOSSES[loss], predict_nonlinearity=None)
    else:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if accelerator is not None:
        from .accelerated import accelerated_net_class  # skorch.hf and accelerate, only when asked for

        net_class, device = accelerated_net_class(net_class), None
        kwargs["accelerator"] = accelerator
        # the epoch table from the main process only, and none at all with verbose=0
        kwargs["callbacks__print_log__sink"] = getattr(accelerator, "print", print) if verbose else print
    return net_class(
        module,
        optimizer=torch.optim.AdamW,
        optimizer__weight_decay=weight_decay,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        train_split=train_split,
        callbacks=cbs,
        iterator_train__shuffle=True,
        device=device,
        precision=precision,
        verbose=verbose,
        **kwargs,
    )
