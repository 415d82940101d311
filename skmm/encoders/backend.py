"""What runs a frozen encoder's module: torch, or ONNX Runtime (``backend="onnxruntime"``).

See :mod:`skmm.backbones.onnx` for the export and its cache.
"""

from ..backbones.onnx import onnx_module
from ..utils.device import uses_bf16

__all__ = ["check_backend_device", "frozen_backend"]


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


def frozen_backend(encoder, *, trusted=True):
    """Return the module that runs a fitted frozen ``encoder`` in place of torch, or None for torch.

    Parameters
    ----------
    encoder : BaseEncoder
        A fitted encoder, its module set up.
    trusted : bool, default=True
        Whether the encoder's fingerprint tells its weights; when not (weights
        loaded over the ones its name gives), the export is made for them alone.

    Returns
    -------
    OnnxRuntimeModule or None
        None when torch runs the module: ``backend="torch"``, no module, or a
        module a fusion network trains.
    """
    module = getattr(encoder, "_module", None)
    if getattr(encoder, "backend", "torch") == "torch" or module is None or encoder.is_trainable_:
        return None
    check_backend_device(encoder)
    return onnx_module(
        module, encoder._example_input(), fingerprint=encoder.fingerprint() if trusted else None,
        cache_dir=encoder.cache_dir,
    )
