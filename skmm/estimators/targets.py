"""Targets as users give them, and back: regression values, multilabel indicators and label sets.

The estimators read ``y`` here before any training, so a target that cannot be
learned fails with an error naming its row, and remember the form ``y`` came in
(:class:`TargetForm`) so that predictions come back in that form.
"""

import dataclasses
import numbers

import numpy as np
import pandas as pd
from sklearn.preprocessing import MultiLabelBinarizer
from sklearn.utils.multiclass import type_of_target

__all__ = ["TargetForm", "as_label_sets", "is_label_sets", "read_multilabel", "read_regression_target"]

_SETS = (list, tuple, set, frozenset)


@dataclasses.dataclass
class TargetForm:
    """The form ``y`` came in, so predictions can be given back in it.

    Attributes
    ----------
    kind : {"1d", "array", "frame", "sets"}
        A 1-D array or Series (one regression target), a 2-D array, a DataFrame
        (its ``columns`` kept), or a sequence of label sets (multilabel).
    columns : list or None
        The DataFrame's column labels.
    dtype : str or None
        The dtype of a 2-D array or of the DataFrame's columns (multilabel
        indicators come back in it).
    """

    kind: str
    columns: list = None
    dtype: str = None

    def to_plain(self):
        """The form as JSON-ready data (for skmm.save)."""
        columns = None if self.columns is None else [c.item() if hasattr(c, "item") else c for c in self.columns]
        return {"kind": self.kind, "columns": columns, "dtype": self.dtype}

    def give_back(self, values, index=None):
        """``values`` ((n, k) array) in this form; ``index`` is X's index for a DataFrame."""
        if self.kind == "1d":
            return values[:, 0]
        if self.kind == "frame":
            out = pd.DataFrame(values, columns=self.columns, index=index)
            return out.astype(self.dtype) if self.dtype is not None else out
        return values.astype(self.dtype) if self.dtype is not None else values


def _where(y, i):
    # list(index) gives Python scalars: "row 3", not "row np.int64(3)"
    return f"row {list(y.index)[i]!r} (position {i})" if isinstance(y, (pd.Series, pd.DataFrame)) else f"row {i}"


def read_regression_target(y):
    """y -> (float64 values of shape (n, k), its :class:`TargetForm`).

    Raises
    ------
    ValueError
        For a y that is not numbers (strings, labels), holds NaN or infinities
        (naming the first such row), or has no rows or columns.
    """
    if y is None:
        raise ValueError("FusionRegressor requires y to be passed, but the target y is None.")
    if isinstance(y, pd.DataFrame):
        form = TargetForm("frame", columns=list(y.columns), dtype="float64")
        frame = y
    else:
        values = y.to_numpy() if isinstance(y, pd.Series) else np.asarray(y, dtype=object if _has_str(y) else None)
        if values.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D (n_samples, n_targets), got {values.ndim} dimensions")
        form = TargetForm("1d" if values.ndim == 1 else "array")
        frame = pd.DataFrame(values.reshape(len(values), -1), index=y.index if isinstance(y, pd.Series) else None)
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"y has shape {frame.shape}: it needs rows and at least one target")
    out = np.empty(frame.shape, dtype=np.float64)
    for j, column in enumerate(frame.columns):
        col = frame[column]
        numeric = pd.to_numeric(col, errors="coerce") if not pd.api.types.is_bool_dtype(col) else col.astype(float)
        bad = numeric.isna().to_numpy() & col.notna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"y must hold numbers for a regressor; {_target_name(form, column)} has {_scalar(col.iloc[i])!r} at "
                f"{_where(y, i)} (for class labels use FusionClassifier)"
            )
        out[:, j] = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    bad_rows = ~np.isfinite(out).all(axis=1)
    if bad_rows.any():
        i = int(np.flatnonzero(bad_rows)[0])
        j = int(np.flatnonzero(~np.isfinite(out[i]))[0])
        raise ValueError(
            f"y has {int(bad_rows.sum())} row(s) with a missing or infinite target (NaN, None, inf), the first "
            f"at {_where(y, i)} in {_target_name(form, frame.columns[j])}; drop those rows or fill them"
        )
    return out, form


def _scalar(value):
    return value.item() if isinstance(value, np.generic) else value


def _has_str(y):
    try:
        return any(isinstance(v, str) for v in np.ravel(np.asarray(y, dtype=object)))
    except ValueError:
        return True


