"""Small token networks: ``"embedding-bag"``, ``"gru"`` and ``"lstm"`` text backbones.

All are registered in :data:`skmm.registry.text_backbones`.  ``fit`` learns a word
vocabulary (lowercased ``\\w+`` tokens, most frequent first); ``prepare`` turns texts
into int64 token ids, right-padded with 0 to ``max_length`` (id 1 is the unknown
word); ``module`` is a small ``torch.nn.Module`` mapping the ids to ``dim``
features, which :class:`skmm.FusionClassifier` trains end to end
(``trainable=True``).  ``"embedding-bag"`` averages word embeddings; ``"gru"`` and
``"lstm"`` run a (bidirectional) recurrent net over them.  ``n_components`` does not
apply to them.

A text without tokens gives all-zero features.

Examples
--------
>>> from skmm.registry import text_backbones
>>> gru = text_backbones.get("gru")(None, max_length=8, dim=16, random_state=0).fit(["a red car"])
>>> ids = gru.prepare(["a red bike"])
>>> ids.tolist()
[[2, 4, 1, 0, 0, 0, 0, 0]]
>>> import torch
>>> gru.module(torch.as_tensor(ids)).shape
torch.Size([1, 16])
"""

import re
from collections import Counter

import numpy as np
from sklearn.exceptions import NotFittedError
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ..registry import text_backbones
from ..utils.seeding import seeded
from ..utils.validation import check_int
from ._common import check_kwargs, check_no_spec, check_texts, digest
from .base import TextBackbone

__all__ = [
    "EmbeddingBagBackbone",
    "GRUBackbone",
    "LSTMBackbone",
    "MeanEmbedding",
    "RecurrentEncoder",
    "make_embedding_bag",
    "make_gru",
    "make_lstm",
]

PAD, UNK = 0, 1


class MeanEmbedding(nn.Module):
    """Padded token ids (N, L) -> mean of the non-padding tokens' embeddings (N, dim).

    Works like ``nn.EmbeddingBag(mode="mean")`` but from right-padded ids, the
    layout ``prepare`` gives; rows without tokens give zeros.
    """

    def __init__(self, n_tokens, dim):
        super().__init__()
        self.embedding = nn.Embedding(n_tokens, dim, padding_idx=PAD)

    def forward(self, ids):
        ids = ids.long()
        mask = (ids != PAD).unsqueeze(-1)
        summed = (self.embedding(ids) * mask).sum(1)
        return summed / mask.sum(1).clamp(min=1)


