"""What runs a frozen encoder's module: torch, or ONNX Runtime (``backend="onnxruntime"``).

See :mod:`skmm.backbones.onnx` for the export and its cache.
"""

import threading

from ..backbones.onnx import onnx_module
from ..utils.device import uses_bf16

__all__ = ["check_backend_device", "frozen_backend", "uses_backend"]

_LOCK = threading.Lock()


def uses_backend(encoder):
    """Whether something else than torch runs ``encoder``'s module (its ``backend``).

    Parameters
    ----------
    encoder : BaseEncoder
        An encoder.

    Returns
    -------
    bool
        True for ``backend="onnxruntime"`` and ``"onnxruntime-int8"``.
    """
    return getattr(encoder, "backend", "torch") != "torch"


def check_backend_device(encoder):
    """Raise a ValueError when ``encoder``'s backend cannot run on its device and precision.

    Parameters
    ----------
    encoder : BaseEncoder
        An encoder whose ``device_`` is resolved.
    """
    backend = getattr(encoder, "backend", "torch")
    if backend != "torch" and (encoder.device_ != "cpu" or uses_bf16(encoder.device_, encoder.precision)):
        raise ValueError(
            f"backend={backend!r} runs float32 on the CPU; {type(encoder).__name__} has device="
            f"{encoder.device_!r} and precision={encoder.precision!r} (use backend='torch' for those)"
        )


def frozen_backend(encoder):
    """Return the module that runs fitted ``encoder``'s frozen module in place of torch, made on first use.

    Made in ``fit`` (or on load) for an encoder that is frozen by its settings,
    and on the first frozen forward pass otherwise (a randomly initialised
    backbone, trainable inside a FusionClassifier, but frozen in a standalone
    ``transform``): a module a fusion network trains is never exported.

    Parameters
    ----------
    encoder : BaseEncoder
        A fitted encoder whose ``backend`` is not "torch".

    Returns
    -------
    OnnxRuntimeModule
        The exported module (kept on the encoder).

    Raises
    ------
    ValueError
        When the module cannot be exported (a GRU over packed sequences, say),
        naming the encoder's backbone and ``backend``.
    """
    with _LOCK:
        backend = getattr(encoder, "_backend", None)
        if backend is None:
            check_backend_device(encoder)
            trusted = getattr(encoder, "_backend_trusted", True)
            module, example, dynamic_axes, prepare = encoder._export_module()
            try:
                backend = onnx_module(
                    module, example, fingerprint=encoder.fingerprint() if trusted else None,
                    cache_dir=encoder.cache_dir, dynamic_axes=dynamic_axes,
                    quantize=encoder.backend == "onnxruntime-int8", prepare=prepare,
                )
            except ImportError:
                raise
            except Exception as exc:  # noqa: BLE001 - torch.onnx's errors name no parameter
                raise ValueError(
                    f"backend={encoder.backend!r}: {type(encoder).__name__}(backbone={encoder.backbone!r}) could not "
                    f"be exported to ONNX ({type(exc).__name__}: {exc}); use backend='torch' for it"
                ) from exc
            encoder._backend = backend
    return backend
