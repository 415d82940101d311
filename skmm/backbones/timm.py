"""``timm:<model>`` image backbones: any model of PyTorch Image Models.

The family is named ``"timm"`` in :data:`skmm.registry.image_backbones`;
``"timm:convnext_tiny"`` builds ``timm.create_model("convnext_tiny", num_classes=0)``,
whose forward already returns pooled features.  A pretrained tag may be part of the
name (``"timm:resnet18.a1_in1k"``) or be given as ``weights``.

``weights`` chooses the parameters:

- ``None`` or ``"random"``: random initialisation, seeded from ``random_state``;
  trainable by default.
- ``"DEFAULT"``: timm's pretrained weights for the name (its default tag unless the
  name carries one), read from the Hugging Face cache (``$HF_HOME``) or downloaded;
  frozen by default.
- another string that is not a file: a pretrained tag (``"a1_in1k"``), as above.
- a path to a local state-dict file (``.safetensors``, ``.pth``, ``.pt``, ``.bin``)
  of the same model, e.g. the ``model.safetensors`` of the ``timm/<name>`` Hub
  repository: loaded with ``weights_only=True``, classifier keys ignored; frozen by
  default.  (``pretrained_cfg_overlay=dict(file=path)`` passed as a backbone
  argument with ``weights="DEFAULT"`` goes through timm's own loader instead.)

Preprocessing comes from timm's data config
(:func:`timm.data.resolve_model_data_config`): the input size of the model's
pretrained configuration and, for pretrained or file weights, its mean/std; random
weights use ImageNet's mean/std.  ``image_size`` overrides the size; vision
transformers need ``img_size=...`` or ``dynamic_img_size=True`` backbone arguments
to accept another size.
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


def image_backbone(spec, *, image_size=None, random_state=None, weights=None, **backbone_kwargs):
    """Build the ``timm:<spec>`` image backbone.

    Parameters
    ----------
    spec : str
        A timm model name, optionally with a pretrained tag ("resnet18.a1_in1k").
    image_size : int, optional
        Side of the input images; defaults to the model's data config.
    random_state : int, numpy generator or None
        Seeds random initialisation without touching torch's global RNG.
    weights : None, "random", "DEFAULT", a tag or a path
        See the module docstring.
    **backbone_kwargs
        Passed to :func:`timm.create_model` (``drop_path_rate=0.1``, ...).

    Returns
    -------
    ImageBackbone
        Its ``blocks`` are the model's stages, input to output.

    Examples
    --------
    >>> bb = image_backbone("test_resnet", random_state=0)
    >>> bb.out_dim, bb.image_size, bb.trainable
    (96, 160, True)
    """
    timm = import_optional("timm", "timm")
    name, pretrained = _resolve_name(timm, spec, weights)
    from_file = is_weights_file(weights)

    with seeded_weights(random_state if not (pretrained or from_file) else 0) as random_token:
        try:
            model = timm.create_model(name, pretrained=pretrained, num_classes=0, **backbone_kwargs)
        except TypeError as exc:
            raise TypeError(f"timm:{spec} does not take backbone arguments {sorted(backbone_kwargs)}: {exc}") from exc
        except OSError as exc:  # no network and nothing in the cache
            raise OSError(
                f"could not load timm pretrained weights for {name!r} ({exc}); on an offline machine pre-fetch "
                f"them into $HF_HOME or pass weights=<local state-dict file> (see docs/pretrained.md)"
            ) from exc
    if from_file:
        classifier = model.pretrained_cfg.get("classifier") or ()
        classifier = (classifier,) if isinstance(classifier, str) else tuple(classifier)
        load_weights(model, weights, ignore_prefixes=tuple(c + "." for c in classifier))

    config = timm.data.resolve_model_data_config(model)
    size = int(image_size) if image_size is not None else int(config["input_size"][-1])
    if pretrained or from_file:
        mean, std = tuple(map(float, config["mean"])), tuple(map(float, config["std"]))
    else:
        mean, std = IMAGENET_MEAN, IMAGENET_STD

    tag = f"pretrained:{model.pretrained_cfg.get('tag') or 'default'}" if pretrained else None
    return ImageBackbone.from_model(
        model, family="timm", name=name, weights=weights_token(weights, tag, random_token), image_size=size,
        mean=mean, std=std, out_dim=int(getattr(model, "head_hidden_size", None) or model.num_features),
        trainable=not (pretrained or from_file), options=backbone_kwargs, blocks=_blocks(model),
    )


def _resolve_name(timm, spec, weights):
    """``(model name for create_model, pretrained?)`` from ``spec`` and ``weights``."""
    if not spec or not timm.is_model(spec):
        known = timm.list_models()
        close = difflib.get_close_matches(spec or "", known, n=5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see timm.list_models()"
        raise ValueError(f"unknown timm model {spec!r}{hint}")
    if weights in RANDOM_WEIGHTS or is_weights_file(weights):
        return spec, False
    if not isinstance(weights, str):
        raise TypeError(f"weights must be None, 'DEFAULT', a tag or a file path, got {type(weights).__name__}")
    if weights == "DEFAULT":
        return spec, True
    if any(sep in weights for sep in ("/", "\\")) or weights.endswith((".pth", ".pt", ".bin", ".safetensors")):
        raise FileNotFoundError(f"weights file not found: {weights}")
    if "." in spec:
        raise ValueError(f"timm:{spec} already names a pretrained tag; weights must be None, 'DEFAULT' or a file")
    return f"{spec}.{weights}", True


def _blocks(model):
    """Stages from timm's ``feature_info``, input to output."""
    names = [info["module"] for info in getattr(model, "feature_info", []) if info.get("module")]
    if not names:
        for attr in ("stages", "blocks", "layers"):
            if isinstance(getattr(model, attr, None), (nn.Sequential, nn.ModuleList)):
                names = [f"{attr}.{name}" for name, _ in getattr(model, attr).named_children()]
                break
    return blocks_of(model, names)
