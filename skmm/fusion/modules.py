"""The built-in fusion modules, each registered by name in :data:`skmm.registry.fusions`.

A fusion joins per-modality embeddings that already have a common width ``dim``.
It is built by a factory called as ``factory(modalities, dim, n_classes, **options)``
and its ``forward(zs)`` takes a list of ``(N, dim)`` tensors, one per modality in
the order of ``modalities``, and returns ``(N, out_dim)``.

=============  ============================================  ===============================
name           idea                                          ``out_dim``
=============  ============================================  ===============================
``concat``     early fusion by concatenation                 ``M * dim``
``sum``        elementwise sum                               ``dim``
``gated``      Gated Multimodal Unit (Arevalo et al. 2017)   ``output_dim`` (``dim``)
``attention``  transformer layer over modality tokens        ``dim``
``bilinear``   MFB low-rank bilinear pooling (Yu 2017)       ``output_dim`` (``dim``)
``tensor``     Tensor Fusion Network (Zadeh et al. 2017)     ``prod(rank_i + 1)``
``film``       FiLM conditioning (Perez et al. 2018)         ``2 * dim`` (``dim`` if M == 1)
``late``       weighted sum of per-modality class logits     ``n_classes`` (logits)
``image``      ablation: the image modality alone            ``dim``
``text``       ablation: the text modality alone             ``dim``
=============  ============================================  ===============================

``M`` is the number of modalities; every fusion takes any ``M >= 1`` (wide
tables give one modality per column).  With several modalities of a kind,
``image``/``text`` average them, ``film`` modulates each image modality by the
non-image ones (:class:`~skmm.fusion.multiplicative.FiLMFusion`), and
``tensor`` lowers its rank and refuses an ``M`` whose product would exceed
``max_features`` even at rank 1 (:class:`~skmm.fusion.multiplicative.TensorFusion`).
Options of each fusion are keyword-only arguments of its class; an unknown
option is a TypeError that names it.

Examples
--------
>>> import torch
>>> from skmm.registry import fusions
>>> fusion = fusions.get("gated")(["image", "text"], dim=8, n_classes=3)
>>> fusion([torch.randn(4, 8), torch.randn(4, 8)]).shape
torch.Size([4, 8])
>>> fusion.out_dim
8
"""
import math
import numbers
import warnings

import torch
from torch import nn

from .base import Fusion, find_modalities, register_fusion

__all__ = ["AttentionFusion", "ConcatFusion", "GatedFusion", "ImageOnly", "LateFusion", "SumFusion", "TextOnly"]


@register_fusion("concat")
class ConcatFusion(Fusion):
    """Early fusion: concatenate the modalities; ``out_dim = M * dim``."""

    def __init__(self, modalities, dim, n_classes=None, *, kinds=None):
        super().__init__(modalities, dim, n_classes, kinds=kinds)
        self.out_dim = self.n_modalities * dim

    def forward(self, zs):
        self._check(zs)
        return torch.cat(list(zs), dim=1)


@register_fusion("sum")
class SumFusion(Fusion):
    """Elementwise sum of the modalities; ``out_dim = dim``."""

    def __init__(self, modalities, dim, n_classes=None, *, kinds=None):
        super().__init__(modalities, dim, n_classes, kinds=kinds)
        self.out_dim = dim

    def forward(self, zs):
        self._check(zs)
        return torch.stack(list(zs)).sum(dim=0)


