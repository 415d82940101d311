"""Multiplicative fusions: bilinear pooling (MFB), tensor fusion (TFN) and FiLM.

Each models interactions between modalities by products of their embeddings
rather than sums; see :mod:`skmm.fusion.modules` for the table of all fusions.
"""

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from .base import Fusion, find_modalities, register_fusion

__all__ = ["BilinearFusion", "FiLMFusion", "TensorFusion"]


def _signed_sqrt(x, eps=1e-8):
    # sign(x) * sqrt(|x|) has an infinite slope at 0 (NaN gradients through
    # sqrt(relu(x))); eps bounds it.
    return torch.sign(x) * torch.sqrt(x.abs() + eps)


@register_fusion("bilinear")
class BilinearFusion(Fusion):
    """Multi-modal Factorized Bilinear pooling (MFB): low-rank products of the modalities.

    Yu et al., "Multi-modal Factorized Bilinear Pooling with Co-Attention
    Learning for Visual Question Answering", ICCV 2017.

    Each modality is projected to ``factor * output_dim`` features, the
    projections are multiplied elementwise (a rank-``factor`` bilinear form for
    two modalities, multilinear for more), sum-pooled over windows of
    ``factor``, then power-normalised (signed square root) and L2-normalised.
    A single modality goes through the same steps: projection, pooling,
    normalisation.

    Parameters
    ----------
    factor : int, default=5
        ``k`` in the paper, the rank of each output's bilinear form.
    output_dim : int, optional
        ``o`` in the paper; ``dim`` by default.
    dropout : float, default=0.1
        Applied to the product before pooling, as in the paper.
    """

    def __init__(self, modalities, dim, n_classes=None, *, kinds=None, factor=5, output_dim=None, dropout=0.1):
        super().__init__(modalities, dim, n_classes, kinds=kinds)
        self.factor = int(factor)
        self.out_dim = dim if output_dim is None else int(output_dim)
        self.projections = nn.ModuleList(nn.Linear(dim, self.factor * self.out_dim) for _ in self.modalities)
        self.dropout = nn.Dropout(dropout)

    def forward(self, zs):
        self._check(zs)
        product = self.projections[0](zs[0])
        for projection, z in zip(self.projections[1:], zs[1:]):
            product = product * projection(z)
        pooled = self.dropout(product).view(-1, self.out_dim, self.factor).sum(dim=2)
        return F.normalize(_signed_sqrt(pooled), dim=1)


@register_fusion("tensor")
class TensorFusion(Fusion):
    """Tensor Fusion Network (TFN): the outer product of the reduced modalities.

    Zadeh et al., "Tensor Fusion Network for Multimodal Sentiment Analysis",
    EMNLP 2017.

    Each modality is reduced linearly to ``rank_i`` features, a constant 1 is
    appended to each, and the outer product of all of them is flattened: it
    holds every unimodal feature, every bimodal product, and so on up to the
    M-way products.  ``out_dim = prod(rank_i + 1)``; nothing follows.

    With many modalities the product grows as ``2 ** M`` even at rank 1: an
    ``M`` with ``2 ** M > max_features`` (13 or more by default) is a
    ValueError pointing to ``bilinear`` or ``attention``, which grow linearly.

    Parameters
    ----------
    rank : int or sequence of int, optional
        Width of each reduced modality.  By default 16, lowered for M >= 3 until
        ``(rank + 1) ** M <= max_features`` (16 for 3 modalities, 7 for 4).
    max_features : int, default=5000
        The bound used to choose the default ``rank``, and the most features
        the default rank may give.
    """

    def __init__(self, modalities, dim, n_classes=None, *, kinds=None, rank=None, max_features=5000):
        super().__init__(modalities, dim, n_classes, kinds=kinds)
        m = self.n_modalities
        if rank is None and 2**m > max_features:
            raise ValueError(
                f"fusion 'tensor': {m} modalities give at least 2 ** {m} = {2**m} features even at rank 1, "
                f"over max_features={max_features}; use fusion='bilinear' or 'attention' for this many modalities, "
                "or raise max_features"
            )
        if rank is None:
            rank = 16
            while rank > 1 and (rank + 1) ** m > max_features:
                rank -= 1
        ranks = [int(rank)] * m if isinstance(rank, numbers.Integral) else [int(r) for r in rank]
        if len(ranks) != m or min(ranks) < 1:
            raise ValueError(f"fusion 'tensor': rank must be a positive int or one per modality, got {rank!r}")
        self.ranks = ranks
        self.out_dim = math.prod(r + 1 for r in ranks)
        self.reductions = nn.ModuleList(nn.Linear(dim, r) for r in ranks)

    def forward(self, zs):
        self._check(zs)
        out = None
        for reduce, z in zip(self.reductions, zs):
            z = reduce(z)
            z = torch.cat([z, z.new_ones(len(z), 1)], dim=1)
            out = z if out is None else (out.unsqueeze(2) * z.unsqueeze(1)).flatten(1)
        return out


