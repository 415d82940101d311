"""The built-in fusion modules, each registered by name in :data:`skmm.registry.fusions`.

A fusion joins per-modality embeddings that already have a common width ``dim``.
It is built by a factory called as ``factory(modalities, dim, n_classes, **options)``
and its ``forward(zs)`` takes a list of ``(N, dim)`` tensors, one per modality in
the order of ``modalities``, and returns ``(N, out_dim)``.

============  ==========================================  ===============================
name          idea                                        ``out_dim``
============  ==========================================  ===============================
``concat``    early fusion by concatenation               ``M * dim``
``sum``       elementwise sum                             ``dim``
``gated``     Gated Multimodal Unit (Arevalo et al. 2017) ``output_dim`` (``dim``)
``attention`` transformer layer over modality tokens      ``dim``
``bilinear``  MFB low-rank bilinear pooling (Yu 2017)     ``output_dim`` (``dim``)
``tensor``    Tensor Fusion Network (Zadeh et al. 2017)   ``prod(rank_i + 1)``
``film``      FiLM conditioning (Perez et al. 2018)       ``2 * dim`` (``dim`` if M == 1)
``late``      weighted sum of per-modality class logits   ``n_classes`` (logits)
``image``     ablation: the image modality alone          ``dim``
``text``      ablation: the text modality alone           ``dim``
============  ==========================================  ===============================

``M`` is the number of modalities.  Options of each fusion are keyword-only
arguments of its class; an unknown option is a TypeError that names it.

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

import inspect
import math
import numbers
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import fusions

__all__ = [
    "Fusion",
    "find_modality",
    "ConcatFusion",
    "SumFusion",
    "GatedFusion",
    "AttentionFusion",
    "BilinearFusion",
    "TensorFusion",
    "FiLMFusion",
    "LateFusion",
    "ImageOnly",
    "TextOnly",
]


def find_modality(modalities, role):
    """Index of the modality that plays ``role`` ("image", "text"), or None.

    A modality whose name is ``role`` wins; otherwise the first one whose name
    contains it (``"imageencoder"`` from a ColumnTransformer prefix).  Names are
    compared case-insensitively.

    Examples
    --------
    >>> find_modality(["textencoder", "imageencoder"], "image")
    1
    >>> find_modality(["numeric"], "text") is None
    True
    """
    names = [name.lower() for name in modalities]
    if role in names:
        return names.index(role)
    return next((i for i, name in enumerate(names) if role in name), None)


def _as_int(value):
    # numpy integers (from a parameter grid, len(classes_)) would leak into out_dim
    return int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value


def _register(name):
    """Register a fusion class under ``name`` behind a factory that checks options.

    The factory rejects an unknown option with a TypeError that names it and the
    options the fusion knows, instead of Python's bare "unexpected keyword".
    """

    def decorator(cls):
        known = sorted(
            p.name for p in inspect.signature(cls.__init__).parameters.values() if p.kind is p.KEYWORD_ONLY
        )

        def factory(modalities, dim, n_classes, **options):
            unknown = sorted(set(options) - set(known))
            if unknown:
                raise TypeError(
                    f"fusion {name!r} got unknown option(s) {unknown}; "
                    f"it accepts {known if known else 'no options'}"
                )
            return cls(modalities, _as_int(dim), _as_int(n_classes), **options)

        factory.__name__ = factory.__qualname__ = f"make_{name}_fusion"
        factory.__doc__ = f"Build a :class:`{cls.__name__}` (fusion {name!r})."
        factory.fusion_class = cls
        fusions.register(name, factory)
        cls.fusion_name = name
        return cls

    return decorator


class Fusion(nn.Module):
    """Base class of fusion modules: validates and stores ``modalities`` and ``dim``.

    Subclasses set ``out_dim`` and implement ``forward(zs)``; ``produces_logits``
    is True only for a fusion whose output already is class logits.

    Two hooks serve FusionClassifier's ``unimodal_loss`` (uni-modal auxiliary
    losses): :attr:`used_modalities` lists the positions of the modalities the
    output depends on (all of them, except in the single-modality ablations), and
    a fusion that already has a class head per modality (``late``) returns those
    heads' logits from ``modality_logits(zs)`` and fuses them with
    ``combine(logits)``; other fusions get separate auxiliary heads from FusionNet.
    """

    produces_logits = False
    modality_logits = None  # fusions with a class head per modality define modality_logits(zs) and combine(logits)

    @property
    def used_modalities(self):
        """Positions (in ``modalities``) of the modalities the output depends on."""
        return list(range(self.n_modalities))

    def __init__(self, modalities, dim, n_classes=None):
        super().__init__()
        if isinstance(modalities, str) or not all(isinstance(m, str) for m in modalities):
            raise TypeError(f"modalities must be a list of names, got {modalities!r}")
        modalities = list(modalities)
        if not modalities:
            raise ValueError("a fusion needs at least one modality, got []")
        if len(set(modalities)) != len(modalities):
            raise ValueError(f"modality names must be distinct, got {modalities}")
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
            raise ValueError(f"dim must be a positive int, got {dim!r}")
        self.modalities = modalities
        self.dim = int(dim)
        self.n_classes = n_classes

    @property
    def n_modalities(self):
        return len(self.modalities)

    def _check(self, zs):
        if len(zs) != self.n_modalities:
            raise ValueError(f"expected {self.n_modalities} inputs for modalities {self.modalities}, got {len(zs)}")

    def extra_repr(self):
        return f"modalities={self.modalities}, dim={self.dim}, out_dim={self.out_dim}"


@_register("concat")
class ConcatFusion(Fusion):
    """Early fusion: concatenate the modalities; ``out_dim = M * dim``."""

    def __init__(self, modalities, dim, n_classes=None):
        super().__init__(modalities, dim, n_classes)
        self.out_dim = self.n_modalities * dim

    def forward(self, zs):
        self._check(zs)
        return torch.cat(list(zs), dim=1)


@_register("sum")
class SumFusion(Fusion):
    """Elementwise sum of the modalities; ``out_dim = dim``."""

    def __init__(self, modalities, dim, n_classes=None):
        super().__init__(modalities, dim, n_classes)
        self.out_dim = dim

    def forward(self, zs):
        self._check(zs)
        return torch.stack(list(zs)).sum(dim=0)


@_register("gated")
class GatedFusion(Fusion):
    """Gated Multimodal Unit (Arevalo et al., "Gated Multimodal Units for
    Information Fusion", ICLR workshop 2017).

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

    def __init__(self, modalities, dim, n_classes=None, *, output_dim=None):
        super().__init__(modalities, dim, n_classes)
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


@_register("attention")
class AttentionFusion(Fusion):
    """Self-attention over modality tokens, in the manner of multimodal
    transformers (Vaswani et al. 2017; e.g. Nagrani et al., "Attention
    Bottlenecks for Multimodal Fusion", 2021, without the bottleneck).

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
    pool : {"query", "mean"}, default="query"
    """

    def __init__(self, modalities, dim, n_classes=None, *, n_heads=4, ff_dim=None, dropout=0.1, pool="query"):
        super().__init__(modalities, dim, n_classes)
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


def _signed_sqrt(x, eps=1e-8):
    # sign(x) * sqrt(|x|) has an infinite slope at 0 (NaN gradients through
    # sqrt(relu(x))); eps bounds it.
    return torch.sign(x) * torch.sqrt(x.abs() + eps)


@_register("bilinear")
class BilinearFusion(Fusion):
    """Multi-modal Factorized Bilinear pooling, MFB (Yu et al., "Multi-modal
    Factorized Bilinear Pooling with Co-Attention Learning for Visual Question
    Answering", ICCV 2017).

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

    def __init__(self, modalities, dim, n_classes=None, *, factor=5, output_dim=None, dropout=0.1):
        super().__init__(modalities, dim, n_classes)
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


@_register("tensor")
class TensorFusion(Fusion):
    """Tensor Fusion Network (Zadeh et al., "Tensor Fusion Network for Multimodal
    Sentiment Analysis", EMNLP 2017).

    Each modality is reduced linearly to ``rank_i`` features, a constant 1 is
    appended to each, and the outer product of all of them is flattened: it
    holds every unimodal feature, every bimodal product, and so on up to the
    M-way products.  ``out_dim = prod(rank_i + 1)``; nothing follows.

    Parameters
    ----------
    rank : int or sequence of int, optional
        Width of each reduced modality.  By default 16, lowered for M >= 3 until
        ``(rank + 1) ** M <= max_features`` (16 for 3 modalities, 7 for 4).
    max_features : int, default=5000
        The bound used to choose the default ``rank``.
    """

    def __init__(self, modalities, dim, n_classes=None, *, rank=None, max_features=5000):
        super().__init__(modalities, dim, n_classes)
        m = self.n_modalities
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


@_register("film")
class FiLMFusion(Fusion):
    """Feature-wise Linear Modulation (Perez et al., "FiLM: Visual Reasoning with
    a General Conditioning Layer", AAAI 2018).

    The image modality (the first modality when none is named like one) is
    modulated by the others concatenated, ``cond``:
    ``gamma, beta = Linear(cond)`` and ``film = (1 + gamma) * z_image + beta``.
    Writing the scale as ``1 + gamma`` starts it near the identity, as the paper
    recommends, without special initialisation.

    FiLM alone lets the head see the conditioning modalities only through how
    they modulate the image; when a conditioning modality is informative by
    itself that is a loss, so by default a linear projection of ``cond`` is
    concatenated: ``out = [film, Linear(cond)]``, ``out_dim = 2 * dim``.  With
    ``concat_condition=False`` ``out = film`` and ``out_dim = dim``.  With a
    single modality there is nothing to condition on: ``out = z``.

    Parameters
    ----------
    concat_condition : bool, default=True
    """

    def __init__(self, modalities, dim, n_classes=None, *, concat_condition=True):
        super().__init__(modalities, dim, n_classes)
        found = find_modality(self.modalities, "image")
        self.target = 0 if found is None else found
        cond_dim = (self.n_modalities - 1) * dim
        if cond_dim:
            self.film = nn.Linear(cond_dim, 2 * dim)
            self.condition = nn.Linear(cond_dim, dim) if concat_condition else None
            self.out_dim = 2 * dim if concat_condition else dim
        else:
            self.film = self.condition = None
            self.out_dim = dim

    def forward(self, zs):
        self._check(zs)
        z = zs[self.target]
        if self.film is None:
            return z
        cond = torch.cat([c for i, c in enumerate(zs) if i != self.target], dim=1)
        gamma, beta = self.film(cond).chunk(2, dim=1)
        out = (1 + gamma) * z + beta
        if self.condition is None:
            return out
        return torch.cat([out, self.condition(cond)], dim=1)


@_register("late")
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

    def __init__(self, modalities, dim, n_classes, *, hidden_dim=None, dropout=0.0, learn_weights=True):
        super().__init__(modalities, dim, n_classes)
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
    def modality_weights(self):
        """The current weight of each modality, ``{name: weight}``, summing to 1."""
        weights = torch.softmax(self.weight_logits.detach(), dim=0).tolist()
        return dict(zip(self.modalities, weights))

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
    """Ablation: keep the one modality playing ``role`` and drop the others."""

    role = None

    def __init__(self, modalities, dim, n_classes=None):
        super().__init__(modalities, dim, n_classes)
        index = find_modality(self.modalities, self.role)
        if index is None:
            article = "an" if self.role[0] in "aeiou" else "a"
            raise ValueError(f"fusion={self.role!r} needs {article} {self.role} modality; got {self.modalities}")
        self.index = index
        self.out_dim = dim

    @property
    def used_modalities(self):
        return [self.index]

    def forward(self, zs):
        self._check(zs)
        return zs[self.index]


@_register("image")
class ImageOnly(_SingleModality):
    """Ablation: the image modality alone (see :func:`find_modality`); ``out_dim = dim``."""

    role = "image"


@_register("text")
class TextOnly(_SingleModality):
    """Ablation: the text modality alone (see :func:`find_modality`); ``out_dim = dim``."""

    role = "text"
