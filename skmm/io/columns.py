"""Finding the image-path and text columns of a DataFrame."""

import os

import numpy as np
import pandas as pd

__all__ = ["IMAGE_EXTENSIONS", "detect_columns", "is_text_column", "looks_like_image_paths", "same_as_target"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2", ".ico")
_SAMPLE = 50  # values inspected per column: detection must stay cheap on big tables


def is_text_column(series):
    """Object/string columns whose non-missing values are (mostly) strings or paths (``pathlib.Path``)."""
    if not (series.dtype == object or pd.api.types.is_string_dtype(series.dtype)):
        return False
    values = series.dropna()
    if len(values) == 0:
        return False
    sample = values.iloc[:_SAMPLE]
    return sum(isinstance(v, (str, os.PathLike)) for v in sample) >= 0.5 * len(sample)


def looks_like_image_paths(series):
    """Whether a string column holds image file paths (an image extension or an existing image file)."""
    values = [
        os.fspath(v) if isinstance(v, os.PathLike) else v for v in series.dropna().iloc[:_SAMPLE]
    ]
    values = [v for v in values if isinstance(v, str) and v.strip()]
    if not values:
        return False
    hits = sum(v.lower().endswith(IMAGE_EXTENSIONS) or (len(v) < 4096 and os.path.isfile(v) and "\n" not in v) for v in values)
    return hits >= 0.8 * len(values)


def same_as_target(series, y):
    """Whether ``series`` equals the target ``y`` (a label kept inside X, never a feature)."""
    if y is None:
        return False
    try:
        y = np.asarray(y).ravel()
        return len(y) == len(series) and bool(np.all(series.astype(object).to_numpy() == y.astype(object)))
    except Exception:  # incomparable types: not the target
        return False


def detect_columns(X, image_col=None, text_col=None, y=None):
    """Choose the image-path and text columns of ``X``.

    Explicit names win (a missing one is a ValueError listing the columns).  Otherwise
    the image column is the one column of image file paths, and the text column the
    string column with the longest average text.  A column equal to ``y`` is never
    taken (it would leak the label).

    Returns
    -------
    image_col, text_col : str or None
    ignored : list
        Columns of ``X`` not used.

    Raises
    ------
    ValueError
        For a named column that does not exist, or when the choice is ambiguous
        (two image-path columns; two text columns of similar length); the message
        names the candidates and the parameter to set.
    """
    columns = list(X.columns)
    for param, col in (("image_col", image_col), ("text_col", text_col)):
        if col is not None and col not in X.columns:
            raise ValueError(f"{param}={col!r} is not a column of X; columns are {columns}")
    if image_col is not None and image_col == text_col:
        raise ValueError(f"image_col and text_col name the same column {image_col!r}")
    named = {image_col, text_col} - {None}
    candidates = [
        c for c in columns if c not in named and is_text_column(X[c]) and not same_as_target(X[c], y)
    ]
    if image_col is None:
        images = [c for c in candidates if looks_like_image_paths(X[c])]
        if len(images) > 1:
            raise ValueError(f"several columns hold image paths: {images}; choose one with image_col=")
        if images:
            image_col = images[0]
    if text_col is None:
        texts = [c for c in candidates if c != image_col and not looks_like_image_paths(X[c])]
        if texts:
            lengths = {c: X[c].dropna().astype(str).str.len().mean() for c in texts}
            ranked = sorted(texts, key=lambda c: -lengths[c])
            if len(ranked) > 1 and lengths[ranked[1]] >= 0.75 * lengths[ranked[0]]:
                raise ValueError(
                    f"several columns could be the text: {ranked} (mean lengths "
                    + ", ".join(f"{c}={lengths[c]:.1f}" for c in ranked)
                    + "); choose one with text_col="
                )
            text_col = ranked[0]
    used = {image_col, text_col} - {None}
    return image_col, text_col, [c for c in columns if c not in used]
