"""Frozen features of a large training table kept in a file and read per batch.

A frozen branch hands the network its features, ``width`` float32 values a
row; held in memory they grow with the table (and the process-wide memory
cache keeps a second copy, up to its bound).  Past :func:`spill_bytes`
(64 MiB of features by default; the environment variable
``SKMM_SPILL_BYTES``, e.g. ``"1G"``, or ``"0"`` to always spill), ``fit``
encodes the column in chunks of about 16 MiB straight into a temporary file
and trains on a :class:`FeatureFile` over it: the training loader reads each
batch's rows with ``pread``, so the memory of a fit stays flat however many
rows it has.  The rows go through the encoder's disk cache (``cache_dir``)
as usual but not into the process-wide memory cache, which would otherwise
grow with them.  The file lives in the system's temporary directory
(``TMPDIR``) and is deleted when the fit no longer needs it.
"""

import copy
import os
import tempfile
import threading
import weakref

import numpy as np

from ..cache.eviction import parse_bytes

__all__ = ["DEFAULT_SPILL_BYTES", "SPILL_ENV", "FeatureFile", "frozen_training_features", "spill_bytes"]

#: Environment variable: the size of a modality's training features past which they go to a file.
SPILL_ENV = "SKMM_SPILL_BYTES"
#: Default of :data:`SPILL_ENV` (64 MiB).
DEFAULT_SPILL_BYTES = 64 << 20
_CHUNK_BYTES = 16 << 20


def spill_bytes():
    """The size of a modality's training features (bytes) past which ``fit`` keeps them in a file."""
    value = os.environ.get(SPILL_ENV, "").strip()
    return parse_bytes(value, SPILL_ENV) if value else DEFAULT_SPILL_BYTES


class FeatureFile:
    """float32 rows in a file, read when indexed; skorch's ``SliceDict`` holds it like an array.

    ``features[i]`` reads row ``i`` (a new writable array); indexing with an
    array or a slice gives another ``FeatureFile`` over those rows (skorch's
    validation split); ``np.asarray(features)`` reads them all.  Picklable
    (DataLoader workers started by spawn reopen the file).

    Parameters
    ----------
    path : str
        The file: ``n`` rows of ``width`` float32 values, row after row.
    n, width : int
    owner : bool, default=False
        Delete the file when this object (and every view of it) is gone.
    """

    dtype = np.dtype(np.float32)
    ndim = 2

    def __init__(self, path, n, width, *, owner=False):
        self.path, self.width = path, int(width)
        self.rows = np.arange(int(n))
        self._root = None
        self._fd = self._pid = None
        self._fd_lock = threading.Lock()
        if owner:
            weakref.finalize(self, _remove, path)

    @property
    def shape(self):
        return (len(self.rows), self.width)

    def __len__(self):
        return len(self.rows)

    def __getstate__(self):
        return {"path": self.path, "width": self.width, "rows": self.rows, "_root": self._root}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._fd = self._pid = None
        self._fd_lock = threading.Lock()

    def _descriptor(self):
        # One descriptor per process: pread needs no shared offset, and a forked loader worker opens its own.
        with self._fd_lock:
            if self._fd is None or self._pid != os.getpid():
                self._fd, self._pid = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0)), os.getpid()
                weakref.finalize(self, _close, self._fd)
            return self._fd

    def _read(self, row):
        out = np.empty(self.width, dtype=np.float32)
        nbytes, offset = out.nbytes, int(row) * out.nbytes
        if hasattr(os, "preadv"):
            got = os.preadv(self._descriptor(), [out], offset)
        else:  # no preadv (Windows): a read at an offset under the lock
            with self._fd_lock, open(self.path, "rb") as f:
                f.seek(offset)
                got = f.readinto(memoryview(out).cast("B"))
        if got != nbytes:
            raise OSError(f"the training features file {self.path!r} is shorter than expected (row {row})")
        return out

    def __getitem__(self, i):
        if isinstance(i, (int, np.integer)):
            return self._read(self.rows[i])
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.rows = self.rows[i]
        twin._root = self._root or self  # keeps the owner, hence the file, alive
        twin._fd_lock = threading.Lock()
        twin._fd = twin._pid = None
        return twin

    def __array__(self, dtype=None, copy=None):
        out = np.empty(self.shape, dtype=np.float32)
        for j, row in enumerate(self.rows):
            out[j] = self._read(row)
        return out if dtype is None else out.astype(dtype, copy=False)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _close(fd):
    try:
        os.close(fd)
    except OSError:
        pass


def _rows(X, start, stop):
    return X.iloc[start:stop] if hasattr(X, "iloc") else X[start:stop]


def frozen_training_features(encoder, X, width):
    """A frozen encoder's features of ``X`` for training, and a bool array of the rows that have an input.

    The features are an array, or a :class:`FeatureFile` when they would
    take more than :func:`spill_bytes`.
    """
    n = len(X)
    if n * width * 4 <= spill_bytes():
        return encoder.encode(X)
    if getattr(encoder, "cache_dir", None) is None and getattr(encoder, "cache", False):
        encoder = copy.copy(encoder)  # shallow: the same fitted backbone
        encoder.cache = False  # the memory cache would hold every row again
    fd, path = tempfile.mkstemp(prefix="skmm-features-", suffix=".f32")
    present = np.empty(n, dtype=bool)
    chunk = max(1, _CHUNK_BYTES // (4 * width))
    try:
        with os.fdopen(fd, "wb") as f:
            for start in range(0, n, chunk):
                features, ok = encoder.encode(_rows(X, start, start + chunk))
                features = np.ascontiguousarray(features, dtype=np.float32)
                if features.shape != (len(ok), width):
                    raise ValueError(f"the encoder gave features of shape {features.shape}, expected (n, {width})")
                f.write(features.tobytes())
                present[start : start + len(ok)] = ok
    except BaseException:
        _remove(path)
        raise
    return FeatureFile(path, n, width, owner=True), present
