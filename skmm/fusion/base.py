"""The fusion contract: the :class:`Fusion` base class and :func:`register_fusion`.

A fusion joins per-modality embeddings that already have a common width ``dim``.
It is built by a factory called as ``factory(modalities, dim, n_classes, **options)``
and its ``forward(zs)`` takes a list of ``(N, dim)`` tensors, one per modality in
the order of ``modalities``, and returns ``(N, out_dim)``.

Modalities have names (the column names of a wide table, or "image"/"text")
and kinds ("image", "text", "numeric", "categorical", or a ColumnTransformer
block's name).  A factory that accepts a ``kinds`` keyword gets them (one per
modality; :func:`make_fusion`); older plugin factories get the names alone.
"""

import inspect
import numbers

from torch import nn

from ..io.frame import modality_role
from ..registry import fusions

__all__ = ["Fusion", "as_int", "find_modalities", "find_modality", "make_fusion", "modality_kinds", "register_fusion"]


def modality_kinds(modalities, kinds=None):
    """The kind of each modality: ``kinds`` when given, else what each name says (:func:`modality_role`)."""
    if kinds is None:
        return [modality_role(name) for name in modalities]
    kinds = [str(k) for k in kinds]
    if len(kinds) != len(modalities):
        raise ValueError(f"kinds must give one kind per modality {list(modalities)}, got {kinds}")
    return kinds


def find_modalities(modalities, role, kinds=None):
    """Positions of every modality of kind ``role`` (by ``kinds``, else by name, as :func:`find_modality`)."""
    if kinds is None:
        index = find_modality(modalities, role)
        return [] if index is None else [index]
    return [i for i, kind in enumerate(modality_kinds(modalities, kinds)) if kind == role]


def make_fusion(name, modalities, dim, n_classes, kinds=None, **options):
    """The fusion registered as ``name``, built over ``modalities`` (with their ``kinds`` when it takes them)."""
    factory = fusions.get(name)
    try:
        takes_kinds = "kinds" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable: no signature to read
        takes_kinds = False
    if takes_kinds:
        return factory(modalities, dim, n_classes, kinds=kinds, **options)
    return factory(modalities, dim, n_classes, **options)


def find_modality(modalities, role, kinds=None):
    """Index of the (first) modality that plays ``role`` ("image", "text"), or None.

    With ``kinds`` (one per modality), the first modality of that kind.
    Otherwise a modality whose name is ``role`` wins, then the first one whose
    name contains it (``"imageencoder"`` from a ColumnTransformer prefix).
    Names are compared case-insensitively.

    Examples
    --------
    >>> find_modality(["textencoder", "imageencoder"], "image")
    1
    >>> find_modality(["numeric"], "text") is None
    True
    >>> find_modality(["front", "title"], "text", kinds=["image", "text"])
    1
    """
    if kinds is not None:
        found = find_modalities(modalities, role, kinds)
        return found[0] if found else None
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
    ``__init__`` arguments become the fusion's options (``fusion_kwargs``),
    except ``kinds``: a class that takes it gets the modalities' kinds.

    The factory rejects an unknown option with a TypeError that names it and the
    options the fusion knows, instead of Python's bare "unexpected keyword".
    """

    def decorator(cls):
        params = inspect.signature(cls.__init__).parameters
        known = sorted(p.name for p in params.values() if p.kind is p.KEYWORD_ONLY and p.name != "kinds")

        def factory(modalities, dim, n_classes, kinds=None, **options):
            unknown = sorted(set(options) - set(known))
            if unknown:
                raise TypeError(
                    f"fusion {name!r} got unknown option(s) {unknown}; "
                    f"it accepts {known if known else 'no options'}"
                )
            if "kinds" in params:
                options["kinds"] = kinds
            return cls(modalities, as_int(dim), as_int(n_classes), **options)

        factory.__name__ = factory.__qualname__ = f"make_{name}_fusion"
        factory.__doc__ = f"Build a :class:`{cls.__name__}` (fusion {name!r})."
        factory.fusion_class = cls
        fusions.register(name, factory)
        cls.fusion_name = name
        return cls

    return decorator


class Fusion(nn.Module):
    """Base class of fusion modules: validates and stores ``modalities``, their ``kinds`` and ``dim``.

    ``kinds`` (one per modality: "image", "text", "numeric", "categorical", ...)
    defaults to what the names say (:func:`modality_kinds`).

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

    def __init__(self, modalities, dim, n_classes=None, *, kinds=None):
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
        self.kinds = modality_kinds(modalities, kinds)
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