@register_fusion("gated")
class GatedFusion(Fusion):
    """Gated Multimodal Unit (GMU): a learned gate weighs the modalities, feature by feature.

    Arevalo et al., "Gated Multimodal Units for Information Fusion", ICLR
    workshop 2017.

    Each modality becomes ``h_i = tanh(W_i z_i)``; a gate computed from all inputs
    concatenated decides, per feature, how much each ``h_i`` contributes:
    ``out = sum_i g_i * h_i``.  With two modalities the gate is the paper's
    sigmoid ``g, 1 - g``; with more it is a softmax over the M gates of each
    feature (the same thing, generalised); with one it is 1.

    Parameters
    ----------
    output_dim : int, optional
        Width of ``h_i`` and of the output; ``dim`` by default.
    """

    def __init__(self, modalities, dim, n_classes=None, *, kinds=None, output_dim=None):
        super().__init__(modalities, dim, n_classes, kinds=kinds)
        self.out_dim = dim if output_dim is None else int(output_dim)
        self.hidden = nn.ModuleList(nn.Linear(dim, self.out_dim) for _ in self.modalities)
        m = self.n_modalities
        n_gates = 0 if m == 1 else (1 if m == 2 else m)
        self.gate = nn.Linear(m * dim, n_gates * self.out_dim) if n_gates else None

    def forward(self, zs):
        self._check(zs)
        hs = torch.stack([torch.tanh(layer(z)) for layer, z in zip(self.hidden, zs)], dim=1)  # (N, M, out)
        if self.gate is None:
            return hs[:, 0]
        logits = self.gate(torch.cat(list(zs), dim=1))
        if self.n_modalities == 2:
            g = torch.sigmoid(logits)
            return g * hs[:, 0] + (1 - g) * hs[:, 1]
        gates = torch.softmax(logits.view(-1, self.n_modalities, self.out_dim), dim=1)
        return (gates * hs).sum(dim=1)

    def modality_weights(self, zs):
        """Each modality's gate, averaged over the output features."""
        self._check(zs)
        n = zs[0].shape[0]
        if self.gate is None:
            return zs[0].new_ones(n, 1)
        logits = self.gate(torch.cat(list(zs), dim=1))
        if self.n_modalities == 2:
            g = torch.sigmoid(logits).mean(dim=1)
            return torch.stack([g, 1 - g], dim=1)
        return torch.softmax(logits.view(-1, self.n_modalities, self.out_dim), dim=1).mean(dim=2)


@register_fusion("attention")
class AttentionFusion(Fusion):
    """Self-attention over modality tokens, in the manner of multimodal transformers.

    Vaswani et al., "Attention Is All You Need", NeurIPS 2017; as in Nagrani
    et al., "Attention Bottlenecks for Multimodal Fusion", NeurIPS 2021,
    without the bottleneck.

    The modalities are stacked as M tokens of width ``dim``, a learned
    modality-type embedding is added (attention is order-blind otherwise), one
    ``nn.TransformerEncoderLayer`` lets every token attend to the others, and the
    tokens are pooled by a learned query (``pool="query"``) or their mean.

    Parameters
    ----------
    n_heads : int, default=4
        Attention heads; falls back to 1 head, with a warning, when ``dim`` is
        not divisible by it.
    ff_dim : int, optional
        Width of the layer's feed-forward block; ``2 * dim`` by default (torch's
        own default of 2048 is far too wide here).
    dropout : float, default=0.1
        Dropout of the transformer layer.
    pool : {"query", "mean"}, default="query"
        How the M tokens become one vector: weighted by a learned query's
        attention, or averaged.
    """

    def __init__(self, modalities, dim, n_classes=None, *, kinds=None, n_heads=4, ff_dim=None, dropout=0.1, pool="query"):
        super().__init__(modalities, dim, n_classes, kinds=kinds)
        if pool not in ("query", "mean"):
            raise ValueError(f"fusion 'attention': pool must be 'query' or 'mean', got {pool!r}")
        if dim % n_heads:
            warnings.warn(
                f"fusion 'attention': dim={dim} is not divisible by n_heads={n_heads}; using 1 head",
                UserWarning,
                stacklevel=3,
            )
            n_heads = 1
        self.n_heads = n_heads
        self.pool = pool
        self.out_dim = dim
        self.type_embedding = nn.Parameter(0.02 * torch.randn(self.n_modalities, dim))
        self.layer = nn.TransformerEncoderLayer(
            d_model=dim,
            nhead=n_heads,
            dim_feedforward=2 * dim if ff_dim is None else int(ff_dim),
            dropout=dropout,
            batch_first=True,
        )
        self.query = nn.Parameter(0.02 * torch.randn(dim)) if pool == "query" else None

    def forward(self, zs):
        self._check(zs)
        tokens = self.layer(torch.stack(list(zs), dim=1) + self.type_embedding)  # (N, M, dim)
        if self.query is None:
            return tokens.mean(dim=1)
        weights = torch.softmax(tokens @ self.query / math.sqrt(self.dim), dim=1)  # (N, M)
        return (weights.unsqueeze(-1) * tokens).sum(dim=1)

    def modality_weights(self, zs):
        """The pooling query's attention over the modality tokens (uniform for ``pool="mean"``)."""
        self._check(zs)
        if self.query is None:
            n = zs[0].shape[0]
            return zs[0].new_full((n, self.n_modalities), 1.0 / self.n_modalities)
        tokens = self.layer(torch.stack(list(zs), dim=1) + self.type_embedding)
        return torch.softmax(tokens @ self.query / math.sqrt(self.dim), dim=1)


