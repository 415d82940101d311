"""The input layout: which columns of X are which modality, decided at fit, checked after.

Every estimator reads X in one step through an :class:`InputLayout`: at fit it
decides what X is (raw image-path and text columns, encoded blocks from a
ColumnTransformer, or one numeric matrix) and remembers it; at predict and
transform it checks X against that decision and returns the modalities, each a
:class:`Modality` (its kind and its raw values).
"""

import os
import warnings
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.utils.validation import validate_data

from ..utils.validation import is_missing
from .columns import detect_columns, same_as_target

__all__ = ["BLOCK_SEPARATOR", "InputLayout", "Modality", "modality_role"]

BLOCK_SEPARATOR = "__"  # ColumnTransformer's "<block>__<feature>" output names


class Modality(NamedTuple):
    """One modality of X: its kind ("image", "text" or "dense"), its values and its column."""

    kind: str
    values: Any
    column: Any = None


def modality_role(name):
    """The role a modality's name says it plays: "image", "text", or the name itself.

    ColumnTransformer block names carry the role inside them ("imageencoder",
    "textencoder-1"); names are compared case-insensitively.

    Examples
    --------
    >>> from skmm.io.frame import modality_role
    >>> modality_role("ImageEncoder"), modality_role("textencoder-1"), modality_role("price")
    ('image', 'text', 'price')
    """
    lowered = str(name).lower()
    for role in ("image", "text"):
        if role in lowered:
            return role
    return name


class InputLayout:
    """Which columns of X feed which modality.

    Parameters
    ----------
    image_col, text_col : str or None
        The columns holding image paths and texts; None detects them.
    owner : str
        The estimator's name, used in messages.

    Attributes (after :meth:`fit_read`)
    -----------------------------------
    kind_ : {"columns", "blocks", "dense"}
        Raw image/text columns, ColumnTransformer blocks named
        ``<modality>__<feature>``, or one numeric matrix.
    image_col_, text_col_ : str or None
        With ``kind_ == "columns"``: the columns read as image paths and texts.
    blocks_ : dict
        With ``kind_ == "blocks"``: modality name -> its columns.
    ignored_columns_ : list
        With ``kind_ == "columns"``: the columns of X not used.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.base import BaseEstimator
    >>> from skmm.io.frame import InputLayout
    >>> X = pd.DataFrame({"photo": ["a.png", "b.png"], "title": ["a cat", "a dog"]})
    >>> layout = InputLayout()
    >>> mods = layout.fit_read(X, estimator=BaseEstimator())
    >>> layout.kind_, layout.image_col_, layout.text_col_, list(mods)
    ('columns', 'photo', 'title', ['image', 'text'])
    """

    def __init__(self, *, image_col=None, text_col=None, owner="FusionClassifier"):
        self.image_col = image_col
        self.text_col = text_col
        self.owner = owner

    # -- fit ------------------------------------------------------------------------------
    def fit_read(self, X, y=None, *, estimator):
        """Decide the layout from ``X`` (and ``y``, never read as a feature); return the modalities.

        ``estimator`` gets scikit-learn's ``n_features_in_`` / ``feature_names_in_``
        through :func:`sklearn.utils.validation.validate_data`.
        """
        if isinstance(X, pd.DataFrame) and len(X) == 0:
            raise ValueError(f"X has 0 rows (columns {list(map(str, X.columns))}); at least 1 is required")
        if not isinstance(X, pd.DataFrame):
            if self.image_col is not None or self.text_col is not None:
                raise TypeError(
                    f"X must be a pandas DataFrame when image_col/text_col name columns, got {type(X).__name__}"
                )
            self.kind_ = "dense"
        else:
            self.kind_ = self._decide(X, y)
        return self._read(X, estimator, reset=True)

    def _decide(self, X, y):
        cols = [str(c) for c in X.columns]
        if self.image_col is None and self.text_col is None and len(X.columns):
            if all(pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c]) for c in X.columns):
                if all(BLOCK_SEPARATOR in c for c in cols):
                    self.blocks_ = {}
                    for c in X.columns:
                        self.blocks_.setdefault(modality_role(str(c).split(BLOCK_SEPARATOR, 1)[0]), []).append(c)
                    return "blocks"
                return "dense"
        self.image_col_, self.text_col_, self.ignored_columns_ = detect_columns(X, self.image_col, self.text_col, y)
        if self.image_col_ is None and self.text_col_ is None:
            raise ValueError(
                f"found no image-path or text column in X (columns {cols}); name them with image_col= and text_col="
            )
        # Nothing a user gave is dropped silently. Expected, so not warned about: a label kept inside X
        # (the column equal to y), and columns left over once image_col and text_col are both named.
        unused = [c for c in self.ignored_columns_ if not same_as_target(X[c], y)]
        if unused and (self.image_col is None or self.text_col is None):
            warnings.warn(
                f"{self.owner} uses image_col={self.image_col_!r} and text_col={self.text_col_!r} and "
                f"ignores the other columns of X: {unused}. Name the columns to use with image_col= and text_col=, "
                "or drop the others from X, to silence this warning.",
                UserWarning,
                stacklevel=4,
            )
        return "columns"

    # -- predict ----------------------------------------------------------------------------
    def read(self, X, *, estimator):
        """The modalities of ``X``, checked against the layout decided at fit."""
        if self.kind_ != "dense" and not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame like the one seen in fit, got {type(X).__name__}")
        return self._read(X, estimator, reset=False)

    def _read(self, X, estimator, reset):
        if self.kind_ == "dense":
            arr = validate_data(estimator, X, reset=reset, dtype=np.float32)
            return {"numeric": Modality("dense", arr)}
        if self.kind_ == "blocks":
            validate_data(estimator, X, reset=reset, skip_check_array=True)
            return {name: Modality("dense", _numeric_block(X, cols)) for name, cols in self.blocks_.items()}
        if reset:
            estimator.n_features_in_ = X.shape[1]
        for param, col in (("image_col", self.image_col_), ("text_col", self.text_col_)):
            if col is not None and col not in X.columns:
                raise ValueError(f"column {col!r} ({param} in fit) is missing from X; columns are {list(X.columns)}")
        if len(X) == 0:
            raise ValueError("X has 0 rows; at least 1 is required")
        out = {}
        if self.image_col_ is not None:
            check_paths(X[self.image_col_], self.image_col_)
            out["image"] = Modality("image", X[self.image_col_], self.image_col_)
        if self.text_col_ is not None:
            out["text"] = Modality("text", X[self.text_col_], self.text_col_)
        return out


def _numeric_block(X, cols):
    block = X[cols]
    bad = [c for c in cols if not pd.api.types.is_numeric_dtype(block[c])]
    if bad:
        raise TypeError(f"encoded column {bad[0]!r} is not numeric ({block[bad[0]].dtype})")
    arr = block.to_numpy(dtype=np.float32)
    if not np.isfinite(arr).all():
        row, col = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"X has a NaN or infinite value in column {cols[col]!r}, row {X.index[row]!r}")
    return arr


def check_paths(column, name):
    """An image column holds paths or missing values; anything else is a TypeError naming the row."""
    if pd.api.types.is_string_dtype(column.dtype) and column.dtype != object:
        return  # a pandas string column holds only strings and missing values
    for position, (label, value) in enumerate(column.items()):
        if not (is_missing(value) or isinstance(value, (str, os.PathLike))):
            raise TypeError(
                f"column {name!r} (the image column) must hold image file paths or missing values; "
                f"row {label!r} (position {position}) holds {type(value).__name__} {value!r}"
            )
