"""Column roles of a wide table: which column is an image, a text, a number, a category.

``FusionClassifier(columns=...)`` takes the roles as a dict (column -> role) or
detects them (``columns="auto"``, :func:`detect_roles`).  Each column read
becomes one modality of the network, named after the column.
"""

import os

import numpy as np
import pandas as pd

from .columns import is_text_column, looks_like_image_paths, same_as_target

__all__ = [
    "PICTURE_SEPARATOR", "ROLES", "TARGET", "check_columns_param", "detect_roles", "is_list_cell", "resolve_path",
    "split_pictures",
]

#: The roles a column can play.
ROLES = ("image", "text", "numeric", "categorical")

#: Why the column equal to ``y`` is left out (a label kept inside X, never a feature).
TARGET = "equal to y (the target)"

#: Separator of several picture paths in one CSV cell (``"front.jpg;back.jpg"``).
PICTURE_SEPARATOR = ";"

_SAMPLE = 200  # rows inspected per column when detecting roles


def is_list_cell(value):
    """Whether a cell holds several values (a list, tuple or 1-D array) rather than one."""
    return isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1)


def split_pictures(value):
    """The picture paths of one image cell, as a list (empty when missing).

    A list/tuple/array cell gives its non-missing items; a string holding
    :data:`PICTURE_SEPARATOR` is split on it; any other path is one picture.

    Examples
    --------
    >>> from skmm.io.roles import split_pictures
    >>> split_pictures("a.png; b.png"), split_pictures(["a.png", None]), split_pictures(None)
    (['a.png', 'b.png'], ['a.png'], [])
    """
    if is_list_cell(value):
        items = list(value)
    elif isinstance(value, str) and PICTURE_SEPARATOR in value:
        items = value.split(PICTURE_SEPARATOR)
    else:
        items = [value]
    out = []
    for item in items:
        if item is None or (isinstance(item, float) and np.isnan(item)):
            continue
        if isinstance(item, str):
            item = item.strip()
            if not item:
                continue
        out.append(item)
    return out


def check_columns_param(columns):
    """``columns`` itself when it is None, "auto" or a dict of known roles; else a TypeError/ValueError."""
    if columns is None or (isinstance(columns, str) and columns == "auto"):
        return columns
    if not isinstance(columns, dict):
        raise TypeError(
            f"columns must be None, 'auto' or a dict mapping column names to roles {list(ROLES)}, "
            f"got {type(columns).__name__}"
        )
    if not columns:
        raise ValueError("columns must name at least one column, got {}")
    for column, role in columns.items():
        if not isinstance(role, str) or role not in ROLES:
            raise ValueError(f"columns[{column!r}] = {role!r} is not a role; the roles are {list(ROLES)}")
    return columns


def _words(values):
    return float(np.mean([len(str(v).split()) for v in values])) if len(values) else 0.0


def _role_of(series):
    """(role, None) or (None, why it is ignored) for one column; ambiguity raises."""
    name = series.name
    present = series.dropna()
    if len(present) == 0:
        return None, "no values (all missing)"
    if pd.api.types.is_bool_dtype(series) or isinstance(series.dtype, pd.CategoricalDtype):
        return "categorical", None
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return None, "dates or durations (no role reads them: convert them to numbers to use them)"
    if pd.api.types.is_numeric_dtype(series):
        if pd.api.types.is_integer_dtype(series) and len(present) > 2 and present.is_unique:
            if int(present.max()) - int(present.min()) + 1 == len(present):
                return None, "identifier (distinct consecutive integers)"
        return "numeric", None
    sample = present.iloc[:_SAMPLE]
    if any(is_list_cell(v) for v in sample):
        flat = pd.Series([p for v in sample for p in split_pictures(v)], dtype=object)
        if len(flat) and looks_like_image_paths(flat):
            return "image", None
        raise ValueError(
            f"column {name!r} holds lists that are not image paths; declare its role in columns= "
            "(lists are read in image columns only)"
        )
    if not is_text_column(series):
        raise ValueError(
            f"column {name!r} holds {type(sample.iloc[0]).__name__} values, neither numbers nor strings; "
            "declare its role in columns= or drop it from X"
        )
    if looks_like_image_paths(sample) or looks_like_image_paths(
        pd.Series([p for v in sample if isinstance(v, str) for p in split_pictures(v)], dtype=object)
    ):
        return "image", None
    strings = present.astype(str)
    words, unique = _words(strings.iloc[:_SAMPLE]), strings.nunique()
    if words <= 1 and unique == len(strings) and len(strings) > 2:
        return None, "identifier (every value distinct)"
    if words < 3 and unique <= max(2, 0.5 * len(strings)):
        return "categorical", None
    if words > 1.5:
        return "text", None
    raise ValueError(
        f"column {name!r} is ambiguous: short strings ({words:.1f} words on average), {unique} distinct "
        f"values in {len(strings)} rows; declare its role ('text' or 'categorical') in columns= "
        "(or name it text_col= to read it as the one text column)"
    )


def detect_roles(X, y=None):
    """The role of every column of ``X``, or why it is left out.

    Rules, in order: a column equal to ``y`` is the target; a column with no
    value is left out; booleans and pandas Categoricals are categorical; dates
    and durations are left out;
    numbers are numeric, except distinct consecutive integers (a row
    identifier); lists of image paths, image paths and ``";"``-separated
    image paths are images; strings of one word, all distinct, are
    identifiers; short strings (under 3 words) repeated (at most half as many
    distinct values as rows) are categorical; longer strings are text.  Short
    strings that are neither raise a ValueError naming the column and
    ``columns=``.

    Returns
    -------
    roles : dict
        Column -> role, for the columns used, in the order of ``X``.
    ignored : dict
        Column -> why it is left out.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmm.io.roles import detect_roles
    >>> X = pd.DataFrame({"id": [1, 2, 3, 4], "price": [9.5, 3.0, 4.2, 9.5],
    ...                   "brand": ["a", "b", "a", "a"], "on_sale": [True, False, True, True],
    ...                   "title": ["a red ball", "a blue box", "a green cup", "a red box"]})
    >>> detect_roles(X)
    ({'price': 'numeric', 'brand': 'categorical', 'on_sale': 'categorical', 'title': 'text'}, {'id': 'identifier (distinct consecutive integers)'})
    """
    roles, ignored = {}, {}
    for column in X.columns:
        series = X[column]
        if same_as_target(series, y):
            ignored[column] = TARGET
            continue
        role, why = _role_of(series)
        if role is None:
            ignored[column] = why
        else:
            roles[column] = role
    return roles, ignored


def resolve_path(value, root):
    """``value`` joined to ``root`` when it is a relative path (absolute paths are kept as they are)."""
    if root is None or not isinstance(value, (str, os.PathLike)):
        return value
    path = os.fspath(value)
    if not path.strip() or os.path.isabs(path):
        return value
    return os.path.join(os.fspath(root), path)

