"""Built-in text backbones: sparse bag-of-words features and small token networks.

Two families are registered in :data:`skmm.registry.text_encoders`:

*Sparse vectorizers* -- ``"tfidf"`` and ``"hashing"``.  ``prepare`` returns the
features themselves (float32, dense), so ``module`` is ``None`` and they are never
trained end to end.  ``"tfidf"`` learns a vocabulary and IDF weights
(:class:`~sklearn.feature_extraction.text.TfidfVectorizer`); ``"hashing"`` learns
nothing (:class:`~sklearn.feature_extraction.text.HashingVectorizer`, 2**12 columns
by default) and suits vocabularies too large to store.  Both can end in a
:class:`~sklearn.decomposition.TruncatedSVD` (``n_components``) for compact, dense
features (LSA).  ``max_length`` and ``dim`` do not apply to them.

*Token networks* -- ``"embedding-bag"``, ``"gru"`` and ``"lstm"``.  ``fit``
learns a word vocabulary (lowercased ``\\w+`` tokens, most frequent first);
``prepare`` turns texts into int64 token ids, right-padded with 0 to
``max_length`` (id 1 is the unknown word); ``module`` is a small
``torch.nn.Module`` mapping the ids to ``dim`` features, which
:class:`skmm.FusionClassifier` trains end to end (``trainable=True``).
``"embedding-bag"`` averages word embeddings; ``"gru"`` and ``"lstm"`` run a
(bidirectional) recurrent net over them.  ``n_components`` does not apply to them.

Every backbone's module gives all-zero features for a text without tokens.

Examples
--------
>>> from skmm.registry import text_encoders
>>> import skmm.encoders.text  # registers the built-ins
>>> tfidf = text_encoders.get("tfidf")(None).fit(["a red car", "a blue boat"])
>>> tfidf.prepare(["red boat"]).shape  # one-letter words and numbers count as tokens
(1, 5)
>>> gru = text_encoders.get("gru")(None, max_length=8, dim=16, random_state=0).fit(["a red car"])
>>> ids = gru.prepare(["a red bike"])
>>> ids.tolist()
[[2, 4, 1, 0, 0, 0, 0, 0]]
>>> import torch
>>> gru.module(torch.as_tensor(ids)).shape
torch.Size([1, 16])
"""

import hashlib
import numbers
import re
import warnings
from collections import Counter

import numpy as np
import torch
from sklearn.decomposition import TruncatedSVD
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from skmm.encoders._backbone import TextBackbone
from skmm.registry import text_encoders
from skmm.utils.seeding import seeded

__all__ = [
    "TfidfBackbone",
    "HashingBackbone",
    "EmbeddingBagBackbone",
    "GRUBackbone",
    "LSTMBackbone",
    "MeanEmbedding",
    "RecurrentEncoder",
]

PAD, UNK = 0, 1


# --------------------------------------------------------------------------- helpers


def _check_texts(texts, who):
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{who} expects a list of strings, got a single {type(texts).__name__}")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(
                f"{who} expects a list of strings; item {i} is a {type(t).__name__} "
                "(coerce columns with skmm.io.text.to_texts first)"
            )
    return texts


