"""What the pretrained families (torchvision, timm, hf, clip, st) share.

Each family module imports its library through :func:`import_optional`, so a
missing library becomes an ImportError that names the pip extra to install.  The
other helpers are what every family needs the same way: seeded random
initialisation that leaves the global RNG alone and says whether it can be
reproduced, the identity of local weight files, loading them with
``weights_only=True``, and the search for a model's blocks.
"""

import contextlib
import os
from pathlib import Path

import torch
from torch import nn

from ..utils.optional import import_optional as _import_optional
from ..utils.seeding import seed_of, seeded
from ._common import digest

__all__ = [
    "RANDOM_WEIGHTS",
    "blocks_of",
    "find_blocks",
    "import_optional",
    "is_weights_file",
    "load_state_dict_file",
    "load_weights",
    "seeded_weights",
    "weights_path_token",
    "weights_token",
]

#: The ``weights`` values that ask for a randomly initialised network.
RANDOM_WEIGHTS = (None, "random")

#: Files that make a model directory what it is (weights, configs, vocabularies).
_MODEL_FILE_SUFFIXES = {".json", ".safetensors", ".bin", ".pt", ".pth", ".txt", ".model"}


def import_optional(module_name, extra):
    """Import ``module_name`` or raise an ImportError naming the skmm extra (see
    :func:`skmm.utils.optional.import_optional`).

    Examples
    --------
    >>> import_optional("math", "none").sqrt(4.0)
    2.0
    """
    return _import_optional(module_name, extra, what="this skmm backbone")


@contextlib.contextmanager
def seeded_weights(random_state):
    """Run a random initialisation seeded from ``random_state``; torch's global RNG is left alone.

    Yields the weights token for :func:`skmm.backbones.base.fingerprint_of`:
    ``"random,seed=<n>"`` when ``random_state`` fixes the weights (an int), ``None``
    otherwise, so that unreproducible weights are never cached.

    Examples
    --------
    >>> with seeded_weights(7) as token:
    ...     pass
    >>> token
    'random,seed=7'
    >>> with seeded_weights(None) as token:
    ...     pass
    >>> token is None
    True
    """
    seed, reproducible = seed_of(random_state)
    with seeded(seed):
        yield f"random,seed={seed}" if reproducible else None


def is_weights_file(weights):
    """Whether ``weights`` names a file on disk (rather than a weights tag)."""
    return isinstance(weights, (str, os.PathLike)) and Path(weights).is_file()


def weights_path_token(path):
    """The weights token of a local file or model directory: its identity on disk.

    A file gives ``file=<path>|<size>|<mtime>``; a directory gives ``dir=<digest>``
    over the path, size and mtime of its model files (weights, configs,
    vocabularies), sub-directories included.
    """
    path = Path(path).resolve()
    if path.is_file():
        stat = path.stat()
        return f"file={path}|{stat.st_size}|{stat.st_mtime_ns}"
    parts = [str(path)]
    for child in sorted(path.rglob("*")):
        if child.is_file() and child.suffix in _MODEL_FILE_SUFFIXES:
            stat = child.stat()
            parts.append(f"{child.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}")
    return f"dir={digest(parts)}"


def weights_token(weights, pretrained, random_token):
    """The weights token of a family with three sources of weights.

    A local file (``weights`` names one) gives its identity on disk
    (:func:`weights_path_token`); else ``pretrained``, the tag of library weights,
    when not None; else ``random_token`` from :func:`seeded_weights`.
    """
    if is_weights_file(weights):
        return weights_path_token(weights)
    return pretrained if pretrained is not None else random_token


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


_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.LayerNorm, nn.GroupNorm)


def blocks_of(model, names):
    """The submodules ``names`` (input to output) that are blocks, as a list.

    Blocks are registered submodules of ``model`` (estimators map them to names
    when pickling), hold parameters and are not lone normalisation layers.  What
    runs after the last block (a final norm, a pooler) is not a block: unfreezing
    the last n blocks leaves it as it was.
    """
    blocks = [model.get_submodule(n) for n in names]
    return [m for m in blocks if any(True for _ in m.parameters()) and not isinstance(m, _NORMS)]