@register_fusion("film")
class FiLMFusion(Fusion):
    """Feature-wise Linear Modulation (FiLM): the other modalities scale and shift the images'.

    Perez et al., "FiLM: Visual Reasoning with a General Conditioning Layer",
    AAAI 2018.

    The image modalities (by kind; the first modality when none is an image)
    are modulated by the others concatenated, ``cond``: for each image
    modality ``i``, ``gamma_i, beta_i = Linear_i(cond)`` and
    ``film_i = (1 + gamma_i) * z_i + beta_i``; ``film`` is the mean of the
    ``film_i`` (one image: itself).  When every modality is an image the
    first is modulated by the others.  Writing the scale as ``1 + gamma``
    starts it near the identity, as the paper recommends, without special
    initialisation.

    FiLM alone lets the head see the conditioning modalities only through how
    they modulate the image; when a conditioning modality is informative by
    itself that is a loss, so by default a linear projection of ``cond`` is
    concatenated: ``out = [film, Linear(cond)]``, ``out_dim = 2 * dim``.  With
    ``concat_condition=False`` ``out = film`` and ``out_dim = dim``.  With a
    single modality there is nothing to condition on: ``out = z``.

    Parameters
    ----------
    concat_condition : bool, default=True
        Concatenate a projection of the conditioning modalities to the
        modulated image features (see above).
    """

    def __init__(self, modalities, dim, n_classes=None, *, kinds=None, concat_condition=True):
        super().__init__(modalities, dim, n_classes, kinds=kinds)
        targets = find_modalities(self.modalities, "image", kinds)
        if not targets or len(targets) == self.n_modalities:
            targets = [targets[0] if targets else 0]
        self.targets = targets
        self.target = targets[0]
        cond_dim = (self.n_modalities - len(targets)) * dim
        if cond_dim:
            # one image: a single Linear, named as before several images were read (saved models load)
            films = [nn.Linear(cond_dim, 2 * dim) for _ in targets]
            self.film = films[0] if len(films) == 1 else nn.ModuleList(films)
            self.condition = nn.Linear(cond_dim, dim) if concat_condition else None
            self.out_dim = 2 * dim if concat_condition else dim
        else:
            self.film = self.condition = None
            self.out_dim = dim

    def forward(self, zs):
        self._check(zs)
        if self.film is None:
            return zs[self.target]
        cond = torch.cat([c for i, c in enumerate(zs) if i not in self.targets], dim=1)
        outs = []
        films = self.film if isinstance(self.film, nn.ModuleList) else [self.film]
        for film, i in zip(films, self.targets):
            gamma, beta = film(cond).chunk(2, dim=1)
            outs.append((1 + gamma) * zs[i] + beta)
        out = outs[0] if len(outs) == 1 else torch.stack(outs).mean(dim=0)
        if self.condition is None:
            return out
        return torch.cat([out, self.condition(cond)], dim=1)
