"""``hf:<model id or local directory>`` backbones from Hugging Face transformers.

The family is named ``"hf"`` in both :data:`skmm.registry.image_backbones` and
:data:`skmm.registry.text_backbones`.  The spec is what
``AutoModel.from_pretrained`` takes: a Hub id ("google/vit-base-patch16-224-in21k")
or a local directory written by ``save_pretrained``.

Image models (ViT, ConvNeXt, DINOv2, Swin, ..., and the vision tower of a CLIP or
SigLIP checkpoint) return ``pooler_output`` when the checkpoint holds the pooler's
weights, else the mean of ``last_hidden_state`` (``pooling="auto"``, the default;
``"pooler"``, ``"mean"`` and ``"cls"`` choose one).  Preprocessing comes from the
checkpoint's image processor (``AutoImageProcessor``: ``image_mean``,
``image_std``, ``crop_size``/``size``), else ImageNet's mean/std and the config's
``image_size``; ``image_size`` overrides the size (ViT-like models then
interpolate their position embeddings).

Text models (BERT, RoBERTa, MiniLM, the encoder of T5, the text tower of CLIP, ...)
tokenize with the checkpoint's ``AutoTokenizer`` and average ``last_hidden_state``
over the attention mask (``pooling="mean"``, or ``"cls"``).

``weights``: ``None`` or ``"DEFAULT"`` load the checkpoint the spec names (a frozen
extractor by default); ``"random"`` builds the same architecture from its config
with random weights seeded from ``random_state`` (trainable by default).  Other
backbone arguments: ``pooling`` and ``revision`` (a Hub branch, tag or commit).
Hub ids are read from the Hugging Face cache (``$HF_HOME``) or downloaded; set
``HF_HUB_OFFLINE=1`` on machines without network.
"""

import inspect
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..utils.validation import is_missing
from ._common import check_kwargs
from .base import IMAGENET_MEAN, IMAGENET_STD, ImageBackbone, TextBackbone, fingerprint_of
from .optional import blocks_of, find_blocks, import_optional, seeded_weights, weights_path_token

__all__ = ["image_backbone", "text_backbone", "HFTextBackbone"]

DEFAULT_IMAGE_SIZE = 224
_PRETRAINED = (None, "DEFAULT")


def image_backbone(spec, *, image_size=None, random_state=None, weights=None, pooling="auto", revision=None,
                   **backbone_kwargs):
    """Build the ``hf:<spec>`` image backbone.

    Parameters
    ----------
    spec : str
        A Hub model id or a local ``save_pretrained`` directory.
    image_size : int, optional
        Side of the input images; defaults to the image processor's crop size.
    random_state : int, numpy generator or None
        Seeds random initialisation (``weights="random"``) and any weights the
        checkpoint lacks.
    weights : None, "DEFAULT" or "random"
        The checkpoint's weights (None, "DEFAULT") or random ones of its architecture.
    pooling : {"auto", "pooler", "mean", "cls"}
        How the output becomes one vector per image.
    revision : str, optional
        Hub branch, tag or commit.

    Returns
    -------
    ImageBackbone
        Its ``blocks`` are the encoder's layers, input to output.
    """
    transformers = import_optional("transformers", "hf")
    check_kwargs(f"hf:{spec}", backbone_kwargs)
    if pooling not in ("auto", "pooler", "mean", "cls"):
        raise ValueError(f"pooling must be 'auto', 'pooler', 'mean' or 'cls', got {pooling!r}")
    model, missing, weights_token = load_model(transformers, spec, weights, random_state, revision)
    vision = getattr(model, "vision_model", None) or model  # CLIP, SigLIP: keep the image tower only
    processor = image_processor(transformers, spec, revision)

    config = getattr(vision, "config", model.config)
    config_size = _as_int(getattr(config, "image_size", None))
    size, mean, std = processor_preprocessing(processor)
    size = size or config_size or DEFAULT_IMAGE_SIZE
    if weights == "random" or (mean, std) == (None, None):
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    if image_size is not None:
        size = int(image_size)

    forward_kwargs = {}
    if config_size and size != config_size and "interpolate_pos_encoding" in inspect.signature(vision.forward).parameters:
        forward_kwargs["interpolate_pos_encoding"] = True
    if pooling == "auto":
        pooling = "mean" if any(k.split(".")[0] == "pooler" or ".pooler." in k for k in missing) else "pooler"
    module = HFImageFeatures(vision, pooling, forward_kwargs)
    module.eval()
    with torch.inference_mode():
        probe = module(torch.zeros(1, 3, size, size))
    if pooling == "pooler" and probe.ndim != 2:
        raise ValueError(f"hf:{spec} has no usable pooler output; use pooling='mean'")

    return ImageBackbone.from_model(
        module, family="hf", name=spec, weights=weights_token, image_size=size, mean=mean, std=std,
        out_dim=int(probe.shape[-1]), trainable=weights == "random", options={"pooling": pooling},
        blocks=blocks_of(module, find_blocks(module)),
    )


