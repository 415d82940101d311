"""``torchvision:<builder>`` image backbones: any torchvision classification model.

The family is named ``"torchvision"`` in :data:`skmm.registry.image_backbones`;
``"torchvision:resnet18"`` builds ``torchvision.models.get_model("resnet18")``
with its classifier head removed, so the module returns pooled features.

``weights`` chooses the parameters:

- ``None`` or ``"random"``: random initialisation, seeded from ``random_state``;
  the backbone is trainable by default.
- a weights tag of the builder, e.g. ``"IMAGENET1K_V1"`` or ``"DEFAULT"`` (or a full
  name such as ``"ResNet18_Weights.IMAGENET1K_V1"``): torchvision's pretrained
  weights, read from its cache (``$TORCH_HOME/hub/checkpoints``) or downloaded
  there; the backbone is a frozen extractor by default.
- a path to a local state-dict file (``.pth``, ``.pt``, ``.bin``, ``.safetensors``)
  saved from the same architecture, with or without its classifier head: loaded
  with ``torch.load(weights_only=True)``; frozen by default.

Preprocessing comes from the weights' own transforms (``weights.transforms()``:
crop size, mean, std).  Random and file weights use ImageNet's mean/std and the
size of the builder's default weights (224 for most models).  ``image_size``
overrides the size.
"""

import difflib

from torch import nn

from .base import IMAGENET_MEAN, IMAGENET_STD, ImageBackbone
from .optional import (
    RANDOM_WEIGHTS,
    blocks_of,
    import_optional,
    is_weights_file,
    load_weights,
    seeded_weights,
    weights_token,
)

__all__ = ["image_backbone"]

DEFAULT_IMAGE_SIZE = 224


def image_backbone(spec, *, image_size=None, random_state=None, weights=None, **backbone_kwargs):
    """Build the ``torchvision:<spec>`` image backbone.

    Parameters
    ----------
    spec : str
        A torchvision classification builder name ("resnet18", "convnext_tiny", ...).
    image_size : int, optional
        Side of the input images; defaults to the weights' crop size.
    random_state : int, numpy generator or None
        Seeds random initialisation (``weights=None``) without touching torch's
        global RNG.
    weights : None, "random", str or path
        See the module docstring.
    **backbone_kwargs
        Passed to the torchvision builder (``dropout=0.2``, ...).

    Returns
    -------
    ImageBackbone
        Its ``blocks`` are the model's stages, input to output.

    Examples
    --------
    >>> bb = image_backbone("resnet18", image_size=32, random_state=0)
    >>> bb.out_dim, bb.image_size, bb.trainable
    (512, 32, True)
    """
    tvm = import_optional("torchvision.models", "vision")
    spec = _check_builder(tvm, spec)
    enum = _weights_enum(tvm, spec, weights)

    if enum is not None:
        transforms = enum.transforms()
        size, mean, std = int(transforms.crop_size[0]), tuple(transforms.mean), tuple(transforms.std)
    else:
        size, mean, std = _default_size(tvm, spec), IMAGENET_MEAN, IMAGENET_STD

    from_file = is_weights_file(weights)
    with seeded_weights(random_state if enum is None and not from_file else 0) as random_token:
        model = _build(tvm, spec, enum, weights, backbone_kwargs)
        own_size = getattr(model, "image_size", None)  # ViTs fix their input size
        if isinstance(own_size, int):
            size = own_size
            if image_size is not None and int(image_size) != own_size:
                if weights in RANDOM_WEIGHTS and "image_size" not in backbone_kwargs:
                    model = _build(tvm, spec, None, None, {**backbone_kwargs, "image_size": int(image_size)})
                else:
                    raise ValueError(
                        f"torchvision:{spec} with these weights takes images of size {own_size} only, "
                        f"got image_size={image_size}"
                    )
    head_prefixes, out_dim = _strip_head(model, spec)
    if from_file:
        load_weights(model, weights, ignore_prefixes=head_prefixes)

    tag = None if enum is None else f"{type(enum).__name__}.{enum.name}"
    return ImageBackbone.from_model(
        model, family="torchvision", name=spec, weights=weights_token(weights, tag, random_token),
        image_size=int(image_size) if image_size is not None else size, mean=mean, std=std, out_dim=out_dim,
        trainable=enum is None and not from_file, options=backbone_kwargs, blocks=_blocks(model),
    )


