"""FusionNet: per-modality encoder -> projection -> fusion -> MLP head."""

import torch
from torch import nn

from .base import make_fusion

__all__ = ["FusionNet", "Projection"]


class Projection(nn.Module):
    """Linear -> LayerNorm -> GELU -> Dropout: brings every modality to a common width."""

    def __init__(self, in_dim, dim, dropout):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, dim), nn.LayerNorm(dim), nn.GELU(), nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class FusionNet(nn.Module):
    """The network FusionClassifier trains.

    The forward pass takes one keyword per modality (its model inputs) and
    ``<name>_mask`` (bool, True where the row has that modality); rows without a
    modality use the modality's learned "missing" embedding.

    Parameters
    ----------
    branches : dict
        Modality name -> ``(encoder, in_dim)``: ``encoder`` is a module mapping the
        modality's model inputs to (N, in_dim) features, or None when the inputs
        already are features (frozen, cached encoders).  Modalities given the
        same module object share it (one set of weights, stored once, under the
        first of their names; :meth:`encoder_of`).
    n_classes : int
        Number of outputs: classes (softmax), labels (sigmoid, multilabel) or
        regression targets; ``n_outputs`` keeps it.
    fusion : str
        A name in :data:`skmm.registry.fusions`.
    dim : int
        Width every modality is projected to.
    hidden_dim : int
        Width of the head's hidden layer (0: a linear head).
    dropout : float
        Dropout in projections and head.
    modality_dropout : float
        During training, each modality of each row is replaced by its learned
        "missing" embedding with this probability.
    fusion_kwargs : dict or None
        Extra options of the fusion module.
    unimodal_loss : float
        Weight of the uni-modal auxiliary losses (0: none).  When > 0 and the
        fusion uses two or more modalities, each of them also gets a class head
        of its own -- the fusion's per-modality heads for ``late``, an extra
        ``Linear(dim, n_classes)`` (used in training only) otherwise -- and the
        forward pass in training mode returns ``(logits, modality_logits, mask)``:
        ``modality_logits`` is ``(N, M', n_classes)`` for the ``M'`` used
        modalities, ``mask`` ``(N, M')`` says which rows had that modality (after
        modality dropout).  FusionClassifier adds ``unimodal_loss`` times the
        mean of their cross-entropies to the loss of ``logits``.  In evaluation
        mode the forward pass returns ``logits`` alone.
    kinds : list of str or None
        The kind of each modality ("image", "text", "numeric", "categorical",
        ...), handed to fusions that take it; None: what the names say.
    pooling : dict or None
        Modality name -> "mean" or "attention", for modalities with several
        items per row (pictures of one cell): their inputs are ``(N, P, ...)``
        with ``<name>_items`` (bool ``(N, P)``, True where item ``p`` of row
        ``n`` exists); the encoder runs on every item and the items' features
        are pooled per row, by their mean or by learned attention weights
        (a linear score per item, softmax over the row's items).
    """

    def __init__(self, branches, n_classes, fusion="concat", dim=128, hidden_dim=128, dropout=0.1,
                 modality_dropout=0.0, fusion_kwargs=None, unimodal_loss=0.0, kinds=None, pooling=None):
        super().__init__()
        self.modalities = list(branches)
        self.n_outputs = int(n_classes)  # classes, labels or regression targets: the head's width
        first = {}  # id(module) -> the first modality that uses it
        self.encoder_keys = {}
        encoders = {}
        for n, (enc, _) in branches.items():
            if enc is None:
                encoders[n] = nn.Identity()
                self.encoder_keys[n] = n
                continue
            key = first.setdefault(id(enc), n)
            self.encoder_keys[n] = key
            if key == n:
                encoders[n] = enc
        self.encoders = nn.ModuleDict(encoders)
        self.pooling = dict(pooling or {})
        self.pool_scores = nn.ModuleDict(
            {n: nn.Linear(branches[n][1], 1) for n, how in self.pooling.items() if how == "attention"}
        )
        self.projections = nn.ModuleDict({n: Projection(d, dim, dropout) for n, (_, d) in branches.items()})
        self.missing = nn.ParameterDict({n: nn.Parameter(torch.zeros(dim)) for n in branches})
        self.modality_dropout = float(modality_dropout)
        self.kinds = None if kinds is None else list(kinds)
        self.fusion = make_fusion(fusion, self.modalities, dim, n_classes, kinds=self.kinds, **(fusion_kwargs or {}))
        if getattr(self.fusion, "produces_logits", False):
            self.head = nn.Identity()
        elif hidden_dim:
            self.head = nn.Sequential(
                nn.Linear(self.fusion.out_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_dim, n_classes)
            )
        else:
            self.head = nn.Linear(self.fusion.out_dim, n_classes)
        self.unimodal_loss = float(unimodal_loss)
        # plugin fusions need not subclass Fusion: they use every modality and have no per-modality heads
        used = list(getattr(self.fusion, "used_modalities", range(len(self.modalities))))
        self.unimodal = used if self.unimodal_loss > 0 and len(used) > 1 else []
        self.unimodal_heads = None
        if self.unimodal and getattr(self.fusion, "modality_logits", None) is None:
            self.unimodal_heads = nn.ModuleList(nn.Linear(dim, n_classes) for _ in self.unimodal)

    def encoder_of(self, name):
        """The encoder module of modality ``name`` (shared modalities give the same module)."""
        # models pickled before encoders could be shared have no encoder_keys
        return self.encoders[getattr(self, "encoder_keys", {}).get(name, name)]

    def modality_weights(self, **inputs):
        """Per-row weight of each modality in the fusion, (N, M), or None (see Fusion.modality_weights)."""
        weigh = getattr(self.fusion, "modality_weights", None)
        if not callable(weigh):
            return None
        return weigh(self._embed(inputs)[0])

    def embed(self, **inputs):
        """Projected per-modality embeddings (missing rows replaced), in modality order."""
        return self._embed(inputs)[0]

    def _embed(self, inputs):
        zs, masks = [], []
        for name in self.modalities:
            x = inputs[name]
            if x.dtype == torch.float64:
                x = x.float()
            items = inputs.get(f"{name}_items")
            if items is None:
                feats = self.encoder_of(name)(x).float()
            else:
                feats = self._pool(name, x, items.bool())
            z = self.projections[name](feats)
            mask = inputs.get(f"{name}_mask")
            if mask is None:
                mask = torch.ones(z.shape[0], dtype=torch.bool, device=z.device)
            mask = mask.bool()
            if self.training and self.modality_dropout > 0:
                mask = mask & (torch.rand(mask.shape, device=mask.device) >= self.modality_dropout)
            zs.append(torch.where(mask[:, None], z, self.missing[name].to(z.dtype)))
            masks.append(mask)
        return zs, masks

    def _pool(self, name, x, items):
        """Encode every item of ``x`` (N, P, ...) and pool the existing ones per row: (N, in_dim)."""
        n, p = items.shape
        feats = self.encoder_of(name)(x.flatten(0, 1)).float().view(n, p, -1)
        if name in self.pool_scores:
            scores = self.pool_scores[name](feats).squeeze(-1).masked_fill(~items, -1e4)
            weights = torch.softmax(scores, dim=1) * items
        else:
            weights = items.float()
        weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-12)  # a row without items pools to 0
        return (weights.unsqueeze(-1) * feats).sum(dim=1)

    def forward(self, **inputs):
        zs, masks = self._embed(inputs)
        if not (self.training and self.unimodal):
            return self.head(self.fusion(zs))
        if self.unimodal_heads is None:  # the fusion's own per-modality heads (late fusion)
            per = self.fusion.modality_logits(zs)
            logits = self.head(self.fusion.combine(per))
            per = per[:, self.unimodal]
        else:
            logits = self.head(self.fusion(zs))
            per = torch.stack([head(zs[i]) for head, i in zip(self.unimodal_heads, self.unimodal)], dim=1)
        return logits, per, torch.stack([masks[i] for i in self.unimodal], dim=1)