def text_backbone(spec, *, max_length=128, n_components=None, dim=64, random_state=None, weights=None,
                  pooling="mean", revision=None, **backbone_kwargs):
    """Build the ``hf:<spec>`` text backbone (see :class:`HFTextBackbone`).

    ``n_components`` and ``dim`` belong to skmm's own text backbones and are
    ignored here: a pretrained model fixes its output size.
    """
    check_kwargs(f"hf:{spec}", backbone_kwargs)
    return HFTextBackbone(spec, max_length=max_length, random_state=random_state, weights=weights,
                          pooling=pooling, revision=revision)


class HFImageFeatures(nn.Module):
    """A transformers vision model as a (N, 3, S, S) -> (N, out_dim) module."""

    def __init__(self, model, pooling, forward_kwargs=None):
        super().__init__()
        self.model = model
        self.pooling = pooling
        self.forward_kwargs = dict(forward_kwargs or {})

    def forward(self, pixel_values):
        out = self.model(pixel_values=pixel_values, return_dict=True, **self.forward_kwargs)
        if self.pooling == "pooler":
            return out.pooler_output.flatten(1)  # ResNet-like poolers give (N, C, 1, 1)
        hidden = out.last_hidden_state
        if hidden.ndim == 4:  # convolutional: (N, C, H, W)
            return hidden.mean(dim=(2, 3))
        return hidden[:, 0] if self.pooling == "cls" else hidden.mean(dim=1)


class HFTextFeatures(nn.Module):
    """A transformers text encoder as a (N, 2, L) [ids, mask] -> (N, out_dim) module.

    Columns past the longest text of the batch are cut before the model runs
    (right-padded tokenizers only); masked mean pooling makes that exact.
    """

    def __init__(self, model, pooling="mean", trim=True):
        super().__init__()
        self.model = model
        self.pooling = pooling
        self.trim = trim

    def forward(self, x):
        ids, mask = x[:, 0].long(), x[:, 1].long()
        if self.trim and ids.shape[1] > 1:
            longest = max(int(mask.sum(dim=1).max()), 1)
            ids, mask = ids[:, :longest], mask[:, :longest]
        hidden = self.model(input_ids=ids, attention_mask=mask, return_dict=True).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class HFTextBackbone(TextBackbone):
    """A pretrained transformers text encoder with mean pooling.

    Parameters
    ----------
    spec : str
        A Hub model id or a local ``save_pretrained`` directory holding a model and
        its tokenizer.
    max_length : int
        Texts are truncated to, and padded to, this many tokens; capped at what the
        model's position embeddings allow (``self.max_length`` says what is used).
    random_state, weights, pooling, revision
        As for :func:`image_backbone`; ``pooling`` is "mean" or "cls".

    Notes
    -----
    :meth:`prepare` returns an int64 array (N, 2, max_length) stacking the token
    ids and the attention mask; ``module`` maps that (as a tensor) to (N, out_dim).
    The model and tokenizer load at construction; :meth:`fit` learns nothing.
    """

    def __init__(self, spec, *, max_length=128, random_state=None, weights=None, pooling="mean", revision=None):
        transformers = import_optional("transformers", "hf")
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls' for text, got {pooling!r}")
        self.spec = spec
        self.pooling = pooling
        model, _, self._weights_token = load_model(transformers, spec, weights, random_state, revision)
        if getattr(model, "text_model", None) is not None:  # CLIP-like dual encoders
            model = model.text_model
        elif getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(spec, revision=revision)
        except (OSError, ValueError) as exc:
            raise OSError(f"hf:{spec} has no tokenizer that loads here ({exc})") from exc
        if self.tokenizer.pad_token is None:
            fallback = self.tokenizer.eos_token or self.tokenizer.unk_token
            if fallback is None:
                raise ValueError(f"hf:{spec}: the tokenizer has no padding token")
            self.tokenizer.pad_token = fallback
        self.max_length = _cap_length(int(max_length), self.tokenizer, model.config)
        self.module = HFTextFeatures(model, pooling, trim=self.tokenizer.padding_side == "right")
        self.module.eval()
        self.trainable = weights == "random"
        with torch.inference_mode():
            self.out_dim = int(self.module(torch.as_tensor(self.prepare(["a"]))).shape[-1])
        self.blocks = blocks_of(model, find_blocks(model))

    def prepare(self, texts):
        return tokenize(self.tokenizer, texts, self.max_length)

    def fingerprint(self):
        return fingerprint_of("hf-text", self.spec, self._weights_token, max_length=self.max_length,
                              pooling=self.pooling)


