"""Devices and arithmetic precision: where and in what a forward pass runs."""

import torch

__all__ = ["PRECISIONS", "autocast", "check_precision", "resolve_device", "uses_bf16"]

PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_device(device, param="device"):
    """'auto' -> 'cuda' when available else 'cpu'; an unavailable CUDA device is a ValueError."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"{param} must be 'auto', 'cpu', 'cuda' or 'cuda:<n>', got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" or device == "mps":
        return device
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"{param}={device!r} but CUDA is not available here; use {param}='auto' or 'cpu'")
        return device
    raise ValueError(f"{param} must be 'auto', 'cpu', 'cuda' or 'cuda:<n>', got {device!r}")


def check_precision(precision, name="precision"):
    """``precision`` itself, or a ValueError naming the parameter."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"{name} must be one of {PRECISIONS}, got {precision!r}")
    return precision


def uses_bf16(device, precision="auto"):
    """Whether ``precision`` runs the forward pass in bf16 on ``device``.

    "auto" means bf16 on CUDA and float32 elsewhere; "bfloat16" asks for bf16 on
    any device (on CPUs with AMX or AVX512-BF16 it is several times faster than
    float32); "float32" never uses it.
    """
    if precision == "bfloat16":
        return True
    if precision == "float32":
        return False
    return str(device).startswith("cuda")


def autocast(device, precision="auto"):
    """bf16 autocast where :func:`uses_bf16` says so, else autocast switched off."""
    device_type = torch.device(device).type
    if uses_bf16(device, precision):
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return torch.autocast(device_type, enabled=False)
