"""``clip:<name>`` backbones: the image and text towers of a CLIP model.

The family is named ``"clip"`` in both :data:`skmm.registry.image_backbones` and
:data:`skmm.registry.text_backbones`.  Both towers end in CLIP's projection, so an
image and a text embed into the same space (``out_dim`` = the projection size).

Two libraries serve it:

- transformers (extra ``skmm[hf]``) for a Hub id or a local directory written by
  ``CLIPModel.save_pretrained`` (any spec holding a ``/`` or naming a directory):
  ``"clip:openai/clip-vit-base-patch32"``, ``"clip:/models/my-clip"``.  SigLIP and
  other models with ``get_image_features``/``get_text_features`` work the same way.
  Preprocessing comes from the checkpoint's image processor.
- open_clip (extra ``skmm[clip]``) for open_clip model names: ``"clip:ViT-B-32"``
  with ``weights="laion2b_s34b_b79k"`` (a pretrained tag or a local checkpoint
  file), or ``"clip:hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"``.  Preprocessing
  comes from the model's ``visual.image_size``/``image_mean``/``image_std``.

``library="transformers"`` or ``"open_clip"`` forces one.  ``weights``: ``None`` or
``"DEFAULT"`` load the pretrained weights the spec names (for an open_clip name
without a tag, its first pretrained tag), frozen by default; ``"random"`` gives the
architecture with random weights seeded from ``random_state``, trainable by default.

The text tower pools CLIP's way (the end-of-text token, then the projection), not
by mean pooling; texts are padded to at most the model's context length (77).
"""

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._common import check_kwargs
from .base import ImageBackbone, TextBackbone, fingerprint_of
from .optional import blocks_of, find_blocks, import_optional, is_weights_file, seeded_weights, weights_path_token

__all__ = ["image_backbone", "text_backbone", "CLIPTextBackbone"]

_LIBRARIES = ("auto", "transformers", "open_clip")


def image_backbone(spec, *, image_size=None, random_state=None, weights=None, library="auto", **backbone_kwargs):
    """Build the ``clip:<spec>`` image backbone (the image tower and its projection).

    Parameters
    ----------
    spec : str
        A Hub id or local directory (transformers), or an open_clip model name.
    image_size : int, optional
        Side of the input images; defaults to the checkpoint's preprocessing.
    random_state : int, numpy generator or None
        Seeds random initialisation (``weights="random"``).
    weights : None, "DEFAULT", "random", an open_clip tag or a file
        See the module docstring.
    library : {"auto", "transformers", "open_clip"}
        Which library loads the model.

    Returns
    -------
    ImageBackbone
        Its ``blocks`` are the vision encoder's layers.
    """
    check_kwargs(f"clip:{spec}", backbone_kwargs)
    if _library(spec, library) == "open_clip":
        return _open_clip_image(spec, image_size, random_state, weights)
    return _hf_image(spec, image_size, random_state, weights)


def text_backbone(spec, *, max_length=128, n_components=None, dim=64, random_state=None, weights=None,
                  library="auto", **backbone_kwargs):
    """Build the ``clip:<spec>`` text backbone (see :class:`CLIPTextBackbone`).

    ``n_components`` and ``dim`` are ignored: the projection fixes the output size.
    """
    check_kwargs(f"clip:{spec}", backbone_kwargs)
    return CLIPTextBackbone(spec, max_length=max_length, random_state=random_state, weights=weights,
                            library=library)


def _library(spec, library):
    if library not in _LIBRARIES:
        raise ValueError(f"library must be one of {_LIBRARIES}, got {library!r}")
    if library != "auto":
        return library
    if spec.startswith(("hf-hub:", "local-dir:")):
        return "open_clip"
    return "transformers" if ("/" in spec or Path(spec).is_dir()) else "open_clip"


# --- transformers -------------------------------------------------------------------------