@register_fusion("late")
class LateFusion(Fusion):
    """Late fusion: a classifier head per modality, logits averaged with learned weights.

    Each modality gets its own head (``Linear(dim, n_classes)``, or a one-hidden-
    layer MLP with ``hidden_dim``); the output is ``sum_i softmax(w)_i * logits_i``
    (decision-level fusion, see Baltrušaitis et al., "Multimodal Machine Learning:
    A Survey and Taxonomy", TPAMI 2019).  The output already is ``(N, n_classes)``
    logits: ``produces_logits = True``, and the caller adds no head.

    Parameters
    ----------
    hidden_dim : int, optional
        Width of a hidden ReLU layer in each head; none by default.
    dropout : float, default=0.0
        Before each head's last layer.
    learn_weights : bool, default=True
        Learn the modality weights ``w`` with the rest of the net; False keeps them
        equal.  Weights learned on the training rows favour the modality whose
        head fits those rows best, which is not always the one that generalises
        best; equal weights with FusionClassifier's ``unimodal_loss`` give the
        product of separately trained per-modality classifiers.
    """

    produces_logits = True

    def __init__(self, modalities, dim, n_classes, *, kinds=None, hidden_dim=None, dropout=0.0, learn_weights=True):
        super().__init__(modalities, dim, n_classes, kinds=kinds)
        if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 1:
            raise ValueError(f"fusion 'late' needs n_classes, a positive int; got {n_classes!r}")
        self.out_dim = n_classes = int(n_classes)

        def head():
            if hidden_dim is None:
                return nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, n_classes))
            return nn.Sequential(
                nn.Linear(dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_dim, n_classes)
            )

        self.heads = nn.ModuleList(head() for _ in self.modalities)
        if not isinstance(learn_weights, bool):
            raise TypeError(f"fusion 'late' option learn_weights must be a bool, got {learn_weights!r}")
        # uniform at start; a frozen parameter when not learned (AdamW skips it), so state dicts agree
        self.weight_logits = nn.Parameter(torch.zeros(self.n_modalities), requires_grad=learn_weights)

    @property
    def weights_by_modality(self):
        """The current weight of each modality, ``{name: weight}``, summing to 1."""
        weights = torch.softmax(self.weight_logits.detach(), dim=0).tolist()
        return dict(zip(self.modalities, weights))

    def modality_weights(self, zs):
        """The learned weights, the same for every row."""
        self._check(zs)
        return torch.softmax(self.weight_logits, dim=0).expand(zs[0].shape[0], -1)

    def modality_logits(self, zs):
        """Each modality's head output, stacked: ``(N, M, n_classes)``."""
        self._check(zs)
        return torch.stack([head(z) for head, z in zip(self.heads, zs)], dim=1)

    def combine(self, logits):
        """The weighted sum of :meth:`modality_logits`' output: ``(N, n_classes)``."""
        weights = torch.softmax(self.weight_logits, dim=0)
        return (weights[:, None] * logits).sum(dim=1)

    def forward(self, zs):
        return self.combine(self.modality_logits(zs))


class _SingleModality(Fusion):
    """Ablation: keep the modalities playing ``role`` (their mean when several) and drop the others."""

    role = None

    def __init__(self, modalities, dim, n_classes=None, *, kinds=None):
        super().__init__(modalities, dim, n_classes, kinds=kinds)
        found = find_modalities(self.modalities, self.role, kinds)
        if not found:
            article = "an" if self.role[0] in "aeiou" else "a"
            raise ValueError(f"fusion={self.role!r} needs {article} {self.role} modality; got {self.modalities}")
        self.indices = found
        self.index = found[0]
        self.out_dim = dim

    @property
    def used_modalities(self):
        return list(self.indices)

    def forward(self, zs):
        self._check(zs)
        if len(self.indices) == 1:
            return zs[self.index]
        return torch.stack([zs[i] for i in self.indices]).mean(dim=0)


@register_fusion("image")
class ImageOnly(_SingleModality):
    """Ablation: the image modality alone (the mean of the image modalities when several); ``out_dim = dim``."""

    role = "image"


@register_fusion("text")
class TextOnly(_SingleModality):
    """Ablation: the text modality alone (the mean of the text modalities when several); ``out_dim = dim``."""

    role = "text"