def _target_name(form, column):
    if form.kind == "frame":
        return f"column {column!r}"
    return "y" if form.kind == "1d" else f"target {column}"


def is_label_sets(y):
    """Whether ``y`` is a sequence of label sets (lists, tuples, sets) rather than labels or a 2-D array.

    A list of equal-length lists of 0/1 is a 2-D indicator array, as in
    scikit-learn; label sets of unequal lengths, sets and tuples of labels are
    label sets.
    """
    if isinstance(y, (pd.DataFrame, np.ndarray)) and getattr(y, "ndim", 1) != 1:
        return False
    items = list(y) if isinstance(y, (list, tuple, pd.Series, np.ndarray)) else None
    if not items or not any(isinstance(v, _SETS) for v in items):
        return False
    if all(isinstance(v, list) for v in items):
        try:
            array = np.asarray(items)
        except ValueError:  # ragged: label sets
            return True
        return not (array.ndim == 2 and type_of_target(array) == "multilabel-indicator")
    return True


def read_multilabel(y):
    """A multilabel y -> (indicator int64 (n, n_labels), label names, :class:`TargetForm`), or None.

    None when ``y`` is not multilabel (one label per row).  A 2-D 0/1 array, a
    DataFrame of 0/1 (or boolean) columns with two or more columns, or a
    sequence of label sets (:class:`~sklearn.preprocessing.MultiLabelBinarizer`'s
    input) is multilabel.  A row with no label (all zeros, an empty set) is
    allowed.

    Raises
    ------
    ValueError
        For missing values, values other than 0/1, a row that is not a label set
        among label sets, or y with several columns of class labels (multiclass
        multi-output, not supported), naming the row or column.
    """
    if is_label_sets(y):
        items = list(y)
        for i, v in enumerate(items):
            if not isinstance(v, _SETS):
                raise ValueError(
                    f"y mixes label sets and single labels: {_where(y, i)} is {v!r}; give every row a list "
                    "or set of labels (an empty one for no label)"
                )
            missing = [label for label in v if label is None or isinstance(label, float) and np.isnan(label)]
            if missing:
                raise ValueError(f"y has a missing label (None or NaN) in the label set of {_where(y, i)}")
        binarizer = MultiLabelBinarizer()
        try:
            indicator = binarizer.fit_transform(items)
        except TypeError as exc:  # labels that cannot be sorted together (1 and "a")
            raise ValueError(f"the labels of y's label sets cannot be sorted together: {exc}") from None
        if indicator.shape[1] < 1:
            raise ValueError("y's label sets are all empty: there is no label to learn")
        return indicator.astype(np.int64), binarizer.classes_, TargetForm("sets")
    frame = y if isinstance(y, pd.DataFrame) else None
    if frame is None:
        if isinstance(y, (pd.Series, pd.Index)) or not hasattr(y, "__len__"):
            return None
        try:
            array = np.asarray(y)
        except ValueError:
            return None
        if array.ndim != 2 or array.shape[1] < 2:
            return None
        frame = pd.DataFrame(array)
    elif frame.shape[1] < 2:
        return None
    for j, column in enumerate(frame.columns):
        col = frame[column]
        name = f"column {column!r}" if frame is y else f"column {j}"
        missing = col.isna().to_numpy()
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise ValueError(f"y has a missing value (None or NaN) at {_where(y, i)}, {name}")
        ok = [isinstance(v, (numbers.Number, np.bool_)) and v in (0, 1) for v in col]
        if not all(ok):
            i = ok.index(False)
            raise ValueError(
                f"y has {frame.shape[1]} columns, read as multilabel indicators (0/1 per label), but {name} "
                f"holds {_scalar(col.iloc[i])!r} at {_where(y, i)}; several columns of class labels (multiclass "
                "multi-output) are not supported"
            )
    indicator = frame.to_numpy().astype(np.int64)
    if frame is y:
        dtype = str(frame.dtypes.iloc[0]) if frame.dtypes.nunique() == 1 else "int64"
        return indicator, np.asarray(list(frame.columns), dtype=object), TargetForm("frame", list(frame.columns), dtype)
    dtype = str(array.dtype) if array.dtype.kind in "biuf" else "int64"
    return indicator, np.arange(indicator.shape[1]), TargetForm("array", dtype=dtype)


def as_label_sets(indicator, classes):
    """An indicator matrix -> a list of tuples of labels (MultiLabelBinarizer.inverse_transform's form)."""
    return [tuple(classes[np.flatnonzero(row)].tolist()) for row in np.asarray(indicator)]