class RecurrentEncoder(nn.Module):
    """Padded token ids (N, L) -> final hidden states of a GRU or LSTM (N, dim).

    The output concatenates the last layer's final hidden state of each
    direction (``dim // 2`` units each when bidirectional).  Padding is skipped
    with :func:`~torch.nn.utils.rnn.pack_padded_sequence`; rows without tokens
    give zeros.
    """

    def __init__(self, n_tokens, dim, *, cell="gru", bidirectional=True, num_layers=1):
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        self.n_directions = 2 if bidirectional else 1
        self.embedding = nn.Embedding(n_tokens, dim, padding_idx=PAD)
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        hidden = dim // self.n_directions
        self.rnn = rnn(dim, hidden, num_layers=num_layers, batch_first=True, bidirectional=bidirectional)

    def forward(self, ids):
        ids = ids.long()
        if len(ids) == 0:
            return self.embedding.weight.new_zeros((0, self.rnn.hidden_size * self.n_directions))
        lengths = (ids != PAD).sum(1)
        width = max(int(lengths.max()), 1)
        emb = self.embedding(ids[:, :width])
        # A row without tokens runs over one padding step (rather than crash) and is zeroed below.
        packed = pack_padded_sequence(emb, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        _, hidden = self.rnn(packed)
        if isinstance(hidden, tuple):  # LSTM: (h_n, c_n)
            hidden = hidden[0]
        # (layers * directions, N, hidden) -> the last layer's directions side by side
        last = hidden[-self.n_directions :].transpose(0, 1).reshape(len(ids), -1)
        return last * (lengths > 0).unsqueeze(-1).to(last.dtype)


class _TokenBackbone(TextBackbone):
    """Shared by the token networks: tokenizer, vocabulary, padded ids, seeded module."""

    trainable = True
    name = None
    token_pattern = re.compile(r"\w+")

    def __init__(self, *, max_length=128, dim=64, random_state=None, min_freq=1, max_vocab=20000):
        self.max_length = check_int("max_length", max_length)
        self.dim = check_int("dim", dim)
        self.min_freq = check_int("min_freq", min_freq)
        self.max_vocab = check_int("max_vocab", max_vocab)
        self.random_state = random_state
        self.vocabulary_ = None
        self.module = None
        self.out_dim = None

    def tokenize(self, text):
        """Lowercased ``\\w+`` tokens of ``text``."""
        return self.token_pattern.findall(text.lower())

    def fit(self, texts):
        """Learn the vocabulary from ``texts`` and build a freshly seeded module; returns self.

        The vocabulary keeps tokens seen at least ``min_freq`` times, the
        ``max_vocab`` most frequent (ties broken alphabetically so it is the same
        on every run); ids start at 2 (0 pads, 1 is the unknown word).
        """
        texts = check_texts(texts, f"text encoder {self.name!r}")
        counts = Counter()
        for text in texts:
            counts.update(self.tokenize(text))
        if not counts:
            raise ValueError(
                f"text encoder {self.name!r} cannot learn a vocabulary: none of the {len(texts)} "
                "training texts holds a word"
            )
        kept = sorted((item for item in counts.items() if item[1] >= self.min_freq), key=lambda kv: (-kv[1], kv[0]))
        self.vocabulary_ = {token: i for i, (token, _) in enumerate(kept[: self.max_vocab], start=2)}
        with seeded(self.random_state):
            self.module = self._build_module(len(self.vocabulary_) + 2)
        self.out_dim = self.dim
        return self

    def _build_module(self, n_tokens):
        raise NotImplementedError

    # -- plain-data state, for skmm.save ----------------------------------------------------
    def fitted_state(self):
        """The vocabulary, as the list of tokens in id order (ids start at 2)."""
        self._check_fitted()
        return {"vocabulary": sorted(self.vocabulary_, key=self.vocabulary_.get)}

    def restore_fitted_state(self, state):
        """Take the vocabulary of :meth:`fitted_state` and build the module for it (weights loaded after)."""
        tokens = state["vocabulary"]
        if type(tokens) is not list or not all(type(t) is str for t in tokens) or len(set(tokens)) != len(tokens):
            raise ValueError(f"text encoder {self.name!r}: the saved vocabulary is not a list of distinct strings")
        self.vocabulary_ = {token: i for i, token in enumerate(tokens, start=2)}
        with seeded(0):  # any weights: they are replaced; the caller's RNG is left alone
            self.module = self._build_module(len(tokens) + 2)
        self.out_dim = self.dim

    def _check_fitted(self):
        if self.vocabulary_ is None:
            raise NotFittedError(f"text encoder {self.name!r} is not fitted yet; call fit(texts) first")

    def prepare(self, texts):
        """Texts -> int64 token ids of shape (n_texts, max_length), right-padded with 0.

        Texts longer than ``max_length`` tokens are cut; unknown words get id 1.
        """
        self._check_fitted()
        texts = check_texts(texts, f"text encoder {self.name!r}")
        ids = np.zeros((len(texts), self.max_length), dtype=np.int64)
        lookup = self.vocabulary_.get
        for row, text in enumerate(texts):
            tokens = self.tokenize(text)[: self.max_length]
            if tokens:
                ids[row, : len(tokens)] = [lookup(t, UNK) for t in tokens]
        return ids

    def _params(self):
        return {"max_length": self.max_length, "dim": self.dim, "min_freq": self.min_freq, "max_vocab": self.max_vocab}

    def fingerprint(self):
        """sha256 of the parameters, the vocabulary and the module's current weights."""
        self._check_fitted()
        return digest(
            type(self).__name__,
            self._params(),
            self.token_pattern.pattern,
            sorted(self.vocabulary_.items()),
            dict(self.module.state_dict()),
        )


class EmbeddingBagBackbone(_TokenBackbone):
    """Mean of learned word embeddings: fast, order-blind, a strong baseline.

    Parameters
    ----------
    max_length : int, default=128
        Tokens kept per text.
    dim : int, default=64
        Embedding width (``out_dim``).
    random_state : int, RandomState or None
        Seeds the embedding weights (the global torch RNG is left untouched).
    min_freq : int, default=1
        Tokens seen fewer times in ``fit`` are unknown words.
    max_vocab : int, default=20000
        Most frequent tokens kept.

    Examples
    --------
    >>> import torch
    >>> bb = EmbeddingBagBackbone(dim=8, random_state=0).fit(["a red car", "a blue boat"])
    >>> bb.module(torch.as_tensor(bb.prepare(["red boat", ""]))).shape
    torch.Size([2, 8])
    """

    name = "embedding-bag"

    def _build_module(self, n_tokens):
        return MeanEmbedding(n_tokens, self.dim)


class _RecurrentBackbone(_TokenBackbone):
    cell = None

    def __init__(self, *, bidirectional=True, num_layers=1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(bidirectional, (bool, np.bool_)):
            raise ValueError(f"bidirectional must be True or False, got {bidirectional!r}")
        self.bidirectional = bool(bidirectional)
        self.num_layers = check_int("num_layers", num_layers)
        if self.bidirectional and self.dim % 2:
            raise ValueError(
                f"dim must be even for a bidirectional {self.name} (dim // 2 units a direction), got {self.dim}"
            )

    def _build_module(self, n_tokens):
        return RecurrentEncoder(
            n_tokens, self.dim, cell=self.cell, bidirectional=self.bidirectional, num_layers=self.num_layers
        )

    def _params(self):
        return {**super()._params(), "bidirectional": self.bidirectional, "num_layers": self.num_layers}


class GRUBackbone(_RecurrentBackbone):
    """Word embeddings read by a (bidirectional) GRU; features are its final hidden states.

    Parameters
    ----------
    max_length, dim, random_state, min_freq, max_vocab
        As for :class:`EmbeddingBagBackbone`; ``dim`` must be even when bidirectional.
    bidirectional : bool, default=True
        Read the text both ways, ``dim // 2`` units a direction.
    num_layers : int, default=1
        Stacked recurrent layers.

    Examples
    --------
    >>> import torch
    >>> bb = GRUBackbone(dim=8, random_state=0).fit(["a red car"])
    >>> bb.module(torch.as_tensor(bb.prepare(["red car", ""]))).shape
    torch.Size([2, 8])
    """

    name = "gru"
    cell = "gru"


class LSTMBackbone(_RecurrentBackbone):
    """Word embeddings read by a (bidirectional) LSTM; features are its final hidden states.

    Parameters are those of :class:`GRUBackbone`.

    Examples
    --------
    >>> import torch
    >>> bb = LSTMBackbone(dim=8, random_state=0).fit(["a red car"])
    >>> bb.module(torch.as_tensor(bb.prepare(["red car"]))).shape
    torch.Size([1, 8])
    """

    name = "lstm"
    cell = "lstm"


_TOKEN_KWARGS = ("min_freq", "max_vocab")
_RECURRENT_KWARGS = _TOKEN_KWARGS + ("bidirectional", "num_layers")


def _factory(cls, accepted):
    """The registry factory of a token network: checks, then ``cls(...)``."""

    def factory(spec, *, max_length=128, n_components=None, dim=64, random_state=None, **backbone_kwargs):
        check_no_spec(cls.name, spec)
        check_kwargs(cls.name, backbone_kwargs, accepted)
        return cls(max_length=max_length, dim=dim, random_state=random_state, **backbone_kwargs)

    factory.__name__ = factory.__qualname__ = f"make_{cls.name.replace('-', '_')}"
    factory.__doc__ = f"Registry factory for :class:`{cls.__name__}` (``n_components`` does not apply)."
    return factory


make_embedding_bag = text_backbones.register("embedding-bag", _factory(EmbeddingBagBackbone, _TOKEN_KWARGS))
make_gru = text_backbones.register("gru", _factory(GRUBackbone, _RECURRENT_KWARGS))
make_lstm = text_backbones.register("lstm", _factory(LSTMBackbone, _RECURRENT_KWARGS))
