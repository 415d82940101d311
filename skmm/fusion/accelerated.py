"""Training a FusionNet with Hugging Face Accelerate: several processes, GPUs or machines.

:class:`AcceleratedNet` is skmm's skorch net with skorch's
:class:`~skorch.hf.AccelerateMixin`: the accelerator prepares the module, the
optimizer, the learning-rate schedule and every data loader, so each process
of a data-parallel run (``accelerate launch``, ``torchrun``) trains on its
shard of the batches and the gradients are averaged across processes.
:func:`plain_net` gives the trained, unwrapped module back in an ordinary net
that pickles and predicts in any process.  Accelerate is an optional
dependency (``pip install "skmm[accelerate]"``); this module is imported only
when a classifier is given an ``accelerator``.
"""

import torch
from skorch.hf import AccelerateMixin

from ..utils.optional import import_optional
from .training import AutocastMultilabelNet, AutocastNet, AutocastRegressorNet

__all__ = ["AccelerateFusionMixin", "AcceleratedNet", "accelerated_net_class", "check_accelerator", "plain_net"]


class AccelerateFusionMixin(AccelerateMixin):
    """skorch's AccelerateMixin for skmm's nets: a criterion without parameters is not
    prepared, and every process ends with the main process's buffers.

    Mixed precision is the accelerator's (``Accelerator(mixed_precision=...)``);
    the device is the one it places the module on.
    """

    def _initialize_accelerator(self):
        # A criterion without parameters (the cross-entropy) needs no preparing, and
        # DistributedDataParallel refuses to wrap it.
        criteria = self._criteria
        self._criteria = [
            name for name in criteria if any(p.requires_grad for p in getattr(self, name + "_").parameters())
        ]
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria

    def unimodal_weight(self):
        # the accelerator wraps the FusionNet (DistributedDataParallel with several processes)
        return self.accelerator.unwrap_model(self.module_).unimodal_loss

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # The gradients are averaged, so the parameters agree across processes; buffers such
        # as batch-norm statistics are updated by each process's own batches. The main
        # process's are given to all, so every process ends with the same model.
        if self.accelerator.num_processes > 1:
            from accelerate.utils import broadcast

            with torch.no_grad():
                for buffer in self.accelerator.unwrap_model(self.module_).buffers():
                    buffer.copy_(broadcast(buffer.detach().clone(), from_process=0))
        return super().on_train_end(net, X=X, y=y, **kwargs)


class AcceleratedNet(AccelerateFusionMixin, AutocastNet):
    """:class:`~skmm.fusion.training.AutocastNet` (one class per row) trained through an ``accelerate.Accelerator``."""


class AcceleratedRegressorNet(AccelerateFusionMixin, AutocastRegressorNet):
    """:class:`~skmm.fusion.training.AutocastRegressorNet` trained through an ``accelerate.Accelerator``."""


class AcceleratedMultilabelNet(AccelerateFusionMixin, AutocastMultilabelNet):
    """:class:`~skmm.fusion.training.AutocastMultilabelNet` trained through an ``accelerate.Accelerator``."""


_ACCELERATED = {
    AutocastNet: AcceleratedNet, AutocastRegressorNet: AcceleratedRegressorNet,
    AutocastMultilabelNet: AcceleratedMultilabelNet,
}


def accelerated_net_class(net_class):
    """The accelerated twin of one of skmm's skorch net classes (classifier, regressor, multilabel)."""
    return _ACCELERATED[net_class]


def check_accelerator(accelerator):
    """``accelerator`` itself if it is None or an ``accelerate.Accelerator``, else a TypeError."""
    if accelerator is None:
        return None
    accelerate = import_optional("accelerate", "accelerate", what="FusionClassifier(accelerator=...)")
    if not isinstance(accelerator, accelerate.Accelerator):
        raise TypeError(f"accelerator must be an accelerate.Accelerator or None, got {type(accelerator).__name__}")
    return accelerator


def plain_net(trained, make_net):
    """An ordinary net around the module ``trained`` (an :class:`AcceleratedNet`) trained.

    ``make_net(module)`` builds the untrained net without an accelerator;
    the result holds the unwrapped trained module and the training history,
    so it predicts, pickles and saves like any fitted net.
    """
    net = make_net(trained.module_)
    net.initialize()
    net.history = trained.history
    return net
