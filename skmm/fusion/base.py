"""The fusion contract: the :class:`Fusion` base class and :func:`register_fusion`.

A fusion joins per-modality embeddings that already have a common width ``dim``.
It is built by a factory called as ``factory(modalities, dim, n_classes, **options)``
and its ``forward(zs)`` takes a list of ``(N, dim)`` tensors, one per modality in
the order of ``modalities``, and returns ``(N, out_dim)``.
"""

import inspect
import numbers

from torch import nn

from ..io.frame import modality_role
from ..registry import fusions

__all__ = ["Fusion", "as_int", "find_modality", "register_fusion"]


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
    return next((i for i, name in enumerate(modalities) if modality_role(name) == role), None)


def as_int(value):
    # numpy integers (from a parameter grid, len(classes_)) would leak into out_dim
    return int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value


def register_fusion(name):
    """Register a fusion class under ``name`` behind a factory that checks options.

    Use it as a class decorator on a :class:`Fusion` subclass; its keyword-only
    ``__init__`` arguments become the fusion's options (``fusion_kwargs``).

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
            return cls(modalities, as_int(dim), as_int(n_classes), **options)

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

    def modality_weights(self, zs):
        """How much each modality weighs in each row's fused output: (N, M), rows sum to 1.

        None for fusions that do not weigh modalities (concat, sum, bilinear, tensor,
        film); gated, attention and late fusion say what their gates, attention or
        learned weights give.
        """
        return None

    def _check(self, zs):
        if len(zs) != self.n_modalities:
            raise ValueError(f"expected {self.n_modalities} inputs for modalities {self.modalities}, got {len(zs)}")

    def extra_repr(self):
        return f"modalities={self.modalities}, dim={self.dim}, out_dim={self.out_dim}"

