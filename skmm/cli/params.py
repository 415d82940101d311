"""``--param key=value``: values read as Python literals, keys checked against the estimator."""

import ast
import difflib

from .errors import CommandError, one_line

__all__ = ["apply_params", "parse_params", "parse_value"]

# Spellings people type on a command line for Python's constants.
_WORDS = {"true": True, "false": False, "none": None, "null": None}


def parse_value(text):
    """A Python literal (``2``, ``1e-3``, ``None``, ``[1, 2]``, ``{'a': 1}``), else the text itself.

    Examples
    --------
    >>> parse_value("2"), parse_value("0.5"), parse_value("gated"), parse_value("None")
    (2, 0.5, 'gated', None)
    """
    text = text.strip()
    if text.lower() in _WORDS:
        return _WORDS[text.lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text


def parse_params(items):
    """``["max_epochs=2", "fusion=gated"]`` -> ``{"max_epochs": 2, "fusion": "gated"}`` (the last wins)."""
    params = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CommandError(f"--param expects key=value, got {item!r}")
        params[key] = parse_value(value)
    return params


def apply_params(estimator, params, *, what=None):
    """``estimator.set_params(**params)`` after checking every key, naming an unknown one.

    Nested keys (``image__image_size``) are valid when the estimator holds an
    object with that parameter, as in scikit-learn's ``set_params``.
    """
    what = what or type(estimator).__name__
    deep = estimator.get_params(deep=True)
    for key in params:
        if key not in deep:
            top = sorted(estimator.get_params(deep=False))
            close = difflib.get_close_matches(key, list(deep), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            nested = sorted(k for k in deep if "__" in k)
            extra = f"; and nested ones such as {nested[0]!r}" if nested else ""
            raise CommandError(
                f"--param {key!r} is not a parameter of {what}{hint}; valid parameters: {', '.join(top)}{extra}"
            )
    try:
        estimator.set_params(**params)
    except (ValueError, TypeError, AttributeError) as exc:
        raise CommandError(f"--param: {one_line(exc)}") from None
    return estimator
