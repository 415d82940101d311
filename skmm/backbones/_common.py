"""Checks and hashing shared by the backbone families of this package."""

import hashlib

import numpy as np
import torch


def check_no_spec(name, spec):
    """Raise a ValueError when a backbone without models is given a ``:<name>`` suffix."""
    if spec is not None:
        raise ValueError(f"backbone {name!r} takes no spec (':<name>' suffix), got {name}:{spec}")


def check_kwargs(name, kwargs, accepted=()):
    """Raise a TypeError naming the keyword arguments a backbone does not take."""
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        known = f"; accepted: {', '.join(map(repr, sorted(accepted)))}" if accepted else ""
        raise TypeError(f"backbone {name!r} got unexpected backbone_kwargs {', '.join(map(repr, unknown))}{known}")


def check_texts(texts, who):
    """``texts`` as a list of strings, or a TypeError naming ``who`` and the bad item."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{who} expects a list of strings, got a single {type(texts).__name__}")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(
                f"{who} expects a list of strings; item {i} is a {type(t).__name__} "
                "(coerce columns with skmm.io.text.to_texts first)"
            )
    return texts


def digest(*parts):
    """sha256 (hex) over a stable serialisation of nested dicts, sequences, arrays and scalars.

    Examples
    --------
    >>> digest({"b": 1, "a": [1.0, "x"]}) == digest({"a": [1.0, "x"], "b": 1})
    True
    """
    h = hashlib.sha256()

    def feed(obj):
        if isinstance(obj, torch.Tensor):
            obj = obj.detach().cpu().numpy()
        if isinstance(obj, np.ndarray):
            h.update(f"nd{obj.dtype.str}{obj.shape}".encode())
            h.update(np.ascontiguousarray(obj).tobytes())
        elif isinstance(obj, dict):
            h.update(f"dict{len(obj)}".encode())
            for key in sorted(obj, key=repr):
                feed(key)
                feed(obj[key])
        elif isinstance(obj, (list, tuple)):
            h.update(f"{type(obj).__name__}{len(obj)}".encode())
            for item in obj:
                feed(item)
        elif isinstance(obj, (frozenset, set)):
            feed(sorted(obj, key=repr))
        elif callable(obj) and hasattr(obj, "__qualname__"):
            # functions and classes: their name is stable across processes, their repr is not
            h.update(f"fn{getattr(obj, '__module__', '')}.{obj.__qualname__}".encode())
        else:
            h.update(f"{type(obj).__name__}:{obj!r}".encode())
        h.update(b";")

    for part in parts:
        feed(part)
    return h.hexdigest()