def _check_int(name, value, minimum, *, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        expected = f"an int >= {minimum}" + (" or None" if allow_none else "")
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return int(value)


def _check_no_spec(name, spec):
    if spec is not None:
        raise ValueError(f"text encoder {name!r} takes no spec, got {name}:{spec}")


def _check_kwargs(name, kwargs, accepted):
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(
            f"text encoder {name!r} got unexpected backbone_kwargs {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(map(repr, sorted(accepted)))}"
        )


def _digest(*parts):
    """sha256 over a stable serialisation of nested dicts, sequences, arrays and scalars."""
    h = hashlib.sha256()

    def feed(obj):
        if isinstance(obj, torch.Tensor):
            obj = obj.detach().cpu().numpy()
        if isinstance(obj, np.ndarray):
            h.update(f"nd{obj.dtype.str}{obj.shape}".encode())
            h.update(np.ascontiguousarray(obj).tobytes())
        elif isinstance(obj, dict):
            h.update(f"dict{len(obj)}".encode())
            for key in sorted(obj, key=repr):
                feed(key)
                feed(obj[key])
        elif isinstance(obj, (list, tuple)):
            h.update(f"{type(obj).__name__}{len(obj)}".encode())
            for item in obj:
                feed(item)
        elif isinstance(obj, (frozenset, set)):
            feed(sorted(obj, key=repr))
        elif callable(obj) and hasattr(obj, "__qualname__"):
            # functions and classes: their name is stable across processes, their repr is not
            h.update(f"fn{getattr(obj, '__module__', '')}.{obj.__qualname__}".encode())
        else:
            h.update(f"{type(obj).__name__}:{obj!r}".encode())
        h.update(b";")

    for part in parts:
        feed(part)
    return h.hexdigest()


# --------------------------------------------------------------------------- sparse


class _SparseBackbone(TextBackbone):
    """Shared by TF-IDF and hashing: a vectorizer, then an optional TruncatedSVD."""

    module = None
    trainable = False
    name = None

    def __init__(self, vectorizer, *, n_components=None, random_state=None):
        self.vectorizer = vectorizer
        self.n_components = n_components
        self.random_state = random_state
        self.svd_ = None
        self.out_dim = None

    def _fit_vectorizer(self, texts):
        raise NotImplementedError

    def fit(self, texts):
        """Learn the vectorizer's state (and the SVD) from ``texts``; returns self."""
        texts = _check_texts(texts, f"text encoder {self.name!r}")
        X = self._fit_vectorizer(texts)
        if X.nnz == 0:
            raise ValueError(
                f"text encoder {self.name!r} found no tokens in the {len(texts)} training texts "
                "(all empty, or every token filtered out by the vectorizer's options)"
            )
        self.svd_ = None
        n_samples, n_features = X.shape
        if self.n_components is None:
            self.out_dim = n_features
            self._fitted = True
            return self
        cap = max(1, min(n_features - 1, n_samples - 1))
        k = self.n_components
        if k > cap:
            warnings.warn(
                f"text encoder {self.name!r}: n_components={k} is too large for {n_samples} texts and "
                f"{n_features} features; using {cap}",
                UserWarning,
                stacklevel=2,
            )
            k = cap
        self.svd_ = TruncatedSVD(n_components=k, random_state=self.random_state).fit(X)
        self.out_dim = k
        self._fitted = True
        return self

    def _check_fitted(self):
        if not getattr(self, "_fitted", False):
            raise NotFittedError(f"text encoder {self.name!r} is not fitted yet; call fit(texts) first")

    def prepare(self, texts):
        """Texts -> float32 features of shape (n_texts, out_dim)."""
        self._check_fitted()
        X = self.vectorizer.transform(_check_texts(texts, f"text encoder {self.name!r}"))
        X = self.svd_.transform(X) if self.svd_ is not None else X.toarray()
        return np.asarray(X, dtype=np.float32)

    def _fitted_state(self):
        return ()

    def fingerprint(self):
        """sha256 of the vectorizer's parameters and fitted state and the SVD components."""
        self._check_fitted()
        svd = None if self.svd_ is None else self.svd_.components_
        return _digest(type(self).__name__, self.vectorizer.get_params(), self._fitted_state(), svd)


class TfidfBackbone(_SparseBackbone):
    """TF-IDF features (sublinear term frequencies by default), optionally reduced by SVD.

    Parameters
    ----------
    n_components : int, optional
        Reduce the features to this many with TruncatedSVD (capped, with a
        warning, at one less than the number of texts or of vocabulary terms).
    random_state : int, RandomState or None
        Seeds the SVD.
    **vectorizer_params
        Passed to :class:`~sklearn.feature_extraction.text.TfidfVectorizer`
        (``analyzer="char_wb"``, ``ngram_range=(2, 4)``, ``min_df``,
        ``max_features``, ...).

    Notes
    -----
    Without ``n_components`` the features are dense float32 with one column per
    vocabulary term: bound the vocabulary (``max_features``, ``min_df``) on large
    corpora.

    Examples
    --------
    >>> bb = TfidfBackbone(analyzer="char_wb", ngram_range=(2, 3)).fit(["red", "blue"])
    >>> bb.prepare(["red"]).dtype
    dtype('float32')
    """

    name = "tfidf"

    def __init__(self, *, n_components=None, random_state=None, **vectorizer_params):
        vectorizer_params.setdefault("sublinear_tf", True)
        _keep_short_tokens(vectorizer_params)
        super().__init__(TfidfVectorizer(**vectorizer_params), n_components=n_components, random_state=random_state)

    def _fit_vectorizer(self, texts):
        try:
            return self.vectorizer.fit_transform(texts)
        except ValueError as exc:
            if "empty vocabulary" not in str(exc):
                raise
            raise ValueError(
                f"text encoder 'tfidf' cannot learn a vocabulary from the {len(texts)} training texts: "
                "they are all empty, or hold only stop words or tokens the vectorizer's options drop"
            ) from None

    def _fitted_state(self):
        vocabulary = sorted(self.vectorizer.vocabulary_.items())
        idf = self.vectorizer.idf_ if self.vectorizer.use_idf else None
        return (vocabulary, idf)


def _keep_short_tokens(params):
    # scikit-learn's default pattern drops one-character tokens; in captions and
    # titles those are often sizes, digits and model letters worth keeping.
    if params.get("analyzer", "word") == "word":
        params.setdefault("token_pattern", r"(?u)\b\w+\b")


class HashingBackbone(_SparseBackbone):
    """Hashed bag-of-words features (no vocabulary stored), optionally reduced by SVD.

    Parameters
    ----------
    n_components : int, optional
        Reduce the features to this many with TruncatedSVD.
    random_state : int, RandomState or None
        Seeds the SVD.
    **vectorizer_params
        Passed to :class:`~sklearn.feature_extraction.text.HashingVectorizer`;
        ``n_features`` defaults to 2**12 and ``alternate_sign`` to False.

    Notes
    -----
    Without ``n_components`` the features are dense float32 of width
    ``n_features`` (16 KiB a text at the default 4096): fine for tens of
    thousands of texts; use ``n_components`` beyond that.

    Examples
    --------
    >>> HashingBackbone(n_features=32).fit(["a red car"]).prepare(["red"]).shape
    (1, 32)
    """

    name = "hashing"

    def __init__(self, *, n_components=None, random_state=None, **vectorizer_params):
        vectorizer_params.setdefault("n_features", 2**12)
        _keep_short_tokens(vectorizer_params)
        vectorizer_params.setdefault("alternate_sign", False)
        super().__init__(HashingVectorizer(**vectorizer_params), n_components=n_components, random_state=random_state)

    def _fit_vectorizer(self, texts):
        return self.vectorizer.fit_transform(texts)


# --------------------------------------------------------------------------- token networks


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
        self.max_length = _check_int("max_length", max_length, 1)
        self.dim = _check_int("dim", dim, 1)
        self.min_freq = _check_int("min_freq", min_freq, 1)
        self.max_vocab = _check_int("max_vocab", max_vocab, 1)
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
        texts = _check_texts(texts, f"text encoder {self.name!r}")
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

    def _check_fitted(self):
        if self.vocabulary_ is None:
            raise NotFittedError(f"text encoder {self.name!r} is not fitted yet; call fit(texts) first")

    def prepare(self, texts):
        """Texts -> int64 token ids of shape (n_texts, max_length), right-padded with 0.

        Texts longer than ``max_length`` tokens are cut; unknown words get id 1.
        """
        self._check_fitted()
        texts = _check_texts(texts, f"text encoder {self.name!r}")
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
        return _digest(
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
        self.num_layers = _check_int("num_layers", num_layers, 1)
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


# --------------------------------------------------------------------------- factories


@text_encoders.register("tfidf")
def make_tfidf(spec, *, max_length=128, n_components=None, dim=64, random_state=None, **backbone_kwargs):
    """Registry factory for :class:`TfidfBackbone` (``max_length`` and ``dim`` do not apply)."""
    _check_no_spec("tfidf", spec)
    _check_kwargs("tfidf", backbone_kwargs, TfidfVectorizer().get_params())
    n_components = _check_int("n_components", n_components, 1, allow_none=True)
    return TfidfBackbone(n_components=n_components, random_state=random_state, **backbone_kwargs)


@text_encoders.register("hashing")
def make_hashing(spec, *, max_length=128, n_components=None, dim=64, random_state=None, **backbone_kwargs):
    """Registry factory for :class:`HashingBackbone` (``max_length`` and ``dim`` do not apply)."""
    _check_no_spec("hashing", spec)
    _check_kwargs("hashing", backbone_kwargs, HashingVectorizer().get_params())
    n_components = _check_int("n_components", n_components, 1, allow_none=True)
    return HashingBackbone(n_components=n_components, random_state=random_state, **backbone_kwargs)


_TOKEN_KWARGS = ("min_freq", "max_vocab")
_RECURRENT_KWARGS = _TOKEN_KWARGS + ("bidirectional", "num_layers")


@text_encoders.register("embedding-bag")
def make_embedding_bag(spec, *, max_length=128, n_components=None, dim=64, random_state=None, **backbone_kwargs):
    """Registry factory for :class:`EmbeddingBagBackbone` (``n_components`` does not apply)."""
    _check_no_spec("embedding-bag", spec)
    _check_kwargs("embedding-bag", backbone_kwargs, _TOKEN_KWARGS)
    return EmbeddingBagBackbone(max_length=max_length, dim=dim, random_state=random_state, **backbone_kwargs)


@text_encoders.register("gru")
def make_gru(spec, *, max_length=128, n_components=None, dim=64, random_state=None, **backbone_kwargs):
    """Registry factory for :class:`GRUBackbone` (``n_components`` does not apply)."""
    _check_no_spec("gru", spec)
    _check_kwargs("gru", backbone_kwargs, _RECURRENT_KWARGS)
    return GRUBackbone(max_length=max_length, dim=dim, random_state=random_state, **backbone_kwargs)


@text_encoders.register("lstm")
def make_lstm(spec, *, max_length=128, n_components=None, dim=64, random_state=None, **backbone_kwargs):
    """Registry factory for :class:`LSTMBackbone` (``n_components`` does not apply)."""
    _check_no_spec("lstm", spec)
    _check_kwargs("lstm", backbone_kwargs, _RECURRENT_KWARGS)
    return LSTMBackbone(max_length=max_length, dim=dim, random_state=random_state, **backbone_kwargs)
