"""The ``get_or_compute`` protocol and the bookkeeping shared by every cache.

A cache stores rows in *spaces*: a space is a fingerprint and a row dtype,
so rows of one dtype never answer a request for another.  Subclasses store
and look up rows by ``(space, key)``; this module decides which rows to
compute, checks what ``compute`` returns and assembles the answer.
"""

import contextlib
import os
import threading
import weakref

import numpy as np

__all__ = ["BaseCache", "DTYPES", "check_dtype"]

#: Row dtypes a cache stores (little-endian float32, and uint8 for pixels).
DTYPES = (np.dtype("<f4"), np.dtype("u1"))
_DTYPE_NAMES = {"float32": DTYPES[0], "uint8": DTYPES[1]}

# Every cache, so that a forked child gets fresh locks (a lock held by another
# thread at fork time would otherwise stay locked forever in the child).
_ALL_CACHES = weakref.WeakSet()


def check_dtype(dtype):
    """The row dtype for ``dtype`` ("float32" or "uint8", or the numpy dtypes), else a ValueError."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is not None:
        resolved = _DTYPE_NAMES.get(resolved.name)
    if resolved is None or isinstance(dtype, bool):
        raise ValueError(f"dtype must be 'float32' or 'uint8', got {dtype!r}")
    return resolved


class BaseCache:
    """Counting and the ``get_or_compute`` protocol shared by both caches."""

    def __init__(self):
        self._reset_locks()
        self.hits = 0
        self.misses = 0
        _ALL_CACHES.add(self)

    def _reset_locks(self):
        self._lock = threading.RLock()

    def reset_stats(self):
        """Set :attr:`hits` and :attr:`misses` (and any other counter) to zero."""
        with self._lock:
            self.hits = 0
            self.misses = 0

    def get_or_compute(self, fingerprint, keys, compute, *, dtype="float32", return_present=False):
        """Return the rows for ``keys``, computing only those not cached.

        Parameters
        ----------
        fingerprint : str
            Identity of the encoder's output function (backbone, weights,
            preprocessing, fitted state).
        keys : sequence of str or None
            One key per row, from :func:`image_key` or :func:`text_key`.
            ``None`` rows are always computed and never stored; a key that
            occurs several times is computed once.
        compute : callable
            ``compute(positions)`` receives the ascending list of positions
            (indices into ``keys``) of every row to compute and returns the
            rows in that order: an array of shape ``(len(positions), dim)``,
            or a pair ``(rows, present)`` where ``present`` is a boolean
            array of length ``len(positions)`` that is False for each input
            that could not be encoded (an unreadable file).  Rows that are
            not present are returned but never stored, so the next call
            tries (and reports) them again; a row holding NaN counts as not
            present too.  ``compute`` is called at most once
            per call, and not at all when everything is cached.
        dtype : {"float32", "uint8"}, default="float32"
            The dtype rows are stored and returned in.  Rows of each dtype
            are cached apart.  For uint8, ``compute`` must return whole
            numbers in [0, 255] for every present row; rows that are not
            present come back as zeros.
        return_present : bool, default=False
            Also return which rows are present (the only way to tell for
            uint8, which has no NaN).

        Returns
        -------
        out : ndarray of shape (len(keys), dim)
            A new array of ``dtype`` the caller may modify; rows in the order
            of ``keys``.  With no keys, ``dim`` is the one last seen for
            ``fingerprint``, or 0.
        present : ndarray of shape (len(keys),), dtype bool
            Only with ``return_present=True``: False for the rows ``compute``
            said were not present.

        Raises
        ------
        ValueError
            If ``compute`` returns anything but a 2-D numeric array with
            ``len(positions)`` rows (and a matching mask), values that do
            not fit ``dtype``, or rows whose length differs from the rows
            cached for ``fingerprint``.

        Examples
        --------
        >>> import numpy as np
        >>> from skmm.cache import MemoryCache, text_key
        >>> cache = MemoryCache()
        >>> texts = ["a", "b", "a"]
        >>> def compute(positions):
        ...     return np.array([[len(texts[i]), ord(texts[i])] for i in positions])
        >>> cache.get_or_compute("demo", [text_key(t) for t in texts], compute)
        array([[ 1., 97.],
               [ 1., 98.],
               [ 1., 97.]], dtype=float32)
        >>> cache.hits, cache.misses
        (1, 2)
        >>> def pixels(positions):  # uint8 rows, the second one unreadable
        ...     return np.full((len(positions), 3), 200), np.arange(len(positions)) != 1
        >>> cache.get_or_compute("px", ["t:a", "t:b"], pixels, dtype="uint8", return_present=True)
        (array([[200, 200, 200],
               [  0,   0,   0]], dtype=uint8), array([ True, False]))
        """
        if not isinstance(fingerprint, str):
            raise TypeError(f"fingerprint must be a str, got {type(fingerprint).__name__}")
        dtype = check_dtype(dtype)
        space = (fingerprint, dtype)
        keys = list(keys)
        n = len(keys)
        # Unique cacheable keys, and for each row where its value comes from.
        unique = {}
        slot = [None] * n
        for i, key in enumerate(keys):
            if key is None:
                continue
            if not isinstance(key, str):
                raise TypeError(
                    f"cache keys must be str or None, got {type(key).__name__} at position {i}"
                )
            slot[i] = unique.setdefault(key, len(unique))
        unique_keys = list(unique)
        found = self._lookup(space, unique_keys)
        if any(row is None for row in found):
            # Another process may be computing the same rows (the workers of a search):
            # wait for it, read what it stored, and compute only what is still missing.
            with self._compute_lock(space):
                missing = [u for u, row in enumerate(found) if row is None]
                if missing:
                    for u, row in zip(missing, self._lookup_again(space, [unique_keys[u] for u in missing])):
                        found[u] = row
                return self._compute_missing(space, keys, slot, unique_keys, found, compute, return_present)
        return self._compute_missing(space, keys, slot, unique_keys, found, compute, return_present)

    def _lookup_again(self, space, keys):
        """:meth:`_lookup` of rows missed a moment ago (damaged files are not counted twice)."""
        return self._lookup(space, keys)

    def _compute_lock(self, space):
        """A context held while the missing rows of ``space`` are computed and stored."""
        return contextlib.nullcontext()

    def _compute_missing(self, space, keys, slot, unique_keys, found, compute, return_present):
        dtype = space[1]
        n = len(keys)
        positions, computed_for = [], {}
        for i in range(n):
            u = slot[i]
            if u is None:
                positions.append(i)
            elif found[u] is None and u not in computed_for:
                computed_for[u] = len(positions)
                positions.append(i)

        dim = next((row.shape[0] for row in found if row is not None), None)
        if dim is None:
            dim = self._known_dim(space)
        new_rows, new_present = [], []
        if positions:
            computed, new_present = _check_computed(compute(list(positions)), len(positions), dim, dtype)
            dim = computed.shape[1]
            # Copies, so that an evicted row frees its memory and callers cannot
            # reach a stored row through the array they get back.
            new_rows = [row.copy() for row in computed]
            for row in new_rows:
                row.flags.writeable = False
            stored = [(unique_keys[u], new_rows[j]) for u, j in computed_for.items() if new_present[j]]
            if stored:
                self._store(space, stored)
            else:
                self._remember_dim(space, dim)
        computed_at = dict(zip(positions, range(len(positions))))
        rows = []
        present = np.ones(n, dtype=bool)
        for i in range(n):
            u = slot[i]
            if u is not None and found[u] is not None:
                rows.append(found[u])
                continue
            j = computed_at[i] if u is None else computed_for[u]
            rows.append(new_rows[j])
            present[i] = new_present[j]
        with self._lock:
            self.misses += len(positions)
            self.hits += n - len(positions)
        out = np.stack(rows) if rows else np.empty((0, dim or 0), dtype=dtype)
        return (out, present) if return_present else out

    # Subclasses fill these in; ``space`` is a (fingerprint, dtype) pair.
    def _lookup(self, space, keys):  # -> list of rows or None, one per key
        raise NotImplementedError

    def _store(self, space, items):  # items: list of (key, row)
        raise NotImplementedError

    def _known_dim(self, space):
        raise NotImplementedError

    def _remember_dim(self, space, dim):
        raise NotImplementedError


def _check_computed(result, n_rows, dim, dtype):
    """``compute``'s answer as (contiguous rows of ``dtype``, present mask), or a ValueError."""
    present = None
    if isinstance(result, tuple):
        if len(result) != 2:
            raise ValueError(
                f"compute must return an array or a pair (rows, present), got a tuple of {len(result)}"
            )
        result, present = result
    try:
        array = np.asarray(result)
    except Exception as exc:  # e.g. a tensor on a GPU
        raise ValueError(
            f"compute must return a numpy array, got {type(result).__name__}: {exc}"
        ) from exc
    if array.ndim != 2 or array.shape[0] != n_rows:
        raise ValueError(
            f"compute must return an array of shape ({n_rows}, dim) for the "
            f"{n_rows} positions it was given, got shape {array.shape}"
        )
    if not (
        np.issubdtype(array.dtype, np.floating)
        or np.issubdtype(array.dtype, np.integer)
        or array.dtype == bool
    ):
        raise ValueError(f"compute must return numbers, got dtype {array.dtype}")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(
            f"compute returned rows of length {array.shape[1]} but the cached rows "
            f"for this fingerprint have length {dim}; the encoder's fingerprint must "
            "change whenever its output changes (clear the cache to start afresh)"
        )
    if present is None:
        present = np.ones(n_rows, dtype=bool)
    else:
        present = np.asarray(present)
        if present.dtype != bool or present.shape != (n_rows,):
            raise ValueError(
                f"compute's present mask must be a bool array of shape ({n_rows},), "
                f"got dtype {present.dtype} and shape {present.shape}"
            )
        present = present.copy()
    if array.dtype.kind == "f" and array.size:
        # A NaN row marks an input that could not be encoded (on_error="warn").
        present &= ~np.isnan(array).any(axis=1)
    if dtype.kind == "f":
        return np.ascontiguousarray(array, dtype=dtype), present
    return _to_uint8(array, present), present


def _to_uint8(array, present):
    if array.dtype == np.uint8:
        out = np.array(array, order="C")
    else:
        kept = array[present]
        if kept.size and array.dtype != bool:
            ok = np.isfinite(kept).all() and kept.min() >= 0 and kept.max() <= 255
            if ok and array.dtype.kind == "f":
                ok = bool((kept == np.round(kept)).all())
            if not ok:
                raise ValueError(
                    "compute must return whole numbers in [0, 255] for dtype uint8 "
                    f"(got values from {kept.min()} to {kept.max()}, dtype {array.dtype})"
                )
        out = np.zeros(array.shape, dtype=np.uint8)
        out[present] = kept
    out[~present] = 0
    return out


def _after_fork_in_child():
    for cache in list(_ALL_CACHES):
        cache._reset_locks()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
