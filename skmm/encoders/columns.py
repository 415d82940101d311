"""One encoder over several columns: one backbone, one feature block per column.

``ImageEncoder().fit(df[["front", "back"]])`` fits one backbone on the values of
both columns and ``transform`` gives the features of ``front`` then those of
``back``; ``get_feature_names_out`` names them ``<column>_<prefix><i>``.  A
ColumnTransformer over a wide table then needs one encoder entry per kind.
"""

import os

import numpy as np
import pandas as pd

__all__ = ["SeveralColumnsMixin", "joined_columns", "several_columns"]


def _is_paths(values):
    return any(isinstance(v, (str, os.PathLike)) for v in values)


def several_columns(X):
    """``{name: values}`` for a 2-D input of several columns of strings or paths, else None.

    DataFrames and 2-D object/string arrays qualify; numbers (image arrays, or
    texts written from numbers) do not.  A DataFrame mixing numeric and string
    columns is a ValueError naming the numeric one.
    """
    if isinstance(X, pd.DataFrame) and X.shape[1] > 1:
        numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) or not _is_paths(X[c].dropna())]
        if len(numeric) == X.shape[1]:
            return None
        if numeric:
            raise ValueError(
                f"column {numeric[0]!r} of X holds no strings or paths, unlike {[c for c in X if c not in numeric]}; "
                "an encoder over several columns reads one column of image paths or texts each "
                "(TextEncoder(per_column=False) joins each row's cells into one text instead)"
            )
        return {str(c): X[c] for c in X.columns}
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] > 1 and X.dtype.kind in "OUS":
        if not all(_is_paths(X[:, i]) for i in range(X.shape[1])):
            return None
        return {f"x{i}": pd.Series(X[:, i], dtype=object) for i in range(X.shape[1])}
    return None


def joined_columns(columns):
    """The values of several columns one after the other, as one object Series (what the backbone learns from)."""
    return pd.concat([pd.Series(list(col), dtype=object) for col in columns.values()], ignore_index=True)


class SeveralColumnsMixin:
    """What an encoder fitted on several columns adds: per-column reads and per-column feature names."""

    def _takes_columns_apart(self):
        """Whether a 2-D input of several columns gives one feature block per column."""
        return True

    def _read_column(self, values):
        # one column of an input checked as a whole: not compared with the whole input's feature names
        saved = {k: self.__dict__.pop(k) for k in ("n_features_in_", "feature_names_in_") if k in self.__dict__}
        try:
            return self._read(values, reset=False)
        finally:
            self.__dict__.update(saved)

    def get_feature_names_out(self, input_features=None):
        """Output feature names: ``<prefix><i>``, or ``<column>_<prefix><i>`` per column of a several-column input.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored; there for scikit-learn's API.

        Returns
        -------
        ndarray of str
            One name per output feature.
        """
        names = super().get_feature_names_out()
        columns = getattr(self, "columns_", None)
        if not columns:
            return names
        return np.asarray([f"{column}_{name}" for column in columns for name in names], dtype=object)
