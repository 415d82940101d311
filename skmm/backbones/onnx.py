"""ONNX Runtime as the inference backend of a frozen image encoder (``backend="onnxruntime"``).

The encoder's module (normalisation + backbone, uint8 images in, features out) is
exported once with :func:`torch.onnx.export` and run by ONNX Runtime's CPU
kernels, which on this project's 2-core CPU ran EfficientNet-Lite0 in float32
in 3.5 times fewer CPU seconds than PyTorch (benchmarks/backends.py), with
features within a cosine of 1e-6 of PyTorch's.  The exported graph is kept by the encoder's
fingerprint: in memory for the process (every fold and grid point of a search
reuses it) and, when the encoder has a ``cache_dir``, as a file under
``<cache_dir>/onnx`` that other processes and later sessions load instead of
exporting again.  Encoders whose features are not reproducible (random weights
without a ``random_state``: no fingerprint) export every time.

``backend="onnxruntime-int8"`` (text encoders) also quantizes the exported
graph's weights to int8 with ONNX Runtime's dynamic quantization
(:func:`onnxruntime.quantization.quantize_dynamic`, per channel): all-MiniLM-L6-v2's
embeddings of 256 clipart texts had a cosine to float32 PyTorch's of 0.991
median, 0.986 at the 5th percentile and 0.965 at worst (benchmarks/backends.py);
see docs/performance.md.

Needs ``pip install "skmm[onnx]"`` (onnxruntime, onnx).
"""

import hashlib
import io
import logging
import os
import tempfile
import threading
import warnings

import numpy as np
import torch

from ..utils.optional import import_optional

__all__ = ["BACKENDS", "OnnxRuntimeModule", "check_backend", "onnx_module"]

BACKENDS = ("torch", "onnxruntime", "onnxruntime-int8")

# fingerprint -> exported model bytes, for this process
_EXPORTED = {}
_LOCK = threading.Lock()
_OPSET = 17


def check_backend(backend, allowed=BACKENDS):
    """Check an encoder's ``backend`` parameter: one of ``allowed``.

    Parameters
    ----------
    backend : str
        The value to check.
    allowed : tuple of str, default=BACKENDS
        The values this encoder takes.

    Returns
    -------
    str
        ``backend`` itself.

    Raises
    ------
    ValueError
        For anything else, naming the parameter and the valid values.

    Examples
    --------
    >>> from skmm.backbones.onnx import check_backend
    >>> check_backend("onnxruntime")
    'onnxruntime'
    """
    if not isinstance(backend, str) or backend not in allowed:
        raise ValueError(f"backend must be one of {list(allowed)}, got {backend!r}")
    return backend


def onnx_module(module, example, *, fingerprint=None, cache_dir=None, dynamic_axes=None, quantize=False,
                prepare=None):
    """Export a torch module to ONNX once per fingerprint, as an :class:`OnnxRuntimeModule`.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a batch (first axis: rows, of any size) to a (rows, features) tensor.
    example : Tensor
        An input of the shape and dtype ``module`` takes (one row is enough).
    fingerprint : str or None
        What identifies the module's weights and preprocessing; None: export
        every time.
    cache_dir : str or None
        Keep the exported graph as a file under ``<cache_dir>/onnx``.
    dynamic_axes : dict or None
        Input axes besides the first whose size may vary, e.g. ``{2: "tokens"}``.
    quantize : bool, default=False
        Quantize the weights to int8 (ONNX Runtime's dynamic quantization, per channel).
    prepare : callable or None
        Maps a batch (an array) to the exported module's input, before each run.

    Returns
    -------
    OnnxRuntimeModule
        The module, run by ONNX Runtime.
    """
    ort = import_optional("onnxruntime", "onnx", what='backend="onnxruntime"')
    key = None if fingerprint is None else hashlib.sha256(
        f"{fingerprint}|torch={torch.__version__}|opset={_OPSET}|{tuple(example.shape[1:])}|{example.dtype}"
        f"|dynamic={sorted((dynamic_axes or {}).items())}|int8={bool(quantize)}".encode()
    ).hexdigest()
    path = None if key is None or cache_dir is None else os.path.join(os.fspath(cache_dir), "onnx", f"{key}.onnx")
    with _LOCK:
        data = _EXPORTED.get(key) if key is not None else None
    if data is None and path is not None and os.path.exists(path):
        with open(path, "rb") as fh:
            data = fh.read()
    if data is None:
        data = _export(module, example, dynamic_axes)
        if quantize:
            data = _quantize(data)
        if path is not None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)  # atomic: a reader never sees half a file
    if key is not None:
        with _LOCK:
            _EXPORTED[key] = data
    return OnnxRuntimeModule(data, ort, prepare=prepare)