class CLIPImageFeatures(nn.Module):
    """``model.get_image_features`` as a module; the text tower is dropped."""

    def __init__(self, model, forward_kwargs=None):
        super().__init__()
        for name in ("text_model", "text_projection"):
            if getattr(model, name, None) is not None:
                setattr(model, name, None)
        self.model = model
        self.forward_kwargs = dict(forward_kwargs or {})

    def forward(self, pixel_values):
        return _embedding(self.model.get_image_features(pixel_values=pixel_values, **self.forward_kwargs))


class CLIPTextFeatures(nn.Module):
    """``model.get_text_features`` on (N, 2, L) [ids, mask]; the image tower is dropped."""

    def __init__(self, model):
        super().__init__()
        for name in ("vision_model", "visual_projection"):
            if getattr(model, name, None) is not None:
                setattr(model, name, None)
        self.model = model

    def forward(self, x):
        ids, mask = x[:, 0].long(), x[:, 1].long()
        longest = max(int(mask.sum(dim=1).max()), 1)  # right padding: cutting it changes nothing
        return _embedding(self.model.get_text_features(input_ids=ids[:, :longest], attention_mask=mask[:, :longest]))


def _embedding(out):
    # transformers 5 returns an output object whose pooler_output is the projected
    # embedding; transformers 4 returned the tensor itself.
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def _hf_model(transformers, spec, weights, random_state):
    from .hf import load_model

    model, _, token = load_model(transformers, spec, weights, random_state, revision=None)
    if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
        raise ValueError(f"clip:{spec} is a {type(model).__name__}, not a CLIP-like model; use 'hf:{spec}'")
    return model, token


def _hf_image(spec, image_size, random_state, weights):
    from .hf import DEFAULT_IMAGE_SIZE, image_processor, processor_preprocessing

    transformers = import_optional("transformers", "hf")
    model, token = _hf_model(transformers, spec, weights, random_state)
    vision_config = getattr(model.config, "vision_config", model.config)
    config_size = int(getattr(vision_config, "image_size", 0) or 0) or None
    size, mean, std = processor_preprocessing(image_processor(transformers, spec, None))
    size = size or config_size or DEFAULT_IMAGE_SIZE
    mean = mean or (0.48145466, 0.4578275, 0.40821073)  # CLIP's own statistics
    std = std or (0.26862954, 0.26130258, 0.27577711)
    if image_size is not None:
        size = int(image_size)
    forward_kwargs = {"interpolate_pos_encoding": True} if config_size and size != config_size else {}
    module = CLIPImageFeatures(model, forward_kwargs).eval()
    with torch.inference_mode():
        out_dim = int(module(torch.zeros(1, 3, size, size)).shape[-1])
    return ImageBackbone.from_model(
        module, family="clip", name=spec, weights=token, image_size=size, mean=mean, std=std, out_dim=out_dim,
        trainable=weights == "random", options={"library": "transformers"},
        blocks=blocks_of(model.vision_model, find_blocks(model.vision_model)), channels_last=False,
    )


class CLIPTextBackbone(TextBackbone):
    """The text tower of a CLIP model (transformers or open_clip).

    :meth:`prepare` returns an int64 array (N, 2, max_length) stacking token ids and
    the attention mask; ``max_length`` is capped at the model's context length
    (``self.max_length`` says what is used).  ``module`` maps it to the projected
    text embedding (N, out_dim).  Nothing is learnt in :meth:`fit`.
    """

    def __init__(self, spec, *, max_length=128, random_state=None, weights=None, library="auto"):
        self.spec = spec
        self.library = _library(spec, library)
        if self.library == "open_clip":
            open_clip = import_optional("open_clip", "clip")
            model, self._weights_token = _open_clip_model(open_clip, spec, weights, random_state)
            self.tokenizer = open_clip.get_tokenizer(spec)
            self.max_length = int(model.context_length)  # open_clip tokenizers pad to it
            self.module = OpenCLIPTextFeatures(model).eval()
            tower = getattr(model, "transformer", None) or getattr(model, "text", model)
        else:
            transformers = import_optional("transformers", "hf")
            model, self._weights_token = _hf_model(transformers, spec, weights, random_state)
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(spec)
            text_config = getattr(model.config, "text_config", model.config)
            limit = int(getattr(text_config, "max_position_embeddings", 0) or 0) or int(max_length)
            self.max_length = min(int(max_length), limit)
            tower = model.text_model
            self.module = CLIPTextFeatures(model).eval()
        self.trainable = weights == "random"
        with torch.inference_mode():
            self.out_dim = int(self.module(torch.as_tensor(self.prepare(["a photo"]))).shape[-1])
        self.blocks = blocks_of(tower, find_blocks(tower))

    def prepare(self, texts):
        from .hf import as_text, tokenize

        if self.library == "open_clip":
            ids = self.tokenizer([as_text(t) for t in texts]).numpy().astype(np.int64)
            return np.stack([ids, (ids != 0).astype(np.int64)], axis=1)
        return tokenize(self.tokenizer, texts, self.max_length)

    def fingerprint(self):
        return fingerprint_of("clip-text", self.spec, self._weights_token, library=self.library,
                              max_length=self.max_length)


