"""Numeric and categorical columns as modalities: scikit-learn preprocessing, plain state.

A numeric column is imputed with its mean (plus a missing indicator when it had
missing values in fit: :class:`sklearn.impute.SimpleImputer` with
``add_indicator=True``) and standardised (:class:`sklearn.preprocessing.StandardScaler`);
the network reads the result as features.  A categorical column is coded by
:class:`sklearn.preprocessing.OrdinalEncoder` with
``handle_unknown="use_encoded_value"``: code 0 is "unknown" (a category not
seen in fit), codes 1..K the categories seen; the network learns an embedding
per code (:class:`CategoryEmbedding`).  A missing categorical cell is a missing
modality for that row.

Both keep their fitted state as plain numbers (:meth:`NumericColumn.state`), so
:func:`skmm.save` stores them without pickling scikit-learn objects.
"""

import numpy as np
import pandas as pd
import torch
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder, StandardScaler
from torch import nn

__all__ = ["CategoricalColumn", "CategoryEmbedding", "NumericColumn", "embedding_width"]


def _missing(series):
    return series.isna().to_numpy() | series.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)


class NumericColumn:
    """One numeric column: mean-imputed with a missing indicator, standardised.

    Parameters
    ----------
    column : str
        The column's name, used in messages.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmm.io.tabular import NumericColumn
    >>> col = NumericColumn("price").fit(pd.Series([1.0, None, 3.0]))
    >>> out = col.transform(pd.Series([2.0, None]))  # the value (mean-imputed), the missing indicator
    >>> out.shape, float(out[1, 0]), bool(out[1, 1] > out[0, 1])
    ((2, 2), 0.0, True)
    """

    def __init__(self, column):
        self.column = column

    def _numbers(self, series):
        series = pd.Series(series)
        if pd.api.types.is_bool_dtype(series):
            series = series.astype(float)
        values = pd.to_numeric(series.mask(_missing(series)), errors="coerce")
        bad = values.isna() & ~pd.Series(_missing(series), index=series.index)
        if bad.any():
            label = series.index[np.flatnonzero(bad.to_numpy())[0]]
            raise TypeError(
                f"column {self.column!r} is numeric but row {label!r} holds {series[label]!r}; "
                "give numbers (or missing values), or declare the column 'categorical' or 'text' in columns="
            )
        arr = values.to_numpy(dtype=np.float64)
        if np.isinf(arr).any():
            label = series.index[np.flatnonzero(np.isinf(arr))[0]]
            raise ValueError(f"column {self.column!r} holds an infinite value at row {label!r}")
        return arr.reshape(-1, 1)

    def fit(self, series):
        """Learn the mean, the scale and whether a missing indicator is needed; returns self."""
        arr = self._numbers(series)
        if np.isnan(arr).all():
            raise ValueError(
                f"column {self.column!r} has no value in any row (all missing); drop it from X or from columns="
            )
        pipe = make_pipeline(SimpleImputer(strategy="mean", add_indicator=True), StandardScaler()).fit(arr)
        imputer, scaler = pipe[0], pipe[1]
        self.fill_ = float(imputer.statistics_[0])
        self.indicator_ = imputer.indicator_ is not None and len(imputer.indicator_.features_) > 0
        scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
        self.mean_, self.scale_ = scaler.mean_.astype(np.float64), scale.astype(np.float64)
        return self

    @property
    def width(self):
        """Features per row: 1, or 2 with the missing indicator."""
        return 2 if self.indicator_ else 1

    def transform(self, series):
        """(n, width) float32 features."""
        arr = self._numbers(series)
        missing = np.isnan(arr)
        arr = np.where(missing, self.fill_, arr)
        if self.indicator_:
            arr = np.hstack([arr, missing.astype(np.float64)])
        return ((arr - self.mean_) / self.scale_).astype(np.float32)

    def state(self):
        """The fitted state as plain data."""
        return {"fill": self.fill_, "indicator": bool(self.indicator_), "mean": self.mean_, "scale": self.scale_}

    @classmethod
    def from_state(cls, column, state):
        """The fitted column of :meth:`state`."""
        col = cls(column)
        col.fill_, col.indicator_ = float(state["fill"]), bool(state["indicator"])
        col.mean_ = np.asarray(state["mean"], dtype=np.float64)
        col.scale_ = np.asarray(state["scale"], dtype=np.float64)
        if col.mean_.shape != (col.width,) or col.scale_.shape != (col.width,):
            raise ValueError(f"numeric column {column!r}: saved mean/scale do not match its width")
        return col


def _category_values(series):
    series = pd.Series(series)
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    missing = _missing(series)
    # one type per column for OrdinalEncoder: strings stay strings, anything else is written as a string
    values = np.array([None if m else (v if isinstance(v, str) else str(v)) for v, m in zip(series, missing)], dtype=object)
    return values, ~missing


class CategoricalColumn:
    """One categorical column coded for an embedding: 0 is "unknown", 1..K the categories of fit.

    Values are compared as strings (``True`` and ``"True"`` are one category).
    A category not seen in fit gets code 0, the "unknown" embedding, not an error;
    a missing cell is a missing modality for its row.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmm.io.tabular import CategoricalColumn
    >>> col = CategoricalColumn("brand").fit(pd.Series(["acme", "zeta", "acme"]))
    >>> codes, present = col.transform(pd.Series(["zeta", "new", None]))
    >>> codes.tolist(), present.tolist()
    ([2, 0, 0], [True, True, False])
    """

    def __init__(self, column):
        self.column = column

    def fit(self, series):
        """Learn the categories; returns self."""
        values, present = _category_values(series)
        if not present.any():
            raise ValueError(
                f"column {self.column!r} has no value in any row (all missing); drop it from X or from columns="
            )
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.int64)
        encoder.fit(values[present].reshape(-1, 1))
        self.categories_ = np.asarray(encoder.categories_[0], dtype=object)
        self._encoder = encoder
        return self

    @property
    def n_codes(self):
        """K + 1: the categories of fit and "unknown"."""
        return len(self.categories_) + 1

    def transform(self, series):
        """(codes int64 (n,), present bool (n,))."""
        values, present = _category_values(series)
        codes = np.zeros(len(values), dtype=np.int64)
        if present.any():
            codes[present] = self._encoder.transform(values[present].reshape(-1, 1)).ravel() + 1
        return codes, present

    def state(self):
        """The fitted state as plain data."""
        return {"categories": np.asarray(self.categories_, dtype=object)}

    @classmethod
    def from_state(cls, column, state):
        """The fitted column of :meth:`state`."""
        categories = np.asarray(state["categories"], dtype=object)
        col = cls(column)
        col.categories_ = categories
        col._encoder = OrdinalEncoder(
            categories=[categories], handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.int64
        ).fit(categories.reshape(-1, 1))
        return col


def embedding_width(n_codes):
    """Width of a learned category embedding: fast.ai's rule of thumb ``1.6 * n ** 0.56``, in [4, 64]."""
    return int(min(64, max(4, round(1.6 * n_codes**0.56))))


class CategoryEmbedding(nn.Module):
    """``nn.Embedding`` over category codes (int64, shape (N,)) -> (N, width) features."""

    def __init__(self, n_codes, width):
        super().__init__()
        self.embedding = nn.Embedding(int(n_codes), int(width))

    def forward(self, codes):
        return self.embedding(codes.long().clamp(0, self.embedding.num_embeddings - 1))
