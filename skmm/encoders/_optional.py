"""Support for the backbone families that live in optional libraries.

Each family module (:mod:`skmm.encoders.torchvision`, ``.timm``, ``.hf``,
``.clip``, ``.sentence_transformers``) imports its library through
:func:`import_optional`, so a missing library becomes an ImportError that names the
pip extra to install.  The other helpers here are what every family needs the same
way: seeded random initialisation that leaves the global RNG alone, fingerprints of
local weight files, strict keyword checking and the search for a model's blocks.
"""

import hashlib
import importlib
import os
from pathlib import Path

import torch
from torch import nn

from ..utils.seeding import seed_of, seeded  # noqa: F401  (used by the family modules)

__all__ = ["import_optional"]

#: The ``weights`` values that ask for a randomly initialised network.
RANDOM_WEIGHTS = (None, "random")


def import_optional(module_name, extra):
    """Import ``module_name`` or raise an ImportError naming the skmm extra.

    Parameters
    ----------
    module_name : str
        The module to import ("timm", "transformers", ...).
    extra : str
        The skmm extra that installs it ("timm", "hf", ...).

    Returns
    -------
    module

    Examples
    --------
    >>> import_optional("math", "none").sqrt(4.0)
    2.0
    """
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        top = module_name.partition(".")[0]
        raise ImportError(
            f'this skmm backbone requires {top}: pip install "skmm[{extra}]" ({exc})'
        ) from exc


def check_no_kwargs(family, spec, kwargs):
    """Raise a TypeError naming keyword arguments a family does not take."""
    if kwargs:
        names = ", ".join(sorted(kwargs))
        raise TypeError(f"{family}:{spec} got unexpected backbone argument(s): {names}")


def is_weights_file(weights):
    """Whether ``weights`` names a file on disk (rather than a weights tag)."""
    return isinstance(weights, (str, os.PathLike)) and Path(weights).is_file()


def file_fingerprint(path):
    """``path|size|mtime`` of a file, or of the weight/config files of a directory."""
    path = Path(path).resolve()
    if path.is_file():
        stat = path.stat()
        return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    parts = [str(path)]
    for child in sorted(path.iterdir()):
        if child.is_file() and child.suffix in {".json", ".safetensors", ".bin", ".pt", ".pth", ".txt", ".model"}:
            stat = child.stat()
            parts.append(f"{child.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


def digest(*parts):
    """A short stable hash of ``parts``, for long fingerprints."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def load_state_dict_file(path):
    """A state dict from a .safetensors or torch (.pt/.pth/.bin) file, tensors only."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    # Checkpoints written by training scripts often wrap the weights.
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_weights(module, path, ignore_prefixes=()):
    """Load a state-dict file into ``module``, tolerating only dropped-head keys.

    The file may come from the full classifier (its head keys are ignored, since
    skmm strips the head) or from the headless module; any other missing or
    unexpected key is an error that names the keys.
    """
    state = load_state_dict_file(path)
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ValueError(f"weights file {path} does not fit the model: {exc}") from exc
    unexpected = [k for k in unexpected if not k.startswith(tuple(ignore_prefixes))]
    if missing or unexpected:
        raise ValueError(
            f"weights file {path} does not fit the model: missing keys {missing[:8]}, "
            f"unexpected keys {unexpected[:8]}"
        )


def count_convs(module):
    return sum(isinstance(m, nn.Conv2d) for m in module.modules())


def _has_params(module):
    return any(True for _ in module.parameters())


def find_blocks(module):
    """Dotted names of a model's repeated blocks, input to output.

    The blocks are the items of its shallowest ModuleList of two or more modules
    with parameters; ties in depth go to the list holding most parameters (a
    transformer's layers rather than, say, a list of dropouts).  Returns ``[]``
    when the model has no such list.
    """
    best, best_key = None, None
    for name, child in module.named_modules():
        if isinstance(child, nn.ModuleList) and len(child) >= 2 and name:
            n_params = sum(p.numel() for p in child.parameters())
            if n_params == 0:
                continue
            key = (name.count("."), -n_params)
            if best_key is None or key < best_key:
                best, best_key = name, key
    return [] if best is None else [f"{best}.{name}" for name, _ in module.get_submodule(best).named_children()]


_NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)


def blocks_of(model, names):
    """The submodules ``names`` (input to output) that are blocks, as a list.

    Blocks are registered submodules of ``model`` (estimators map them to names
    when pickling), hold parameters and are not lone normalisation layers.  What
    runs after the last block (a final norm, a pooler) is not a block: unfreezing
    the last n blocks leaves it as it was.
    """
    blocks = [model.get_submodule(n) for n in names]
    return [m for m in blocks if _has_params(m) and not isinstance(m, _NORMS)]
