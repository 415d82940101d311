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
from .roles import (
    PICTURE_SEPARATOR, TARGET, check_columns_param, detect_roles, is_list_cell, resolve_path, split_pictures,
)

__all__ = ["BLOCK_SEPARATOR", "InputLayout", "Modality", "modality_role"]

BLOCK_SEPARATOR = "__"  # ColumnTransformer's "<block>__<feature>" output names


class Modality(NamedTuple):
    """One modality of X: its kind ("image", "text", "numeric", "categorical" or "dense"), its values and its column."""

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
        The columns holding image paths and texts.  Naming either reads one
        image and one text column (the other detected), modalities named
        "image" and "text"; the other columns of X are ignored, with a
        warning naming them.
    columns : None, "auto" or dict
        A wide table: column -> role ("image", "text", "numeric",
        "categorical"), or "auto" to detect every column's role
        (:func:`skmm.io.roles.detect_roles`).  Each column read is one
        modality, named after the column.  None (with ``image_col`` and
        ``text_col`` None) detects every column's role too and reads every
        usable column; a table whose usable columns are one image and/or one
        text column keeps the modalities "image" and "text".
    owner : str
        The estimator's name, used in messages.

    Attributes (after :meth:`fit_read`)
    -----------------------------------
    kind_ : {"columns", "wide", "blocks", "dense"}
        Raw image/text columns, a wide table (``columns``), ColumnTransformer
        blocks named ``<modality>__<feature>``, or one numeric matrix.
    roles_ : dict
        With ``kind_ == "wide"``: column -> role, for the columns read.
    column_roles_ : dict
        With raw columns (``"columns"`` or ``"wide"``): every column of X ->
        its role, or ``"ignored: <why>"``.
    image_col_, text_col_ : str or None
        With ``kind_ == "columns"``: the columns read as image paths and texts.
    blocks_ : dict
        With ``kind_ == "blocks"``: modality name -> its columns.
    ignored_columns_ : list
        With raw columns: the columns of X not used.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.base import BaseEstimator
    >>> from skmm.io.frame import InputLayout
    >>> X = pd.DataFrame({"photo": ["a.png", "b.png"], "title": ["a black cat asleep", "a small dog"]})
    >>> layout = InputLayout()
    >>> mods = layout.fit_read(X, estimator=BaseEstimator())
    >>> layout.kind_, layout.image_col_, layout.text_col_, list(mods)
    ('columns', 'photo', 'title', ['image', 'text'])
    """

    def __init__(self, *, image_col=None, text_col=None, columns=None, owner="FusionClassifier"):
        self.image_col = image_col
        self.text_col = text_col
        self.columns = columns
        self.owner = owner

    # -- fit ------------------------------------------------------------------------------
    def fit_read(self, X, y=None, *, estimator):
        """Decide the layout from ``X`` (and ``y``, never read as a feature); return the modalities.

        ``estimator`` gets scikit-learn's ``n_features_in_`` / ``feature_names_in_``
        through :func:`sklearn.utils.validation.validate_data`.
        """
        if isinstance(X, pd.DataFrame) and len(X) == 0:
            raise ValueError(f"X has 0 rows (columns {list(map(str, X.columns))}); at least 1 is required")
        check_columns_param(self.columns)
        if self.columns is not None and (self.image_col is not None or self.text_col is not None):
            raise ValueError("give either columns= or image_col=/text_col=, not both (columns can name every role)")
        if not isinstance(X, pd.DataFrame):
            if self.image_col is not None or self.text_col is not None or self.columns is not None:
                raise TypeError(
                    "X must be a pandas DataFrame when columns/image_col/text_col name columns, "
                    f"got {type(X).__name__}"
                )
            self.kind_ = "dense"
        elif self.columns is not None:
            self.kind_ = self._decide_wide(X, y)
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
            return self._detect(X, y)
        self.image_col_, self.text_col_, self.ignored_columns_ = detect_columns(X, self.image_col, self.text_col, y)
        if self.image_col_ is None and self.text_col_ is None:
            raise ValueError(
                f"found no image-path or text column in X (columns {cols}); name them with image_col= and text_col="
            )
        # Nothing a user gave is dropped silently: the columns left over are warned about, except a label
        # kept inside X (the column equal to y).
        unused = [c for c in self.ignored_columns_ if not same_as_target(X[c], y)]
        if unused:
            warnings.warn(
                f"{self.owner} uses image_col={self.image_col_!r} and text_col={self.text_col_!r} and "
                f"ignores the other columns of X: {unused}. Leave image_col and text_col unset to read every "
                "column (roles detected), give every role in columns=, or drop the others from X, "
                "to silence this warning.",
                UserWarning,
                stacklevel=4,
            )
        used = {c: r for c, r in ((self.image_col_, "image"), (self.text_col_, "text")) if c is not None}
        self.column_roles_ = {
            c: used.get(c) or (f"ignored: {TARGET}" if same_as_target(X[c], y)
                               else "ignored: not image_col or text_col")
            for c in X.columns
        }
        return "columns"

    def _detect(self, X, y):
        """No roles given: every column's role detected (:func:`detect_roles`), every usable column read.

        A table whose usable columns are one image column and/or one text
        column (one picture per cell) keeps the two-modality layout, modalities
        named "image" and "text"; any other table is read as a wide table.
        """
        roles, ignored = detect_roles(X, y)
        if not roles:
            raise ValueError(
                f"found no column of X to read (columns {[str(c) for c in X.columns]}"
                + "".join(f"; {c!r}: {why}" for c, why in ignored.items())
                + "); give their roles in columns=, or name image_col= and text_col="
            )
        self._warn_ignored(ignored)
        images = [c for c, r in roles.items() if r == "image"]
        texts = [c for c, r in roles.items() if r == "text"]
        if len(images) + len(texts) == len(roles) and len(images) <= 1 and len(texts) <= 1 and not any(
            is_list_cell(v) or (isinstance(v, str) and PICTURE_SEPARATOR in v)
            for c in images for v in X[c].dropna()
        ):
            self.image_col_ = images[0] if images else None
            self.text_col_ = texts[0] if texts else None
            self.ignored_columns_ = list(ignored)
            self.column_roles_ = {c: roles[c] if c in roles else f"ignored: {ignored[c]}" for c in X.columns}
            return "columns"
        return self._set_roles(X, roles, ignored)

    def _warn_ignored(self, ignored):
        unused = {c: why for c, why in ignored.items() if why != TARGET}
        if unused:
            warnings.warn(
                f"{self.owner} ignores columns of X: "
                + ", ".join(f"{c!r} ({why})" for c, why in unused.items())
                + ". Give their roles in columns= to use them, or drop them from X, to silence this warning.",
                UserWarning,
                stacklevel=5,
            )

    def _decide_wide(self, X, y):
        if self.columns == "auto":
            roles, ignored = detect_roles(X, y)
            self._warn_ignored(ignored)
        else:
            missing = [c for c in self.columns if c not in X.columns]
            if missing:
                raise ValueError(
                    f"columns names {missing}, which X does not have; the columns of X are {list(X.columns)}"
                )
            roles = dict(self.columns)
            ignored = {c: "not in columns" for c in X.columns if c not in roles}
        if not roles:
            raise ValueError(f"no column of X can be read (columns {list(X.columns)}); give their roles in columns=")
        return self._set_roles(X, roles, ignored)

    def _set_roles(self, X, roles, ignored):
        names = [str(c) for c in roles]
        if len(set(names)) != len(names):
            raise ValueError(f"columns {list(roles)} give the same modality name twice; rename them")
        self.roles_ = roles
        self.ignored_columns_ = list(ignored)
        self.column_roles_ = {c: roles[c] if c in roles else f"ignored: {ignored[c]}" for c in X.columns}
        return "wide"

    def summary(self):
        """One line saying which column got which role and which were ignored (raw-column layouts)."""
        roles = getattr(self, "column_roles_", {})
        used = ", ".join(f"{c}={r}" for c, r in roles.items() if not r.startswith("ignored"))
        ignored = ", ".join(f"{c} ({r[len('ignored: '):]})" for c, r in roles.items() if r.startswith("ignored"))
        return f"{self.owner} reads {used or 'nothing'}" + (f"; ignores {ignored}" if ignored else "")

    # -- predict ----------------------------------------------------------------------------
    def read(self, X, *, estimator):
        """The modalities of ``X``, checked against the layout decided at fit."""
        if self.kind_ != "dense" and not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame like the one seen in fit, got {type(X).__name__}")
        return self._read(X, estimator, reset=False)

    def _read(self, X, estimator, reset):
        root = getattr(estimator, "image_root", None)
        if self.kind_ == "wide":
            return self._read_wide(X, estimator, reset, root)
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
            out["image"] = Modality("image", resolve_paths(X[self.image_col_], root), self.image_col_)
        if self.text_col_ is not None:
            out["text"] = Modality("text", X[self.text_col_], self.text_col_)
        return out


    def _read_wide(self, X, estimator, reset, root):
        if reset:
            estimator.n_features_in_ = X.shape[1]
        missing = [c for c in self.roles_ if c not in X.columns]
        if missing:
            raise ValueError(
                f"column(s) {missing} (read in fit, see column_roles_) missing from X; columns are {list(X.columns)}"
            )
        if len(X) == 0:
            raise ValueError("X has 0 rows; at least 1 is required")
        out = {}
        for column, role in self.roles_.items():
            values = X[column]
            if reset and role in ("image", "text") and all(
                not split_pictures(v) if is_list_cell(v) else is_missing(v) for v in values
            ):
                raise ValueError(
                    f"column {column!r} ({role}) has no value in any row (all missing); drop it from X or from columns="
                )
            if role == "image":
                check_paths(values, column, allow_lists=True)
                values = resolve_paths(values, root)
            elif role == "text":
                check_no_lists(values, column)
            out[str(column)] = Modality(role, values, column)
        return out


def resolve_paths(column, root):
    """The image column with relative paths joined to ``root`` (None: as they are); lists item by item."""
    if root is None:
        return column

    def resolve(value):
        if is_list_cell(value) or (isinstance(value, str) and ";" in value):
            return [resolve_path(p, root) for p in split_pictures(value)]
        return resolve_path(value, root)

    return column.map(resolve)


def check_no_lists(column, name):
    """A text column holds one text per cell: a list cell is a TypeError naming the row."""
    for position, (label, value) in enumerate(column.items()):
        if is_list_cell(value):
            raise TypeError(
                f"column {name!r} is read as text but row {label!r} (position {position}) holds a "
                f"{type(value).__name__}; join the texts into one string, or declare the column 'image' "
                "in columns= if it lists picture paths"
            )


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


def check_paths(column, name, allow_lists=False):
    """An image column holds paths or missing values (or lists of paths, with ``allow_lists``);
    anything else is a TypeError naming the row."""
    if pd.api.types.is_string_dtype(column.dtype) and column.dtype != object:
        return  # a pandas string column holds only strings and missing values
    for position, (label, value) in enumerate(column.items()):
        if allow_lists and is_list_cell(value):
            bad = [v for v in value if not (is_missing(v) or isinstance(v, (str, os.PathLike)))]
            if not bad:
                continue
            value = bad[0]
        if not (is_missing(value) or isinstance(value, (str, os.PathLike))):
            raise TypeError(
                f"column {name!r} (the image column) must hold image file paths or missing values; "
                f"row {label!r} (position {position}) holds {type(value).__name__} {value!r}"
            )
