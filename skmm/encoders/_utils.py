"""Small helpers shared by the backbone modules."""

import importlib


def check_no_spec(name, spec):
    if spec is not None:
        raise ValueError(f"the {name!r} backbone takes no ':<name>' suffix, got {name}:{spec}")


def lazy(module, attr):
    """A factory that imports ``module`` only when called (keeps optional libraries optional)."""

    def factory(*args, **kwargs):
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    factory.__name__ = f"lazy_{attr}"
    factory.__qualname__ = factory.__name__
    factory.__doc__ = f"Imports {module} and calls its {attr}."
    return factory
