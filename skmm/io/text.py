"""Text columns -> lists of strings, with missing values marked.

:func:`to_texts` is the one door through which table cells become the strings
text backbones read.  It accepts what a user's table really holds: strings,
missing values of every spelling (``None``, ``NaN``, ``pd.NA``, ``""``,
whitespace), numbers, UTF-8 bytes and lists of tokens (as parquet list columns
give them), and it turns anything else into a ``TypeError`` that names the row
and the column instead of a traceback from deep inside a vectorizer.

Coercion rules, per cell:

=============================================  ===============================
cell                                           text
=============================================  ===============================
``str`` (also ``np.str_``)                     kept as it is
``None``, ``NaN``, ``pd.NA``, ``pd.NaT``,      ``""``, and marked not present
``""``, whitespace only
``bool`` / ``np.bool_``                        ``"True"`` / ``"False"``
integers (``int``, ``np.integer``)             ``str(int(x))``
floats (``float``, ``np.floating``)            integral values below 2**53 as
                                               integers (``3.0`` -> ``"3"``, so
                                               an int column pandas made float
                                               by a NaN reads the same); others
                                               in their shortest round-trip
                                               form (``0.1`` -> ``"0.1"``,
                                               ``1e20`` -> ``"1e+20"``)
``bytes`` / ``bytearray``                      decoded as UTF-8
list, tuple or 1-D array of strings            its non-blank strings joined by
                                               single spaces
anything else (dict, objects, nested lists)    ``TypeError``
=============================================  ===============================

A 2-D input (a DataFrame or a 2-D array) makes one text per row: the row's
present cells, coerced as above, joined by single spaces.  Several text columns
thus make one document, and numeric arrays can be read as text.
"""

import math
import numbers

import numpy as np
import pandas as pd

__all__ = ["to_texts"]

_EXPECTED = "expected str, bytes, a number, a list of strings or a missing value"


class _BadCell(Exception):
    """Internal: a cell that cannot be read as text (``to_texts`` adds where)."""


def to_texts(values, *, column=None, index=None):
    """Coerce a text column (or several) to a list of strings and a presence mask.

    Parameters
    ----------
    values : pandas.Series, list, 1-D array, 2-D array or pandas.DataFrame
        The cells.  In a 2-D input each row's present cells are joined with a
        single space into one text.  See the module docstring for the rules.
    column : hashable or sequence of hashable, optional
        Name of the column, used in error messages.  Defaults to the Series'
        name; for a 2-D input, a sequence naming each column (defaults to the
        DataFrame's columns, else positions are used).
    index : sequence, optional
        Row labels, used in error messages next to the row's position.
        Defaults to the index of a Series or DataFrame.

    Returns
    -------
    texts : list of str
        One string per row; ``""`` where the row has no text.
    present : numpy.ndarray of bool, shape (n_rows,)
        False where the row's text is missing (None, NaN, empty, blank).

    Raises
    ------
    TypeError
        For a cell that is not text, a number, bytes or a list of strings, and
        for bytes that are not UTF-8; the message names the row (label and
        position), the column and the type.
    ValueError
        For inputs that are not 1-D or 2-D, and an ``index`` of the wrong length.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> texts, present = to_texts(["a red car", None, 3.0, b"caf\\xc3\\xa9", ["two", "words"], "  "])
    >>> texts
    ['a red car', '', '3', 'café', 'two words', '']
    >>> present.tolist()
    [True, False, True, True, True, False]
    >>> df = pd.DataFrame({"title": ["red car", None], "brand": ["acme", "zeta"]})
    >>> to_texts(df)[0]
    ['red car acme', 'zeta']
    >>> to_texts(pd.Series([{"a": 1}], name="title"))
    Traceback (most recent call last):
    ...
    TypeError: cannot read text from row 0 (position 0) in column 'title': got dict; expected str, bytes, a number, a list of strings or a missing value
    """
    if isinstance(values, (str, bytes)):
        raise TypeError(f"expected a column of texts (a list, array or Series), got a single {type(values).__name__}")
    if isinstance(values, pd.DataFrame):
        if index is None:
            index = values.index
        if column is None:
            column = list(values.columns)
        columns = [values.iloc[:, j].to_numpy(dtype=object) for j in range(values.shape[1])]
        return _join_columns(columns, len(values), column, index)
    if isinstance(values, pd.Series):
        if index is None:
            index = values.index
        if column is None:
            column = values.name
        cells = values.to_numpy(dtype=object)
    elif isinstance(values, pd.Index):
        cells = values.to_numpy(dtype=object)
    else:
        cells = values if isinstance(values, np.ndarray) else _as_cells(values)
        if cells.ndim == 2:
            return _join_columns(list(cells.T), cells.shape[0], column, index)
        if cells.ndim != 1:
            raise ValueError(f"expected a 1-D or 2-D collection of texts, got an array of shape {cells.shape}")
    if index is not None and len(index) != len(cells):
        raise ValueError(f"index has {len(index)} labels for {len(cells)} rows")
    return _column_to_texts(cells, None if column is None else f"column {column!r}", index)


