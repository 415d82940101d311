"""``st:<model>`` text backbones: sentence-transformers models.

The family is named ``"st"`` in :data:`skmm.registry.text_backbones`;
``"st:sentence-transformers/all-MiniLM-L6-v2"`` (a Hub id) or ``"st:/models/my-st"``
(a directory written by ``SentenceTransformer.save``) embed texts exactly as
``SentenceTransformer.encode`` does, with the model's own pooling and normalisation
modules.  It needs the extra ``skmm[st]``.

``weights``: ``None`` or ``"DEFAULT"`` load the model the spec names (frozen by
default).  Hub ids are read from the Hugging Face cache or downloaded; set
``HF_HUB_OFFLINE=1`` on machines without network.
"""

from pathlib import Path

from torch import nn

from ._common import check_kwargs
from .base import TextBackbone, fingerprint_of
from .optional import blocks_of, find_blocks, import_optional, weights_path_token

__all__ = ["text_backbone", "STTextBackbone"]


def text_backbone(spec, *, max_length=128, n_components=None, dim=64, random_state=None, weights=None,
                  **backbone_kwargs):
    """Build the ``st:<spec>`` text backbone (see :class:`STTextBackbone`).

    ``n_components``, ``dim`` and ``random_state`` are ignored: the model fixes its
    output and nothing is initialised at random.
    """
    check_kwargs(f"st:{spec}", backbone_kwargs)
    return STTextBackbone(spec, max_length=max_length, weights=weights)


class STFeatures(nn.Module):
    """A SentenceTransformer as a (N, 2, L) [ids, mask] -> (N, out_dim) module."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        ids, mask = x[:, 0].long(), x[:, 1].long()
        longest = max(int(mask.sum(dim=1).max()), 1)  # right padding: cutting it changes nothing
        features = {"input_ids": ids[:, :longest], "attention_mask": mask[:, :longest]}
        return self.model(features)["sentence_embedding"]


class STTextBackbone(TextBackbone):
    """A sentence-transformers model as a skmm text backbone.

    :meth:`prepare` returns an int64 array (N, 2, max_length) stacking the token ids
    and the attention mask; ``max_length`` is capped at the model's
    ``max_seq_length`` (``self.max_length`` says what is used).  Nothing is learnt
    in :meth:`fit`.
    """

    def __init__(self, spec, *, max_length=128, weights=None):
        st = import_optional("sentence_transformers", "st")
        if weights not in (None, "DEFAULT"):
            raise ValueError(f"weights for st: backbones must be None or 'DEFAULT', got {weights!r}")
        self.spec = spec
        try:
            model = st.SentenceTransformer(spec, device="cpu")
        except OSError as exc:
            raise OSError(
                f"could not load sentence-transformers model {spec!r} ({exc}); pass a local directory or "
                f"pre-fetch it with `huggingface-cli download {spec}` (see docs/pretrained.md)"
            ) from exc
        model.eval()
        self.tokenizer = model.tokenizer
        limit = getattr(model, "max_seq_length", None) or int(max_length)
        self.max_length = min(int(max_length), int(limit))
        self.module = STFeatures(model).eval()
        self.trainable = False
        # sentence-transformers 6 renamed get_sentence_embedding_dimension
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.out_dim = int(get_dim())
        self._weights_token = weights_path_token(spec) if Path(spec).is_dir() else "hub"
        self.blocks = blocks_of(model, find_blocks(model))

    def prepare(self, texts):
        from .hf import tokenize

        return tokenize(self.tokenizer, texts, self.max_length)

    def fingerprint(self):
        return fingerprint_of("st", self.spec, self._weights_token, max_length=self.max_length)
