"""Screening of broken modalities: an embedding far outside its training distribution counts as missing.

A fusion network trained on pictures and texts trusts both.  When one modality
changes at prediction time (pictures recoloured or re-drawn, texts from another
field), its embeddings land where the network never saw any, and the fused
prediction follows them wherever they go.  :class:`OutlierScreen` keeps, per
modality, the mean and spread of the projected embeddings of the training rows
and a threshold on a row's mean squared z-score; in evaluation mode,
:class:`~skmm.fusion.net.FusionNet` treats a modality whose score is over the
threshold as missing for that row, so the prediction rests on the other
modalities and the learned "missing" embedding (which ``modality_dropout``
trains).  The threshold is ``factor`` times the ``quantile`` of the training
rows' scores; ``factor=inf`` (the state before calibration) screens nothing.
"""

import math

import torch
from torch import nn

__all__ = ["OutlierScreen"]


class OutlierScreen(nn.Module):
    """Mean, scale and threshold of one modality's projected embeddings (buffers, saved with the net).

    Parameters
    ----------
    dim : int
        Width of the embeddings.

    Examples
    --------
    >>> import torch
    >>> screen = OutlierScreen(4)
    >>> screen.calibrate(torch.randn(200, 4, generator=torch.Generator().manual_seed(0)), factor=2.0)
    >>> screen.keep(torch.tensor([[0.1, 0.0, -0.2, 0.3], [50.0, 50.0, 50.0, 50.0]])).tolist()
    [True, False]
    """

    def __init__(self, dim):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.register_buffer("threshold", torch.tensor(math.inf))

    def score(self, z):
        """Mean squared z-score of each row of ``z`` (N, dim), float32."""
        return (((z.float() - self.mean) / self.scale) ** 2).mean(dim=1)

    def keep(self, z):
        """Bool (N,): True where the row's embedding is within the threshold."""
        return self.score(z) <= self.threshold

    @torch.no_grad()
    def calibrate(self, z, *, factor, quantile=0.99):
        """Fit mean and scale on the training rows' embeddings ``z`` and set the threshold."""
        z = z.float()
        if len(z) < 2:
            return
        self.mean.copy_(z.mean(dim=0))
        self.scale.copy_(z.std(dim=0).clamp_min(1e-6))
        self.threshold.fill_(float(factor) * float(torch.quantile(self.score(z), quantile)))