def _as_cells(values):
    """A list-like -> a numpy array of cells, keeping list cells whole (not as a 2-D array)."""
    values = list(values)
    if values and all(isinstance(v, (list, tuple)) for v in values):
        lengths = {len(v) for v in values}
        if len(lengths) == 1 and not any(isinstance(c, (list, tuple, dict)) for v in values for c in v):
            # A list of equal-length rows reads as a 2-D table, like np.asarray would.
            return np.asarray(values, dtype=object)
    cells = np.empty(len(values), dtype=object)
    cells[:] = values
    return cells


def _column_to_texts(cells, where_column, index):
    """One column of cells -> (texts, present); ``where_column`` names it in errors."""
    n = len(cells)
    if cells.dtype.kind == "U":
        items = cells.tolist()
    elif cells.dtype.kind in "biuf":
        items = cells.tolist()  # Python bools, ints and floats
    else:
        items = cells.tolist() if cells.dtype == object else list(cells)
    # Fast path: a column of Python strings (the common case) needs no per-cell dispatch.
    if all(type(v) is str for v in items):
        texts = [v if v and not v.isspace() else "" for v in items]
        present = np.fromiter((bool(t) for t in texts), dtype=bool, count=n)
        return texts, present
    texts = [""] * n
    present = np.zeros(n, dtype=bool)
    for i, v in enumerate(items):
        try:
            text = _cell_to_text(v)
        except _BadCell as exc:
            raise TypeError(f"cannot read text from {_where(i, where_column, index)}: {exc}") from None
        if text and not text.isspace():
            texts[i] = text
            present[i] = True
    return texts, present


def _cell_to_text(v):
    """One cell -> its text ("" when missing); raises _BadCell with the reason."""
    if isinstance(v, str):
        return v
    if v is None or v is pd.NA or v is pd.NaT:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "True" if v else "False"
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        return _format_float(v)
    if isinstance(v, (bytes, bytearray)):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _BadCell(f"bytes are not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.ndim == 1):
        parts = v.tolist() if isinstance(v, np.ndarray) else v
        if all(isinstance(p, str) for p in parts):
            return " ".join(p for p in parts if p and not p.isspace())
        bad = next(p for p in parts if not isinstance(p, str))
        raise _BadCell(f"got a {type(v).__name__} holding a {type(bad).__name__}; {_EXPECTED}")
    raise _BadCell(f"got {type(v).__name__}; {_EXPECTED}")


def _format_float(x):
    f = float(x)
    if math.isnan(f):
        return ""
    if f.is_integer() and abs(f) < 2**53:
        return str(int(f))
    # numpy scalars print their shortest round-trip form for their own precision
    # (str(np.float32(0.1)) == "0.1", where repr(float(...)) would give 0.10000000149011612).
    return str(x) if isinstance(x, np.floating) else repr(f)


def _where(i, where_column, index):
    row = f"row {index[i]!r} (position {i})" if index is not None else f"row at position {i}"
    return row if where_column is None else f"{row} in {where_column}"


def _join_columns(columns, n_rows, names, index):
    """2-D: coerce each column, then join each row's present cells with a space."""
    n_cols = len(columns)
    if names is not None and (isinstance(names, (str, bytes)) or not _is_sequence(names) or len(names) != n_cols):
        names = None
    if index is not None and len(index) != n_rows:
        raise ValueError(f"index has {len(index)} labels for {n_rows} rows")
    if n_cols == 0:
        return [""] * n_rows, np.zeros(n_rows, dtype=bool)
    coerced = []
    for j, cells in enumerate(columns):
        where_column = f"column {names[j]!r}" if names is not None else f"column at position {j}"
        coerced.append(_column_to_texts(np.asarray(cells, dtype=object), where_column, index))
    if n_cols == 1:
        return coerced[0]
    texts = [" ".join(t for t in row if t) for row in zip(*(c[0] for c in coerced))]
    present = np.logical_or.reduce([c[1] for c in coerced])
    return texts, present


def _is_sequence(obj):
    return hasattr(obj, "__len__") and hasattr(obj, "__getitem__")