# --- open_clip ----------------------------------------------------------------------------


class OpenCLIPImageFeatures(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.encode_image(x)


class OpenCLIPTextFeatures(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.encode_text(x[:, 0].long())


def _open_clip_model(open_clip, spec, weights, random_state):
    """``(model, weights fingerprint)`` for an open_clip name and a weights choice."""
    if weights == "random":
        with seeded_weights(random_state) as token:
            model = open_clip.create_model(spec, pretrained=None)
        return model.float().eval(), token
    if is_weights_file(weights):
        pretrained, token = str(weights), weights_path_token(weights)
    elif weights in (None, "DEFAULT"):
        if spec.startswith(("hf-hub:", "local-dir:")):
            pretrained, token = None, spec
        else:
            tags = open_clip.list_pretrained_tags_by_model(spec)
            if not tags:
                raise ValueError(f"open_clip model {spec!r} has no pretrained weights; pass weights='random' or a file")
            pretrained, token = tags[0], tags[0]
    elif isinstance(weights, str):
        pretrained, token = weights, weights
    else:
        raise TypeError(f"weights must be None, 'DEFAULT', 'random', a tag or a file, got {type(weights).__name__}")
    try:
        with seeded_weights(0):
            model = open_clip.create_model(spec, pretrained=pretrained)
    except RuntimeError as exc:
        raise ValueError(f"open_clip could not build {spec!r} with weights {pretrained!r}: {exc}") from exc
    except OSError as exc:
        raise OSError(
            f"could not load open_clip weights {pretrained!r} for {spec!r} ({exc}); pre-fetch them into $HF_HOME "
            f"or pass weights=<local checkpoint file> (see docs/pretrained.md)"
        ) from exc
    return model.float().eval(), token


def _open_clip_image(spec, image_size, random_state, weights):
    open_clip = import_optional("open_clip", "clip")
    model, token = _open_clip_model(open_clip, spec, weights, random_state)
    visual = model.visual
    own_size = visual.image_size[0] if isinstance(visual.image_size, (tuple, list)) else int(visual.image_size)
    size = int(image_size) if image_size is not None else int(own_size)
    mean = tuple(map(float, getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN))
    std = tuple(map(float, getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD))
    module = OpenCLIPImageFeatures(model).eval()
    try:
        with torch.inference_mode():
            out_dim = int(module(torch.zeros(1, 3, size, size)).shape[-1])
    except RuntimeError as exc:
        raise ValueError(f"clip:{spec} does not take image_size={size} (its own is {own_size}): {exc}") from exc
    names = find_blocks(visual) or [f"layer{i}" for i in range(1, 5) if hasattr(visual, f"layer{i}")]  # ModifiedResNet
    return ImageBackbone.from_model(
        module, family="clip", name=spec, weights=token, image_size=size, mean=mean, std=std, out_dim=out_dim,
        trainable=weights == "random", options={"library": "open_clip"}, blocks=blocks_of(visual, names),
    )
