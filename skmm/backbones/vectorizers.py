"""Sparse bag-of-words text backbones: ``"tfidf"`` and ``"hashing"``.

Both are registered in :data:`skmm.registry.text_backbones`.  ``prepare`` returns
the features themselves (float32, dense), so ``module`` is ``None`` and they are
never trained end to end.  ``"tfidf"`` learns a vocabulary and IDF weights
(:class:`~sklearn.feature_extraction.text.TfidfVectorizer`); ``"hashing"`` learns
nothing (:class:`~sklearn.feature_extraction.text.HashingVectorizer`, 2**12 columns
by default) and suits vocabularies too large to store.  Both can end in a
:class:`~sklearn.decomposition.TruncatedSVD` (``n_components``) for compact, dense
features (LSA).  ``max_length`` and ``dim`` do not apply to them.

A text without tokens gives all-zero features.

Examples
--------
>>> from skmm.registry import text_backbones
>>> tfidf = text_backbones.get("tfidf")(None).fit(["a red car", "a blue boat"])
>>> tfidf.prepare(["red boat"]).shape  # one-letter words and numbers count as tokens
(1, 5)
"""

import warnings

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer

from ..registry import text_backbones
from ..utils.validation import check_int
from ._common import check_kwargs, check_no_spec, check_texts, digest
from .base import TextBackbone

__all__ = ["TfidfBackbone", "HashingBackbone", "make_tfidf", "make_hashing"]


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
        texts = check_texts(texts, f"text encoder {self.name!r}")
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
        X = self.vectorizer.transform(check_texts(texts, f"text encoder {self.name!r}"))
        X = self.svd_.transform(X) if self.svd_ is not None else X.toarray()
        return np.asarray(X, dtype=np.float32)

    def _fitted_state(self):
        return ()

    # -- plain-data state, for skmm.save ----------------------------------------------------
    def fitted_state(self):
        """The fitted vectorizer and SVD (scikit-learn estimators skmm.save stores as data)."""
        self._check_fitted()
        return {"vectorizer": self.vectorizer, "svd": self.svd_}

    def restore_fitted_state(self, state):
        """Take the vectorizer and SVD of :meth:`fitted_state`, checked against this backbone's options."""
        vectorizer, svd = state["vectorizer"], state["svd"]
        if type(vectorizer) is not type(self.vectorizer) or vectorizer.get_params() != self.vectorizer.get_params():
            raise ValueError(f"text encoder {self.name!r}: the saved vectorizer does not match the backbone's options")
        if svd is not None and (type(svd) is not TruncatedSVD or self.n_components is None):
            raise ValueError(f"text encoder {self.name!r}: the saved SVD does not match n_components")
        self.vectorizer, self.svd_ = vectorizer, svd
        if svd is not None:
            self.out_dim = int(svd.components_.shape[0])
        elif isinstance(vectorizer, HashingVectorizer):
            self.out_dim = int(vectorizer.n_features)
        else:
            self.out_dim = len(vectorizer.vocabulary_)
        self._fitted = True

    def fingerprint(self):
        """sha256 of the vectorizer's parameters and fitted state and the SVD components."""
        self._check_fitted()
        svd = None if self.svd_ is None else self.svd_.components_
        return digest(type(self).__name__, self.vectorizer.get_params(), self._fitted_state(), svd)


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


def _factory(cls, vectorizer_cls):
    """The registry factory of a sparse backbone: checks, then ``cls(...)``."""

    def factory(spec, *, max_length=128, n_components=None, dim=64, random_state=None, **backbone_kwargs):
        check_no_spec(cls.name, spec)
        check_kwargs(cls.name, backbone_kwargs, vectorizer_cls().get_params())
        n_components = check_int("n_components", n_components, allow_none=True)
        return cls(n_components=n_components, random_state=random_state, **backbone_kwargs)

    factory.__name__ = factory.__qualname__ = f"make_{cls.name}"
    factory.__doc__ = f"Registry factory for :class:`{cls.__name__}` (``max_length`` and ``dim`` do not apply)."
    return factory


make_tfidf = text_backbones.register("tfidf", _factory(TfidfBackbone, TfidfVectorizer))
make_hashing = text_backbones.register("hashing", _factory(HashingBackbone, HashingVectorizer))
