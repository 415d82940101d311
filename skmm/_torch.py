"""Torch plumbing shared by encoders and estimators: devices, seeding, persistence."""

import contextlib
import io
import uuid
import warnings

import numpy as np
import torch


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


def seed_from(random_state):
    """An int seed drawn from a sklearn-style random_state (None draws from numpy's global RNG)."""
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    rng = random_state if isinstance(random_state, np.random.RandomState) else np.random.mtrand._rand
    return int(rng.randint(np.iinfo(np.int32).max))


def seed_of(random_state):
    """An int seed from ``random_state`` (int, RandomState, Generator or None).

    Returns ``(seed, reproducible)``: ``reproducible`` is False when the seed was
    drawn from fresh entropy or from a caller's random generator, so a fingerprint
    must not promise that another call gives the same weights.
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0]), False
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state) % (2**63), True
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max)), False
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(np.iinfo(np.int64).max)), False
    raise TypeError(f"random_state must be None, an int or a numpy random generator, got {random_state!r}")


@contextlib.contextmanager
def seeded(random_state):
    """Run a block with torch's CPU RNG seeded from ``random_state``; restore it after.

    Yields the fingerprint token of the seed: ``"seed=<n>"`` when ``random_state``
    fixes the weights, a unique ``"unseeded=<uuid>"`` otherwise, so that an
    embedding cache never takes two differently initialised networks for one.
    """
    seed, reproducible = seed_of(random_state)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield f"seed={seed}" if reproducible else f"unseeded={uuid.uuid4().hex}"


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


PRECISIONS = ("auto", "float32", "bfloat16")


def check_precision(precision):
    """``precision`` itself, or a ValueError naming the parameter."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
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
