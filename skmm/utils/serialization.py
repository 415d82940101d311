"""Torch modules inside pickles, with their tensors loaded by ``torch.load(weights_only=True)``.

An encoder pickles its module as two parts (:func:`dump_module`): the module's
structure, a copy whose parameters and buffers sit on the "meta" device (no data,
a few KB), and its tensors, saved with :func:`torch.save` and loaded back with
``weights_only=True``, so torch never unpickles an object while reading weights.
:func:`load_module` puts the tensors back (ties between shared parameters and
non-persistent buffers included) on the device the model was saved on, or on the
CPU with a warning when that device was CUDA and this machine has none.

The structure itself still travels in the enclosing pickle: a joblib file is as
trusted as its source (see docs/persistence.md; :func:`skmm.save` writes a format
that is not a pickle).
"""

import copy
import io
import warnings
from typing import NamedTuple

import torch
from torch import nn

__all__ = ["SavedModule", "available_device", "dump_module", "load_module"]


class SavedModule(NamedTuple):
    """A module as :func:`dump_module` saves it.

    Attributes
    ----------
    structure : torch.nn.Module
        The module with every parameter and buffer on the "meta" device.
    tensors : bytes
        ``torch.save`` of {name: tensor} over the module's parameters and buffers
        (non-persistent ones included), each shared tensor once.
    """

    structure: nn.Module
    tensors: bytes


def available_device(device, *, stacklevel=2):
    """``device``, or "cpu" with a warning when it is a CUDA device and CUDA is not available here."""
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"the model was saved on {device!r} but CUDA is not available here; loading it on the CPU",
            UserWarning,
            stacklevel=stacklevel + 1,
        )
        return "cpu"
    return device


def _tensors(module):
    """(module, local name, tensor, is_parameter) of every parameter and buffer, duplicates included."""
    for prefix, sub in module.named_modules(remove_duplicate=False):
        for name, param in sub._parameters.items():
            if param is not None:
                yield prefix, sub, name, param, True
        for name, buf in sub._buffers.items():
            if buf is not None:
                yield prefix, sub, name, buf, False


def dump_module(module):
    """A module (weights on whatever device) as a :class:`SavedModule`."""
    memo, tensors, seen = {}, {}, set()
    for prefix, _, name, tensor, is_param in _tensors(module):
        if id(tensor) in seen:
            continue  # a tied parameter: saved once, tied again on load
        seen.add(id(tensor))
        tensors[f"{prefix}.{name}" if prefix else name] = tensor.detach()
        meta = torch.empty_like(tensor, device="meta")
        memo[id(tensor)] = nn.Parameter(meta, requires_grad=tensor.requires_grad) if is_param else meta
    structure = copy.deepcopy(module, memo)  # the memo hands deepcopy the meta tensors: no weight is copied
    buf = io.BytesIO()
    torch.save(tensors, buf)
    return SavedModule(structure, buf.getvalue())


def load_module(data, device):
    """Rebuild a :func:`dump_module` module on ``device``, falling back to CPU when CUDA is gone.

    Returns the module and the device it landed on.
    """
    if not isinstance(data, SavedModule):
        raise ValueError(
            "this model file was written by an older skmm, which stored modules in a form that only "
            "torch.load(weights_only=False) reads; load it with that skmm version and save it again"
        )
    device = available_device(device, stacklevel=3)
    tensors = torch.load(io.BytesIO(data.tensors), map_location=device, weights_only=True)
    module = data.structure
    restored, used = {}, set()
    for prefix, sub, name, meta, is_param in list(_tensors(module)):
        if id(meta) not in restored:
            key = f"{prefix}.{name}" if prefix else name
            value = tensors.get(key)
            if not isinstance(value, torch.Tensor) or value.shape != meta.shape or value.dtype != meta.dtype:
                raise ValueError(f"the saved module's tensor {key!r} is missing or does not fit its structure")
            used.add(key)
            restored[id(meta)] = nn.Parameter(value, requires_grad=meta.requires_grad) if is_param else value
        (sub._parameters if is_param else sub._buffers)[name] = restored[id(meta)]
    if set(tensors) != used:
        raise ValueError(f"the saved module has tensors its structure lacks: {sorted(set(tensors) - used)[:8]}")
    return module, device