def _check_builder(tvm, spec):
    known = tvm.list_models(module=tvm)  # classification builders only
    if spec not in known:
        close = difflib.get_close_matches(spec or "", known, n=5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known)}"
        raise ValueError(f"unknown torchvision classification model {spec!r}{hint}")
    return spec


def _weights_enum(tvm, spec, weights):
    """The WeightsEnum member ``weights`` names, or None for random/file weights."""
    if weights in RANDOM_WEIGHTS or is_weights_file(weights):
        return None
    enum_cls = tvm.get_model_weights(spec)
    if isinstance(weights, enum_cls):
        return weights
    if not isinstance(weights, str):
        raise TypeError(f"weights must be None, a tag string or a file path, got {type(weights).__name__}")
    tag = weights.rpartition(".")[2] if weights.startswith(enum_cls.__name__ + ".") else weights
    try:
        return enum_cls[tag]
    except KeyError:
        pass
    if any(sep in weights for sep in ("/", "\\")) or weights.endswith((".pth", ".pt", ".bin", ".safetensors")):
        raise FileNotFoundError(f"weights file not found: {weights}")
    tags = ", ".join(["DEFAULT", *(m.name for m in enum_cls)])
    raise ValueError(f"unknown weights {weights!r} for torchvision:{spec}; known: {tags}, None, or a local file")


def _default_size(tvm, spec):
    try:
        default = tvm.get_model_weights(spec).DEFAULT
    except (ValueError, AttributeError, KeyError):
        return DEFAULT_IMAGE_SIZE
    return int(default.transforms().crop_size[0])


def _build(tvm, spec, enum, weights, kwargs):
    try:
        return tvm.get_model(spec, weights=enum, **kwargs)
    except TypeError as exc:
        raise TypeError(f"torchvision:{spec} does not take backbone arguments {sorted(kwargs)}: {exc}") from exc
    except OSError as exc:  # URLError included: no network and nothing cached
        raise OSError(
            f"could not load torchvision weights {enum} for {spec!r} ({exc}); on an offline machine pre-fetch "
            f"them into $TORCH_HOME/hub/checkpoints or pass weights=<local state-dict file> "
            f"(see docs/pretrained.md)"
        ) from exc


def _strip_head(model, spec):
    """Replace the last Linear layer (the classifier) by Identity; drop auxiliary heads.

    Returns the state-dict prefixes of what was removed (a weights file from the
    full classifier still holds them) and the number of features left.
    """
    removed = []
    if getattr(model, "aux_logits", False):  # inception_v3, googlenet
        model.aux_logits = False
        for name in ("AuxLogits", "aux1", "aux2"):
            if getattr(model, name, None) is not None:
                setattr(model, name, None)
                removed.append(name + ".")
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"torchvision:{spec} has no Linear classifier head to remove; it is not supported")
    head = linears[-1]
    parent_name, _, attr = head.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    out_dim = parent.get_submodule(attr).in_features
    setattr(parent, attr, nn.Identity())
    removed.append(head + ".")
    return removed, int(out_dim)


def _children(prefix, container):
    return [f"{prefix}.{name}" for name, _ in container.named_children()]


def _blocks(model):
    """The model's stages, input to output (registered submodules of ``model``)."""
    if all(hasattr(model, f"layer{i}") for i in range(1, 5)):  # resnet, resnext, wide_resnet
        names = [f"layer{i}" for i in range(1, 5)]
    elif isinstance(getattr(model, "features", None), nn.Sequential):  # vgg, mobilenet, convnext, swin, ...
        names = _children("features", model.features)
    elif hasattr(getattr(model, "encoder", None), "layers"):  # vision_transformer
        names = _children("encoder.layers", model.encoder.layers)
    elif isinstance(getattr(model, "trunk_output", None), nn.Sequential):  # regnet
        names = _children("trunk_output", model.trunk_output)
    elif isinstance(getattr(model, "blocks", None), nn.ModuleList):  # maxvit
        names = _children("blocks", model.blocks)
    else:  # inception, googlenet: their top-level modules in order
        names = [name for name, _ in model.named_children()]
    return blocks_of(model, names)
