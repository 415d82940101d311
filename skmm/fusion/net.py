"""FusionNet: per-modality encoder -> projection -> fusion -> MLP head."""

import torch
from torch import nn

from ..registry import fusions

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
        already are features (frozen, cached encoders).
    n_classes : int
        Number of classes.
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
    """

    def __init__(self, branches, n_classes, fusion="concat", dim=128, hidden_dim=128, dropout=0.1,
                 modality_dropout=0.0, fusion_kwargs=None, unimodal_loss=0.0):
        super().__init__()
        self.modalities = list(branches)
        self.encoders = nn.ModuleDict({n: enc if enc is not None else nn.Identity() for n, (enc, _) in branches.items()})
        self.projections = nn.ModuleDict({n: Projection(d, dim, dropout) for n, (_, d) in branches.items()})
        self.missing = nn.ParameterDict({n: nn.Parameter(torch.zeros(dim)) for n in branches})
        self.modality_dropout = float(modality_dropout)
        self.fusion = fusions.get(fusion)(self.modalities, dim, n_classes, **(fusion_kwargs or {}))
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
            z = self.projections[name](self.encoders[name](x).float())
            mask = inputs.get(f"{name}_mask")
            if mask is None:
                mask = torch.ones(z.shape[0], dtype=torch.bool, device=z.device)
            mask = mask.bool()
            if self.training and self.modality_dropout > 0:
                mask = mask & (torch.rand(mask.shape, device=mask.device) >= self.modality_dropout)
            zs.append(torch.where(mask[:, None], z, self.missing[name].to(z.dtype)))
            masks.append(mask)
        return zs, masks

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
