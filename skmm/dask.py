"""skmm on a Dask cluster: encoding the partitions of a dask DataFrame.

Grid searches need nothing from this module: scikit-learn's ``GridSearchCV``
runs its fits on a cluster through joblib's Dask backend
(``with joblib.parallel_backend("dask"): search.fit(X, y)``), and encoders
given a ``cache_dir`` that every worker mounts compute each image's features
once for the whole search (see docs/scaling.md).

:func:`encode` maps a fitted :class:`~skmm.ImageEncoder` or
:class:`~skmm.TextEncoder` over the partitions of a dask DataFrame, for tables
too large for one machine's memory or time.  Dask is an optional dependency:
``pip install "skmm[dask]"``.
"""

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from .encoders import ImageEncoder, TextEncoder
from .utils.optional import import_optional

__all__ = ["encode"]


def encode(ddf, encoder, column, *, prefix=None, keep=None, client=None):
    """Features of one column of a dask DataFrame, partition by partition, as a dask DataFrame.

    Each partition's rows go through ``encoder.transform`` on a worker; the
    result equals ``encoder.transform`` of the whole column in one process,
    row for row.  With a ``dask.distributed`` client the fitted encoder is
    scattered to every worker once (not shipped with each partition);
    without one, it is one task of the graph.  Call ``.to_parquet(path)`` on
    the result to write the features, or ``.compute()`` to gather them.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        The table; its index labels name the rows in error messages.
    encoder : ImageEncoder or TextEncoder
        A fitted encoder.  Its ``on_error`` decides what an unreadable image
        does: "raise" fails the computation with an error naming the row (its
        index label), the column and the file; "warn"/"ignore" give that row
        zero features.  Its ``cache_dir``, on storage every worker mounts,
        lets workers reuse each other's features.
    column : str
        The column of ``ddf`` to encode.
    prefix : str, optional
        Name the feature columns ``<prefix>__<feature>``: with ``"image"``
        and ``"text"`` the result, written to Parquet and read back, is a
        table of encoded blocks :class:`~skmm.FusionClassifier` trains on
        (the layout a ColumnTransformer's pandas output has).
    keep : list of str, optional
        Columns of ``ddf`` to carry next to the features (ids, labels).
    client : distributed.Client, optional
        The client to scatter the encoder with; default: the current client
        if there is one.

    Returns
    -------
    dask.dataframe.DataFrame
        ``keep`` columns, then one float32 column per feature, named by
        ``encoder.get_feature_names_out()`` (after ``prefix``); the index of
        ``ddf``.

    Raises
    ------
    TypeError
        If ``ddf`` is not a dask DataFrame or ``encoder`` not an skmm encoder.
    ValueError
        If the encoder is not fitted, or ``column`` or a ``keep`` column is
        not in ``ddf``.

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> from skmm import TextEncoder
    >>> from skmm.dask import encode
    >>> from skmm.datasets import make_shapes
    >>> df = make_shapes(20, random_state=0)
    >>> enc = TextEncoder("tfidf", dim=4).fit(df["caption"])
    >>> features = encode(dd.from_pandas(df, npartitions=3), enc, "caption", keep=["label"])
    >>> table = features.compute()
    >>> len(table), table.columns[0], table.shape[1] == 1 + enc.get_feature_names_out().size
    (20, 'label', True)
    """
    dd = import_optional("dask.dataframe", "dask", what="skmm.dask.encode")
    if not isinstance(ddf, dd.DataFrame):
        raise TypeError(f"ddf must be a dask DataFrame, got {type(ddf).__name__}")
    if not isinstance(encoder, (ImageEncoder, TextEncoder)):
        raise TypeError(f"encoder must be a fitted ImageEncoder or TextEncoder, got {type(encoder).__name__}")
    check_is_fitted(encoder)
    keep = [] if keep is None else list(keep)
    for name, wanted in [("column", column), *(("keep", k) for k in keep)]:
        if wanted not in ddf.columns:
            raise ValueError(f"{name}: {wanted!r} is not a column of ddf; its columns are {list(ddf.columns)}")
    features = [str(f) for f in encoder.get_feature_names_out()]
    if prefix is not None:
        if not isinstance(prefix, str) or not prefix:
            raise TypeError(f"prefix must be a non-empty str or None, got {prefix!r}")
        features = [f"{prefix}__{f}" for f in features]
    clash = sorted(set(features) & set(keep))
    if clash:
        raise ValueError(f"keep: the columns {clash} have the names of the encoder's features")
    meta = pd.DataFrame(
        {**{k: ddf._meta[k] for k in keep}, **{f: np.empty(0, dtype=np.float32) for f in features}},
        index=ddf._meta.index,
    )
    payload = _scattered(encoder, client)
    return ddf.map_partitions(_encode_partition, payload, column, keep, features, meta=meta)


def _scattered(encoder, client):
    """The encoder as a graph argument: a future on every worker, or one delayed task."""
    if client is None:
        distributed = import_optional("distributed", "dask", what="skmm.dask.encode")
        try:
            client = distributed.get_client()
        except ValueError:  # no client: the local schedulers
            client = None
    if client is not None:
        return client.scatter(encoder, broadcast=True, hash=False)
    dask = import_optional("dask", "dask", what="skmm.dask.encode")
    return dask.delayed(encoder, pure=False)


def _encode_partition(part, encoder, column, keep, features):
    if len(part) == 0:
        values = np.empty((0, len(features)), dtype=np.float32)
    else:
        names = getattr(encoder, "feature_names_in_", None)
        # the column under the name the encoder was fitted with (a Series if it had none)
        values = encoder.transform(part[column] if names is None else part[[column]].set_axis(names, axis=1))
    out = pd.DataFrame(values, index=part.index, columns=features)
    if keep:
        out = pd.concat([part[keep], out], axis=1)
    return out
