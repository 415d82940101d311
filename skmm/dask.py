"""skmm on a Dask cluster: encoding the partitions of a dask DataFrame.

Grid searches run their fits on a cluster through joblib's Dask backend:
:func:`parallel_backend` is ``joblib.parallel_backend("dask")`` that also
turns Dask's errors about a worker that died (``FutureCancelledError``,
``KilledWorker``, a closed connection) into one :class:`WorkerLostError`
naming the workers lost and what to do.  Encoders given a ``cache_dir`` that
every worker sees compute each image's features once for the whole search
(see docs/scaling.md).

:func:`encode` maps a fitted :class:`~skmm.ImageEncoder` or
:class:`~skmm.TextEncoder` over the partitions of a dask DataFrame, for tables
too large for one machine's memory or time.  Dask is an optional dependency:
``pip install "skmm[dask]"``.
"""

import concurrent.futures
import contextlib

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from .encoders import ImageEncoder, TextEncoder
from .utils.optional import import_optional

__all__ = ["WorkerLostError", "encode", "parallel_backend"]


class WorkerLostError(RuntimeError):
    """A Dask worker died while it held work of skmm's, so the computation could not finish.

    Raised by :func:`parallel_backend` in place of Dask's own errors; the
    original is its ``__cause__``.

    Attributes
    ----------
    lost_workers : list of str
        The addresses of the workers that left the cluster during the
        computation (empty if the scheduler could not be asked).
    """

    def __init__(self, message, lost_workers=()):
        super().__init__(message)
        self.lost_workers = list(lost_workers)


def _lost_worker_errors():
    """Dask's exception classes that mean a worker (or the data it held) was lost."""
    import_optional("distributed", "dask", what="skmm.dask.parallel_backend")
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    return (concurrent.futures.CancelledError, KilledWorker, CommClosedError)


def _workers(client):
    try:
        return set(client.scheduler_info().get("workers", {}))
    except Exception:  # the scheduler itself is gone
        return None


@contextlib.contextmanager
def parallel_backend(client=None, *, retries=1, **backend_kwargs):
    """Run joblib on a Dask cluster (for a search), with a clear error when a worker dies.

    ``with skmm.dask.parallel_backend(client): search.fit(X, y)`` runs the
    fits of a scikit-learn search (or anything joblib parallelises) on the
    cluster, as ``joblib.parallel_backend("dask")`` does.  A fit whose worker
    dies is run again elsewhere (``retries``); when that cannot save the
    computation (the fits or the data scattered to a dead worker are lost,
    or a fit kills every worker it runs on), Dask's own error becomes a
    :class:`WorkerLostError` naming the workers that left the cluster.  The
    same holds for a dask computation (``encode(...).compute()``) run in the
    block.

    Parameters
    ----------
    client : distributed.Client, optional
        The cluster's client; default: the current one.
    retries : int, default=1
        How many times a batch of fits is resubmitted when its worker dies.
    **backend_kwargs
        Passed to ``joblib.parallel_backend("dask", ...)`` (``scatter``,
        ``wait_for_workers_timeout``, or ``client.submit`` options).

    Yields
    ------
    client : distributed.Client
        The client the fits run on.

    Raises
    ------
    WorkerLostError
        If a worker died and the computation could not finish without it.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import GridSearchCV
    >>> import distributed, numpy as np
    >>> from skmm.dask import parallel_backend
    >>> X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    >>> with distributed.Client(processes=False, n_workers=1, dashboard_address=None) as client:
    ...     with parallel_backend(client):
    ...         search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(X, y)
    >>> search.cv_results_["mean_test_score"].shape
    (2,)
    """
    joblib = import_optional("joblib", "dask", what="skmm.dask.parallel_backend")
    distributed = import_optional("distributed", "dask", what="skmm.dask.parallel_backend")
    lost_errors = _lost_worker_errors()
    if client is None:
        client = distributed.get_client()
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a non-negative int, got {retries!r}")
    before = _workers(client) or set()
    try:
        with joblib.parallel_backend("dask", client=client, retries=retries, **backend_kwargs):
            yield client
    except lost_errors as exc:
        after = _workers(client)
        lost = sorted(before - after) if after is not None else []
        who = (
            f"worker{'s' if len(lost) > 1 else ''} {', '.join(lost)} left the cluster"
            if lost
            else ("the scheduler could not be reached" if after is None else "a worker died or lost its data")
        )
        raise WorkerLostError(
            f"a Dask worker died during the computation ({who}); the work it held could not be "
            f"recovered ({type(exc).__name__}: {exc}). Run it again: encoders with a cache_dir every "
            "worker sees reuse the features already computed. If workers die for lack of memory, give "
            "them more (memory_limit=) or fewer threads each.",
            lost,
        ) from exc


def encode(ddf, encoder, column, *, prefix=None, keep=None, client=None):
    """Features of one column of a dask DataFrame, partition by partition, as a dask DataFrame.

    Each partition's rows go through ``encoder.transform`` on a worker; the
    result equals ``encoder.transform`` of the whole column in one process,
    row for row.  With a ``dask.distributed`` client the fitted encoder is
    scattered to every worker (not shipped with each partition; a worker may
    fetch it again if Dask's memory manager dropped its replica before the
    partitions came); without one, it is one task of the graph.  Call
    ``.to_parquet(path)`` on the result to write the features, or
    ``.compute()`` to gather them.

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