def load_model(transformers, spec, weights, random_state, revision, model_class=None):
    """``(model, missing_keys, weights fingerprint)`` for a checkpoint or its random twin."""
    if weights not in (*_PRETRAINED, "random"):
        raise ValueError(
            f"weights for hf:/clip: backbones must be None or 'DEFAULT' (the checkpoint {spec!r} names) or "
            f"'random', got {weights!r}; to use other weights, pass their directory as the spec"
        )
    model_class = model_class or transformers.AutoModel
    try:
        if weights == "random":
            config = transformers.AutoConfig.from_pretrained(spec, revision=revision)
            with seeded_weights(random_state) as token:
                model = model_class.from_config(config)
            return model.float().eval(), [], token
        # Weights the checkpoint lacks (a pooler, say) are random: seed them too.
        with seeded_weights(0 if random_state is None else random_state) as missing_token:
            model, info = model_class.from_pretrained(spec, revision=revision, dtype=torch.float32,
                                                      output_loading_info=True)
    except OSError as exc:
        raise OSError(
            f"could not load {spec!r} with transformers ({exc}); pass a local directory, or pre-fetch the "
            f"model with `huggingface-cli download {spec}` (see docs/pretrained.md)"
        ) from exc
    missing = list(info.get("missing_keys", []))
    if Path(spec).is_dir():
        token = weights_path_token(spec)
    else:
        token = f"hub={getattr(model.config, '_commit_hash', None) or revision or 'main'}"
    if missing:  # their initialisation is part of the weights
        token = None if missing_token is None else f"{token},missing={missing_token}"
    return model.eval(), missing, token


def image_processor(transformers, spec, revision):
    try:
        return transformers.AutoImageProcessor.from_pretrained(spec, revision=revision)
    except (OSError, ValueError, KeyError):  # no preprocessor_config.json: fall back to the config
        return None


def processor_preprocessing(processor):
    """``(size or None, mean or None, std or None)`` from an image processor."""
    if processor is None:
        return None, None, None
    size = None
    crop = getattr(processor, "crop_size", None)
    if crop and getattr(processor, "do_center_crop", False):
        size = _side(crop)
    if size is None:
        size = _side(getattr(processor, "size", None))
    mean, std = getattr(processor, "image_mean", None), getattr(processor, "image_std", None)
    return size, (tuple(mean) if mean is not None else None), (tuple(std) if std is not None else None)


def _side(size):
    """The square side an HF ``size``/``crop_size`` value describes."""
    if size is None:
        return None
    if isinstance(size, (int, float)):
        return int(size)
    get = size.get if hasattr(size, "get") else lambda k: getattr(size, k, None)
    for key in ("height", "shortest_edge", "width"):
        if get(key):
            return int(get(key))
    return None


def _as_int(value):
    if isinstance(value, (list, tuple)):
        value = value[0]
    return int(value) if value else None


def _cap_length(max_length, tokenizer, config):
    limits = [max_length]
    if 0 < getattr(tokenizer, "model_max_length", 0) < 1_000_000:
        limits.append(int(tokenizer.model_max_length))
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        limits.append(int(positions))
    return min(limits)


def tokenize(tokenizer, texts, max_length):
    """Texts -> int64 (N, 2, max_length): input ids and attention mask, padded to max_length."""
    enc = tokenizer([as_text(t) for t in texts], padding="max_length", truncation=True, max_length=max_length,
                    return_tensors="np")
    return np.stack([enc["input_ids"], enc["attention_mask"]], axis=1).astype(np.int64)


def as_text(value):
    """A cell as a string for a tokenizer: missing cells (None, NaN, blank) become ""."""
    return "" if is_missing(value) else (value if isinstance(value, str) else str(value))
