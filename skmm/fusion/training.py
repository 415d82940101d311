"""How a FusionNet is trained: the skorch net, its learning-rate schedule and callbacks.

:func:`build_net` turns an estimator's training settings into a skorch net around a
:class:`~skmm.fusion.net.FusionNet`; :class:`AutocastNet` is that net (skorch's
classifier with bf16 autocast and the uni-modal auxiliary losses).
"""

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping, EpochScoring, GradientNormClipping, LRScheduler
from skorch.dataset import ValidSplit
from skorch.utils import to_tensor
from torch.utils.data import default_collate

from ..utils.device import autocast

__all__ = ["AugmentingCollate", "AutocastNet", "WarmupCosine", "build_net"]


class AutocastNet(NeuralNetClassifier):
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

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if not isinstance(y_pred, tuple):
            return super().get_loss(y_pred, y_true, X=X, training=training)
        logits, per, mask = y_pred
        loss = super().get_loss(logits, y_true, X=X, training=training)
        y_true = to_tensor(y_true, device=self.device)
        weight = self.criterion_.weight
        smoothing = getattr(self.criterion_, "label_smoothing", 0.0)
        losses = []
        for m in range(per.shape[1]):
            rows = mask[:, m]
            if not rows.any():
                continue
            y = y_true[rows]
            # the (weighted) mean CrossEntropyLoss(weight) computes; a 0/0 is skipped
            total = weight[y].sum() if weight is not None else y.new_tensor(len(y), dtype=per.dtype)
            if total > 0:
                losses.append(F.cross_entropy(per[rows, m], y, weight=weight, reduction="sum",
                                              label_smoothing=smoothing) / total)
        if losses:
            loss = loss + self.module_.unimodal_loss * torch.stack(losses).mean()
        return loss


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


def build_net(
    module,
    *,
    n_classes,
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
    :class:`skmm.FusionClassifier`); ``class_weights`` is one weight per class or None,
    ``label_smoothing`` goes to the CrossEntropyLoss criterion, ``augment`` maps input
    names to the augmentation of their training batches (see :class:`AugmentingCollate`;
    the training loader gets the largest ``num_workers`` they ask for), ``streamed``
    maps input names decoded per batch to their loader workers, ``seed``
    fixes the validation split.  With an ``accelerator`` (``accelerate.Accelerator``)
    the net is an :class:`~skmm.fusion.accelerated.AcceleratedNet`, placed by it.
    """
    schedule = WarmupCosine(warmup_epochs, max_epochs)
    cbs = [("lr_schedule", LRScheduler(policy=torch.optim.lr_scheduler.LambdaLR, lr_lambda=schedule))]
    if grad_clip is not None:
        cbs.append(("grad_clip", GradientNormClipping(gradient_clip_value=grad_clip)))
    train_split = None
    if validation_fraction is not None:
        train_split = ValidSplit(validation_fraction, stratified=True, random_state=seed)
        monitor, lower_is_better = "valid_loss", True
        if early_stopping_scoring is not None:
            monitor, lower_is_better = "valid_score", False
            cbs.append((monitor, EpochScoring(early_stopping_scoring, lower_is_better=False, name=monitor)))
        cbs.append(("early_stopping", EarlyStopping(
            monitor=monitor, lower_is_better=lower_is_better, patience=n_iter_no_change, load_best=True)))
    cbs.extend(callbacks or [])
    kwargs = {}
    if class_weights is not None:
        kwargs["criterion__weight"] = torch.tensor(class_weights, dtype=torch.float32)
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
    net_class = AutocastNet
    if accelerator is not None:
        from .accelerated import AcceleratedNet  # skorch.hf and accelerate, only when asked for

        net_class, device = AcceleratedNet, None
        kwargs["accelerator"] = accelerator
        # the epoch table from the main process only, and none at all with verbose=0
        kwargs["callbacks__print_log__sink"] = getattr(accelerator, "print", print) if verbose else print
    return net_class(
        module,
        criterion=torch.nn.CrossEntropyLoss,
        criterion__label_smoothing=float(label_smoothing),
        optimizer=torch.optim.AdamW,
        optimizer__weight_decay=weight_decay,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        train_split=train_split,
        callbacks=cbs,
        iterator_train__shuffle=True,
        classes=np.arange(n_classes),
        device=device,
        precision=precision,
        verbose=verbose,
        **kwargs,
    )
