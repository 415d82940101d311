"""Small helpers shared by the backbone modules."""

import contextlib
import importlib

import numpy as np
import torch


def check_no_spec(name, spec):
    if spec is not None:
        raise ValueError(f"the {name!r} backbone takes no ':<name>' suffix, got {name}:{spec}")


@contextlib.contextmanager
def seeded(random_state):
    """Run a block with torch's CPU RNG seeded from ``random_state``, restoring it afterwards."""
    if random_state is None:
        yield
        return
    seed = int(np.random.RandomState(random_state).randint(2**31 - 1)) if not isinstance(random_state, int) else random_state
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def lazy(module, attr):
    """A factory that imports ``module`` only when called (keeps optional libraries optional)."""

    def factory(*args, **kwargs):
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    factory.__name__ = f"lazy_{attr}"
    factory.__qualname__ = factory.__name__
    factory.__doc__ = f"Imports {module} and calls its {attr}."
    return factory
