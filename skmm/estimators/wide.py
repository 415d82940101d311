"""Wide tables inside an estimator: encoders shared by the columns of a kind, tabular columns.

:func:`group_columns` decides which image/text columns share one encoder (all
columns of a kind, unless ``encoders=`` gives a column its own);
:func:`fit_tabular` / :func:`tabular_inputs` turn numeric and categorical
columns into the network's inputs (:mod:`skmm.io.tabular`).
"""

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import clone

from ..encoders import ImageEncoder, TextEncoder
from ..io.roles import PICTURE_SEPARATOR, is_list_cell, split_pictures
from ..io.tabular import CategoricalColumn, CategoryEmbedding, NumericColumn, embedding_width

__all__ = ["ENCODER_CLASSES", "check_encoders_param", "check_image_root", "fit_tabular", "group_columns",
           "has_several_pictures", "picture_inputs", "tabular_from_state", "tabular_inputs", "tabular_state"]

ENCODER_CLASSES = {"image": ImageEncoder, "text": TextEncoder}
TABULAR = ("numeric", "categorical")


def check_encoders_param(encoders):
    """``encoders`` must be None or a dict column -> ImageEncoder / TextEncoder / backbone name."""
    if encoders is None:
        return
    if not isinstance(encoders, Mapping):
        raise TypeError(f"encoders must be a dict mapping columns to encoders, or None; got {type(encoders).__name__}")
    for column, encoder in encoders.items():
        if isinstance(encoder, (ImageEncoder, TextEncoder)):
            encoder.validate_params()
        elif not isinstance(encoder, str):
            raise TypeError(
                f"encoders[{column!r}] must be an ImageEncoder, a TextEncoder or a backbone name, "
                f"got {type(encoder).__name__}"
            )


def check_image_root(image_root):
    """``image_root`` must be None or a directory path (str or path-like)."""
    if image_root is not None and not isinstance(image_root, (str, os.PathLike)):
        raise TypeError(f"image_root must be a directory path or None, got {type(image_root).__name__}")


def column_encoder(encoders, column, kind):
    """The encoder ``encoders=`` gives ``column`` (a clone), or None; a wrong kind is a TypeError."""
    if not encoders or column not in encoders:
        return None
    spec, cls = encoders[column], ENCODER_CLASSES[kind]
    if isinstance(spec, str):
        return cls(spec)
    if not isinstance(spec, cls):
        raise TypeError(
            f"encoders[{column!r}] is a {type(spec).__name__}, but column {column!r} is read as {kind}; "
            f"give a {cls.__name__}"
        )
    return clone(spec)


def group_columns(modalities, encoders):
    """Image/text modalities grouped by the encoder they share: ``{leader: (kind, [names])}``.

    Columns of one kind share one encoder, under the first one's name, unless
    ``encoders`` names a column: it then has its own.  A name in ``encoders``
    that is not an image or text column read is a ValueError.
    """
    columns = {mod.column: name for name, mod in modalities.items() if mod.kind in ENCODER_CLASSES}
    unknown = [c for c in (encoders or {}) if c not in columns]
    if unknown:
        raise ValueError(
            f"encoders names {unknown}, which are not image or text columns read from X "
            f"(those are {list(columns)}; see column_roles_)"
        )
    groups, shared = {}, {}
    for name, mod in modalities.items():
        if mod.kind not in ENCODER_CLASSES:
            continue
        if encoders and mod.column in encoders:
            groups[name] = (mod.kind, [name])
        elif mod.kind in shared:
            groups[shared[mod.kind]][1].append(name)
        else:
            shared[mod.kind] = name
            groups[name] = (mod.kind, [name])
    return groups


def has_several_pictures(values):
    """Whether an image column holds lists of paths (or ``";"``-separated paths) in some cell."""
    return any(is_list_cell(v) or (isinstance(v, str) and PICTURE_SEPARATOR in v) for v in values)


def _flat_pictures(values):
    """(one path per picture, as a Series named like ``values``; the row position of each)."""
    paths, rows = [], []
    for position, cell in enumerate(values):
        pictures = split_pictures(cell)
        paths.extend(pictures)
        rows.extend([position] * len(pictures))
    return pd.Series(paths, dtype=object, name=getattr(values, "name", None)), np.asarray(rows, dtype=np.int64)


def joined_values(modalities, names):
    """The raw values of several columns, one after the other (an encoder shared by them learns from all);
    the pictures of multi-picture cells one by one."""
    parts = [modalities[n].values for n in names]
    parts = [_flat_pictures(v)[0] if modalities[n].kind == "image" and has_several_pictures(v) else v
             for n, v in zip(names, parts)]
    if len(parts) == 1:
        return parts[0]
    return pd.concat([pd.Series(list(v), dtype=object) for v in parts], ignore_index=True)


def picture_inputs(branch, values):
    """The inputs of a multi-picture column: ``(items' inputs (N, P, ...), rows present (N,), items (N, P))``.

    Every picture is read on its own through ``branch``; ``P`` is the most
    pictures a row has here.  A row none of whose pictures could be read (or
    with none) is a missing modality.
    """
    paths, rows = _flat_pictures(values)
    n = len(values)
    counts = np.bincount(rows, minlength=n) if len(rows) else np.zeros(n, dtype=np.int64)
    width = max(1, int(counts.max()) if n else 1)
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    if len(paths):
        inputs, present = branch.inputs(paths)
        inputs = np.asarray(inputs)
    else:  # nothing to read: the shape of one item from a single missing picture
        inputs, present = branch.inputs(pd.Series([None], dtype=object, name=getattr(values, "name", None)))
        inputs, present = np.asarray(inputs)[:0], present[:0]
    padded = np.zeros((n, width, *inputs.shape[1:]), dtype=inputs.dtype)
    items = np.zeros((n, width), dtype=bool)
    padded[rows, slot] = inputs
    items[rows, slot] = present
    return padded, items.any(axis=1), items


def fit_tabular(name, mod):
    """A fitted numeric/categorical column, and the net branch ``(module or None, width)`` it feeds."""
    if mod.kind == "numeric":
        column = NumericColumn(mod.column).fit(mod.values)
        return column, (None, column.width)
    column = CategoricalColumn(mod.column).fit(mod.values)
    width = embedding_width(column.n_codes)
    return column, (CategoryEmbedding(column.n_codes, width), width)


def tabular_inputs(name, column, values):
    """The net's inputs for a fitted tabular column: ``{name: ..., [name_mask: ...]}``."""
    if isinstance(column, NumericColumn):
        return {name: column.transform(values)}
    codes, present = column.transform(values)
    return {name: codes, f"{name}_mask": present}


def tabular_state(column):
    """Plain state of a fitted tabular column."""
    kind = "numeric" if isinstance(column, NumericColumn) else "categorical"
    return {"kind": kind, "column": column.column, "state": column.state()}


def tabular_from_state(saved):
    """The fitted column and its net branch, from :func:`tabular_state`."""
    if saved["kind"] == "numeric":
        column = NumericColumn.from_state(saved["column"], saved["state"])
        return column, (None, column.width)
    if saved["kind"] != "categorical":
        raise ValueError(f"unknown tabular column kind {saved['kind']!r}")
    column = CategoricalColumn.from_state(saved["column"], saved["state"])
    width = embedding_width(column.n_codes)
    return column, (CategoryEmbedding(column.n_codes, width), width)
