"""TextEncoder: texts to feature vectors, through a registered backbone."""

import copy

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.utils.validation import validate_data

from .. import cache as _cache
from ..backbones.onnx import check_backend
from ..io.text import to_texts
from ..registry import text_backbones
from ..utils.optional import import_optional
from ..utils.validation import check_int
from .base import BaseEncoder, Batch, check_nonempty, column_of

__all__ = ["TextEncoder"]


class TextEncoder(BaseEncoder):
    """Turn texts into feature vectors with a registered backbone.

    Parameters
    ----------
    backbone : str, default="tfidf"
        A name in :data:`skmm.registry.text_backbones`: ``"tfidf"``, ``"hashing"``
        (scikit-learn vectorizers, optionally reduced to ``n_components`` with
        TruncatedSVD), ``"embedding-bag"``, ``"gru"``, ``"lstm"`` (token models with
        their own tokenizer and vocabulary learned in fit; trained end to end inside
        FusionClassifier), or a family-prefixed name such as ``"hf:<dir>"``.
    weights : str or None, default=None
        Weights for pretrained families.
    n_components : int or None, default=None
        Reduce vectorizer output to this many dimensions (TruncatedSVD).
    max_length : int, default=128
        Tokens kept per text (longer texts are truncated).
    dim : int, default=64
        Embedding / hidden size of the token models.
    trainable : "auto", bool or "last:<n>", default="auto"
        See :class:`ImageEncoder`.
    batch_size : int, default=256
        Texts per forward pass.
    device : str, default="auto"
        "auto", "cpu", "cuda" or "cuda:<n>".
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        See :class:`ImageEncoder`.
    backend : {"torch", "onnxruntime", "onnxruntime-int8"}, default="torch"
        What runs a frozen backbone: PyTorch, or ONNX Runtime's CPU kernels
        (float32 on the CPU only; ``pip install "skmm[onnx]"``), as for
        :class:`ImageEncoder`: exported once per fingerprint, its features
        within a cosine of 0.9999 of PyTorch's.  "onnxruntime-int8" also
        quantizes the exported weights to int8 (ONNX Runtime's dynamic
        quantization): all-MiniLM-L6-v2's embeddings of clipart's texts had a
        cosine of 0.991 median (0.965 at worst) to float32 PyTorch's, and they
        are cached apart from float32 ones.  A ``hf:`` model runs on each
        batch's tokens up to its longest text.  See docs/performance.md for
        measurements.
    cache : bool, default=True
        Reuse embeddings of texts already encoded with the same fitted state.
    cache_dir : str or None, default=None
        Keep the cache on disk here.
    random_state : int, RandomState or None, default=None
        Seeds SVD and randomly initialised weights.
    backbone_kwargs : dict or None, default=None
        Extra options for the backbone (e.g. ``{"analyzer": "char_wb",
        "ngram_range": (2, 4)}`` for tfidf).
    per_column : bool, default=True
        With a 2-D input of several text columns: True encodes each column
        apart (one backbone fitted on all of them, one feature block per
        column, named ``<column>_textencoder<i>`` by ``get_feature_names_out``,
        as :class:`ImageEncoder` does), so one encoder covers every text column
        of a wide table in a ColumnTransformer; False joins each row's cells
        into one text (one block).  A one-column input gives one block either
        way.
    verbose : int, default=0
        Show a progress bar while encoding.

    Notes
    -----
    A 2-D input of several text columns gives one feature block per column
    (``per_column=True``, the default), or, with ``per_column=False``, one text
    per row made of its non-missing cells joined by spaces.  A 2-D array of
    numbers is written as text and joined (there are no text columns to keep
    apart).  Missing or empty texts encode as all-zero rows.

    Examples
    --------
    >>> from skmm import TextEncoder
    >>> TextEncoder("tfidf").fit_transform(["a red ball", "a blue box", "red box"]).shape
    (3, 5)
    """

    _registry = text_backbones

    def __init__(
        self,
        backbone="tfidf",
        *,
        weights=None,
        n_components=None,
        max_length=128,
        dim=64,
        trainable="auto",
        batch_size=256,
        device="auto",
        precision="auto",
        backend="torch",
        cache=True,
        cache_dir=None,
        random_state=None,
        backbone_kwargs=None,
        per_column=True,
        verbose=0,
    ):
        self.backbone = backbone
        self.weights = weights
        self.n_components = n_components
        self.max_length = max_length
        self.dim = dim
        self.trainable = trainable
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.backend = backend
        self.cache = cache
        self.cache_dir = cache_dir
        self.random_state = random_state
        self.backbone_kwargs = backbone_kwargs
        self.per_column = per_column
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a missing cell is a missing text
        return tags

    def _takes_columns_apart(self):
        return self.per_column

    def _check_params(self):
        if not isinstance(self.per_column, bool):
            raise TypeError(f"per_column must be True or False, got {self.per_column!r}")
        check_int("n_components", self.n_components, allow_none=True)
        check_int("batch_size", self.batch_size)
        check_int("max_length", self.max_length)
        check_int("dim", self.dim)
        if check_backend(self.backend) != "torch":
            import_optional("onnxruntime", "onnx", what=f"TextEncoder(backend={self.backend!r})")

    def _read(self, X, reset):
        if isinstance(X, (str, bytes)):
            raise TypeError("TextEncoder takes a column of texts (list, Series, array), not a single string")
        if not isinstance(X, (list, tuple, pd.Series, pd.DataFrame, np.ndarray)) and hasattr(X, "__array__"):
            X = np.asarray(X)
        if sp.issparse(X) or (isinstance(X, np.ndarray) and X.dtype.kind in "biufc"):
            # Numbers are written as text; the usual array checks (sparse, complex,
            # infinite values, shape) still apply first.
            X = validate_data(self, X, reset=reset, ensure_all_finite="allow-nan", dtype=None)
        else:
            validate_data(self, X, skip_check_array=True, reset=reset)
        col = column_of(X)
        if col is not None:
            values, index, column = col
        else:
            if isinstance(X, pd.DataFrame):
                values, index, column = X, list(X.index), None
            else:
                values, index, column = X, None, None
        texts, present = to_texts(values, column=column, index=index)
        check_nonempty(len(texts), type(self).__name__)
        batch = Batch("texts", texts, index, column)
        batch.present = np.asarray(present, dtype=bool)
        return batch

    def _build_backbone(self):
        kwargs = dict(self.backbone_kwargs or {})
        if self.weights is not None:
            kwargs["weights"] = self.weights
        family, spec = self._registry.split(self.backbone)
        factory = self._registry.get(self.backbone)
        return factory(
            spec, max_length=self.max_length, n_components=self.n_components, dim=self.dim,
            random_state=self.random_state, **kwargs,
        )

    def _fit_backbone(self, batch):
        self.backbone_.fit(batch.values)

    def _fingerprint_parts(self, fp):
        return f"text|{fp}"

    def _keys(self, batch):
        return [_cache.text_key(t) if ok else None for t, ok in zip(batch.values, batch.present)]

    def _export_module(self):
        """The module and one row of tokens, every position filled (a module that cuts the padding off
        before its model runs cuts nothing while traced); a ``hf:`` model is exported uncut, with a token
        axis of any length, and each batch is cut to its longest text before it runs."""
        example = torch.ones_like(torch.as_tensor(np.asarray(self.backbone_.prepare(["a"]))))
        module = self._module
        if getattr(module, "trim", False) and example.ndim == 3:  # skmm.backbones.hf.HFTextFeatures, right-padded
            module = copy.copy(module)
            module.trim = False
            return module, example, {2: "tokens"}, _cut_padding
        return module, example, None, None

    def _iter_prepared(self, batch, positions):
        for start in range(0, len(positions), self.batch_size):
            idx = positions[start : start + self.batch_size]
            texts = [batch.values[i] for i in idx]
            yield start, self.backbone_.prepare(texts), batch.present[idx]


def _cut_padding(tokens):
    """(N, 2, L) token ids and attention mask, without the columns past the longest text (right padding)."""
    longest = max(int(tokens[:, 1].sum(axis=1).max()), 1) if len(tokens) else 1
    return np.ascontiguousarray(tokens[:, :, :longest])