def _export(module, example, dynamic_axes=None):
    buffer = io.BytesIO()
    was_training = module.training
    module.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's notes on tracing
            torch.onnx.export(
                module, (example,), buffer, dynamo=False, input_names=["x"], output_names=["features"],
                dynamic_axes={"x": {0: "rows", **(dynamic_axes or {})}, "features": {0: "rows"}},
                opset_version=_OPSET,
            )
    finally:
        module.train(was_training)
    return buffer.getvalue()


def _quantize(data):
    """``data`` (an ONNX model) with int8 weights: ONNX Runtime's dynamic quantization, per channel.

    Per-channel scales kept MiniLM's embeddings of 200 clipart texts within a
    cosine of 0.98 of float32's, against 0.92 with one scale per tensor.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        source, target = os.path.join(tmp, "model.onnx"), os.path.join(tmp, "int8.onnx")
        with open(source, "wb") as fh:
            fh.write(data)
        quiet = _DropPreprocessingAdvice()
        logging.getLogger().addFilter(quiet)  # it advises, on the root logger, a step dynamic quantization skips
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.getLogger().removeFilter(quiet)
        with open(target, "rb") as fh:
            return fh.read()


class _DropPreprocessingAdvice(logging.Filter):
    def filter(self, record):
        return "pre-processing before quantization" not in record.getMessage()


class OnnxRuntimeModule:
    """An exported module run by ONNX Runtime on the CPU, one session per thread count.

    ONNX Runtime fixes a session's threads when it is made, while skmm picks a
    forward pass's threads from the cores free at that moment
    (:func:`skmm.utils.threads.free_cores`): each count gets its own session,
    made on first use.  Its threads sleep rather than spin when idle
    (``session.intra_op.allow_spinning=0``), as torch's do under
    ``OMP_WAIT_POLICY=PASSIVE``.

    Parameters
    ----------
    data : bytes
        The ONNX model.
    ort : module
        The imported ``onnxruntime``.
    prepare : callable or None, default=None
        Maps a batch (an array) to the model's input before each run.
    """

    def __init__(self, data, ort, *, prepare=None):
        self.data = data
        self._ort = ort
        self.prepare = prepare
        self._sessions = {}
        self._lock = threading.Lock()

    def session(self, threads):
        """Return the inference session that runs on ``threads`` intra-op threads (made on first use).

        Parameters
        ----------
        threads : int
            Intra-op threads.

        Returns
        -------
        onnxruntime.InferenceSession
            The session.
        """
        threads = max(1, int(threads))
        with self._lock:
            session = self._sessions.get(threads)
            if session is None:
                options = self._ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session = self._ort.InferenceSession(self.data, options, providers=["CPUExecutionProvider"])
                self._sessions[threads] = session
        return session

    def __call__(self, x, *, threads=1):
        """Features of the batch ``x`` (a tensor or an array), as a float32 array."""
        array = x.numpy() if torch.is_tensor(x) else np.asarray(x)
        if self.prepare is not None:
            array = self.prepare(array)
        return self.session(threads).run(None, {"x": np.ascontiguousarray(array)})[0].astype(np.float32, copy=False)
