"""Torch modules to bytes and back; a model trained on CUDA loads on a CPU-only machine."""

import io
import warnings

import torch

__all__ = ["dump_module", "load_module"]


def dump_module(module):
    """Serialise a module (weights on whatever device) to bytes."""
    buf = io.BytesIO()
    torch.save(module, buf)
    return buf.getvalue()


def load_module(data, device):
    """Load :func:`dump_module` bytes onto ``device``, falling back to CPU when CUDA is gone.

    Returns the module and the device it landed on.
    """
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"the model was saved on {device!r} but CUDA is not available here; loading it on the CPU",
            UserWarning,
            stacklevel=3,
        )
        device = "cpu"
    module = torch.load(io.BytesIO(data), map_location=device, weights_only=False)
    return module, device
