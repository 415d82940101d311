"""The model directory: ``model.json``, ``arrays.safetensors``, ``weights.safetensors``."""

import json
import os
import stat
import tempfile
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch

from .objects import Reader, Writer

__all__ = ["FORMAT", "FORMAT_VERSION", "load", "save"]

FORMAT = "skmm.model"
FORMAT_VERSION = 1
MODEL, ARRAYS, WEIGHTS = "model.json", "arrays.safetensors", "weights.safetensors"


def save(model, directory):
    """Save a fitted model to ``directory`` as data only: JSON and safetensors, no pickle.

    Parameters
    ----------
    model : FusionClassifier, FusionRegressor, ImageEncoder, TextEncoder, or a Pipeline / ColumnTransformer / FeatureUnion of them
        Fitted or not.  Pipelines may also hold the scikit-learn steps listed in
        docs/persistence.md (scalers, PCA, TruncatedSVD, text vectorizers,
        LogisticRegression, FunctionTransformer without functions).
    directory : str or path
        Created if missing; the three files are replaced if present, other files
        are left alone.

    Returns
    -------
    pathlib.Path
        ``directory``.

    Raises
    ------
    TypeError
        Naming the parameter or attribute that is not plain data (a callback, a
        function, a RandomState, an estimator of another class), before anything
        is written.

    Notes
    -----
    The directory holds ``model.json`` (format version, classes, parameters and
    fitted state as plain data), ``arrays.safetensors`` (numeric arrays: classes,
    scalers, vectorizer and SVD state) and ``weights.safetensors`` (each module's
    state dict: the fusion network, frozen encoders' backbones).  Pretrained
    backbones named by a path or a library name are rebuilt from that name by
    :func:`load`, so it must be available there as it was at fit; the saved
    weights then replace theirs.

    Examples
    --------
    >>> import tempfile, skmm
    >>> enc = skmm.TextEncoder("tfidf").fit(["a red ball", "a blue box"])
    >>> path = skmm.save(enc, tempfile.mkdtemp())
    >>> skmm.load(path).transform(["red box"]).shape
    (1, 5)
    """
    from safetensors.numpy import save_file as save_arrays
    from safetensors.torch import save_file as save_weights

    if getattr(model, "module_in_network_", False):
        raise TypeError(
            "this encoder reads inputs for a fusion network that owns its module; save the classifier "
            "(or its encoders_[name], which holds the trained module)"
        )
    from .. import __version__  # skmm/__init__.py sets it after importing this module

    writer = Writer()
    root = writer.encode(model, type(model).__name__)
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": {"skmm": __version__, "scikit-learn": sklearn.__version__, "torch": torch.__version__,
                     "numpy": np.__version__},
        "model": root,
    }
    text = json.dumps(document, indent=1, allow_nan=True)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # model.json last: an interrupted save leaves no model.json that names weights it lacks
    _write(directory / WEIGHTS, lambda path: save_weights(writer.tensors, path))
    _write(directory / ARRAYS, lambda path: save_arrays(writer.encode.arrays, path))
    _write(directory / MODEL, lambda path: Path(path).write_text(text, encoding="utf-8"))
    return directory


def load(directory, *, device=None):
    """Load a model :func:`save` wrote, without unpickling anything.

    Every object is rebuilt by calling the constructor of a class skmm knows with
    the saved parameters; backbones are rebuilt by their registry factories; the
    weights are read from safetensors files and must fit the rebuilt modules
    exactly.

    Parameters
    ----------
    directory : str or path
        A directory written by :func:`save`.
    device : str or None, default=None
        Where the model runs ("cpu", "cuda", ...).  None keeps the device each
        part was saved on, falling back to the CPU (with a warning) when that was
        CUDA and this machine has none.

    Returns
    -------
    estimator
        The model, fitted as it was saved.

    Raises
    ------
    ValueError
        When the files are missing, not regular files, from a newer format, name a
        class skmm does not build, or hold weights that do not fit the model.
    """
    from safetensors.numpy import load_file as load_arrays
    from safetensors.torch import load_file as load_weights

    directory = Path(directory)
    for name in (MODEL, ARRAYS, WEIGHTS):
        _check_regular(directory / name)
    try:
        document = json.loads((directory / MODEL).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{directory / MODEL} is not valid JSON: {exc}") from None
    if type(document) is not dict or document.get("format") != FORMAT or type(document.get("model")) is not dict \
            or set(document["model"]) != {"__object__"}:
        raise ValueError(f"{directory / MODEL} is not a model file written by skmm.save")
    version = document.get("format_version")
    if type(version) is not int or version > FORMAT_VERSION or version < 1:
        raise ValueError(
            f"{directory / MODEL} has format version {version!r}; this skmm reads versions 1 to {FORMAT_VERSION} "
            "(upgrade skmm to load it)"
        )
    try:
        arrays = load_arrays(str(directory / ARRAYS))
        tensors = load_weights(str(directory / WEIGHTS), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{directory}: a safetensors file cannot be read ({type(exc).__name__}: {exc})") from None
    reader = Reader(arrays, tensors, device)
    model = reader.decode(document["model"], "model")
    unused = sorted(set(arrays) - reader.decode.used)[:8] + sorted(set(tensors) - reader.used)[:8]
    if unused:
        raise ValueError(f"{directory}: the safetensors files hold entries model.json does not use: {unused}")
    saved = (document.get("versions") or {}).get("scikit-learn")
    if reader.sklearn and saved != sklearn.__version__:
        warnings.warn(
            f"this model holds scikit-learn objects saved with scikit-learn {saved} and this is "
            f"{sklearn.__version__}: their attributes may differ between versions; refit if predictions look wrong",
            UserWarning,
            stacklevel=2,
        )
    return model


def _check_regular(path):
    # A FIFO or a device would block or never end: refuse anything but a regular file before opening it.
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ValueError(f"{path} is missing: {path.parent} is not a complete skmm.save directory") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path} is not a regular file")


def _write(path, write):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
