"""Parameter and cell checks shared by the estimators, encoders, io and cache.

Each check returns the (possibly normalised) value or raises a ValueError /
TypeError whose message names the parameter, so that every estimator validates
its parameters in ``fit`` the same way and says the same thing.
"""

import numbers

import numpy as np
import pandas as pd

__all__ = [
    "ON_ERROR",
    "check_fraction",
    "check_int",
    "check_number",
    "check_on_error",
    "check_option",
    "is_int",
    "is_missing",
]

ON_ERROR = ("raise", "warn", "ignore")


def is_int(value):
    """An integer that is not a bool (``True`` is not a batch size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_option(name, value, options, *, allow_none=False):
    """``value`` if it is one of ``options`` (or None when ``allow_none``), else a ValueError."""
    if value is None and allow_none:
        return value
    if not isinstance(value, str) or value not in options:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be one of {tuple(options)}{extra}, got {value!r}")
    return value


def check_on_error(on_error, *, name="on_error", allow_none=False):
    """The ``on_error`` policy: "raise", "warn" or "ignore" (None where it means "inherit")."""
    return check_option(name, on_error, ON_ERROR, allow_none=allow_none)


def check_int(name, value, *, min_value=1, max_value=None, allow_none=False):
    """An integer in ``[min_value, max_value]`` (bounds inclusive, None unbounded)."""
    if value is None and allow_none:
        return None
    ok = is_int(value) and (min_value is None or value >= min_value) and (max_value is None or value <= max_value)
    if not ok:
        if min_value == 1 and max_value is None:
            what = "a positive integer"
        elif max_value is None:
            what = f"an integer >= {min_value}"
        else:
            what = f"an integer in [{min_value}, {max_value}]"
        raise ValueError(f"{name} must be {what}{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def check_number(name, value, *, low=None, high=None, low_open=False, high_open=False, allow_none=False):
    """A finite real number (not a bool) within the given bounds."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        if low is not None and high is not None:
            what = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        elif low is not None:
            what = f"a finite number {'>' if low_open else '>='} {low}"
        elif high is not None:
            what = f"a finite number {'<' if high_open else '<='} {high}"
        else:
            what = "a finite number"
        raise ValueError(f"{name} must be {what}{' or None' if allow_none else ''}, got {value!r}")
    return value


def check_fraction(name, value, *, allow_none=False, allow_zero=True):
    """A probability-like number in [0, 1) (or (0, 1) with ``allow_zero=False``)."""
    return check_number(name, value, low=0, high=1, low_open=not allow_zero, high_open=True, allow_none=allow_none)


def is_missing(value):
    """Tell whether a cell holds no value.

    ``None``, float NaN (Python or NumPy), ``pd.NA``, ``pd.NaT`` and empty or
    whitespace-only strings count as missing.

    Parameters
    ----------
    value : object
        One cell.

    Returns
    -------
    bool

    Examples
    --------
    >>> from skmm.utils.validation import is_missing
    >>> [is_missing(v) for v in (None, float("nan"), "  ", "cat.png")]
    [True, True, True, False]
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (float, np.floating)):
        return bool(np.isnan(value))
    return False
