"""An element-wise max fusion for skmm, shipped as a plugin.

Installed (``pip install examples/plugin_package``), the package declares the
entry point ``elementwise-max = "skmm_max_fusion:make_max_fusion"`` in the group
``skmm.fusions``, so ``FusionClassifier(fusion="elementwise-max")`` finds it
without an import.  In one process, ``skmm.fusion.register_fusion`` does the
same for :class:`MaxFusion` (see ``examples/custom_fusion_plugin.py``).

Nothing here runs at import time: importing the module registers nothing.
"""

import torch

from skmm.fusion import Fusion

__all__ = ["MaxFusion", "make_max_fusion"]


class MaxFusion(Fusion):
    """Element-wise maximum over the modalities, hard or smooth.

    Every modality is already projected to ``dim`` features; each output
    feature is the largest of the modalities' values for it, so each feature
    comes from whichever modality is most confident about it.  With a
    ``temperature`` the maximum is smoothed into ``temperature *
    logsumexp(z / temperature)``, which passes gradient to every modality.

    Parameters
    ----------
    modalities : list of str
        The modality names, in the order of the inputs of ``forward``.
    dim : int
        Width of every modality's embedding, and of the output.
    n_classes : int, optional
        Unused (a fusion that outputs class logits would need it).
    temperature : float, default=0.0
        0 for the hard maximum; larger values are smoother.
    """

    def __init__(self, modalities, dim, n_classes=None, *, temperature=0.0):
        super().__init__(modalities, dim, n_classes)
        if not temperature >= 0:
            raise ValueError(f"fusion 'elementwise-max': temperature must be >= 0, got {temperature!r}")
        self.temperature = float(temperature)
        self.out_dim = dim

    def forward(self, zs):
        """Fuse a list of ``(N, dim)`` tensors, one per modality, into one ``(N, dim)``."""
        self._check(zs)
        stacked = torch.stack(list(zs))  # (M, N, dim)
        if self.temperature == 0:
            return stacked.amax(dim=0)
        return self.temperature * torch.logsumexp(stacked / self.temperature, dim=0)

    def modality_weights(self, zs):
        """Each modality's share of the output, per row: ``(N, M)``, rows summing to 1.

        For the hard maximum, the fraction of features each modality wins;
        for the smooth one, its softmax weight averaged over features.  This
        hook is what ``FusionClassifier.modality_weights`` reads.
        """
        self._check(zs)
        stacked = torch.stack(list(zs), dim=1)  # (N, M, dim)
        if self.temperature == 0:
            winners = torch.nn.functional.one_hot(stacked.argmax(dim=1), self.n_modalities)  # (N, dim, M)
            return winners.float().mean(dim=1)
        return torch.softmax(stacked / self.temperature, dim=1).mean(dim=2)


def make_max_fusion(modalities, dim, n_classes=None, *, temperature=0.0):
    """The entry point's factory: skmm calls it as ``factory(modalities, dim, n_classes, **fusion_kwargs)``.

    An option other than ``temperature`` is a TypeError that names it.

    Returns
    -------
    MaxFusion
        The fusion module.
    """
    return MaxFusion(modalities, dim, n_classes, temperature=temperature)
