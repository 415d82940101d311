"""Registries: a name -> factory map per kind of plugin.

Three registries exist, one per kind: :data:`image_encoders`, :data:`text_encoders`
and :data:`fusions`.  A factory is registered with a decorator::

    from skmm.registry import fusions

    @fusions.register("my-fusion")
    def make_my_fusion(modalities, dim, n_classes, **kwargs):
        ...

Names may carry a *family prefix*: ``"torchvision:resnet18"`` looks up the factory
registered as ``"torchvision"`` and hands it ``"resnet18"`` as its ``spec``.

Third-party packages add entries through entry points in the groups
``skmm.image_encoders``, ``skmm.text_encoders`` and ``skmm.fusions``; they are read
lazily, the first time a name is looked up that is not registered in-process.
"""

import importlib
import warnings
from importlib.metadata import entry_points

__all__ = ["Registry", "UnknownNameError", "image_encoders", "text_encoders", "fusions"]


class UnknownNameError(ValueError, KeyError):
    """An unknown registry name; a ValueError (bad parameter) and a KeyError (missing key)."""

    def __str__(self):  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def _entry_points(group):
    """Entry points of ``group`` (one small function so tests can monkeypatch it)."""
    return list(entry_points(group=group))


class Registry:
    """Map names to factories, with decorator registration and entry-point plugins.

    Parameters
    ----------
    kind : str
        What the registry holds, used in error messages ("fusion").
    group : str
        The entry-point group third-party packages register in.
    builtins : str, optional
        Module imported on first lookup that registers the built-in entries
        (keeps ``import skmm`` light and avoids import cycles).

    Examples
    --------
    >>> from skmm.registry import Registry
    >>> shapes = Registry("shape", "example.shapes")
    >>> @shapes.register("square")
    ... def square(side):
    ...     return side * side
    >>> shapes.get("square")(3)
    9
    >>> "square" in shapes
    True
    """

    def __init__(self, kind, group, builtins=None):
        self.kind = kind
        self.group = group
        self._builtins = builtins
        self._factories = {}
        self._entry_points_loaded = False

    def register(self, name, factory=None, *, overwrite=False):
        """Register ``factory`` under ``name``; usable as a decorator.

        Registering a name twice warns and replaces the old entry unless
        ``overwrite=True`` says that is intended.
        """
        if not isinstance(name, str) or not name or ":" in name:
            raise ValueError(f"{self.kind} names are non-empty strings without ':', got {name!r}")

        def decorator(obj):
            if name in self._factories and not overwrite and self._factories[name] is not obj:
                warnings.warn(f"{self.kind} {name!r} is registered already; replacing it", UserWarning, stacklevel=3)
            self._factories[name] = obj
            return obj

        return decorator if factory is None else decorator(factory)

    def _load_builtins(self):
        if self._builtins is not None:
            module, self._builtins = self._builtins, None
            importlib.import_module(module)

    def _load_entry_points(self):
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in _entry_points(self.group):
            if ep.name in self._factories:
                continue
            # Load lazily: keep the entry point, resolve it on first use.
            self._factories[ep.name] = _LazyEntryPoint(ep)

    def names(self):
        """Sorted names known now, built-in, registered and from entry points."""
        self._load_builtins()
        self._load_entry_points()
        return sorted(self._factories)

    def __contains__(self, name):
        try:
            self.get(name)
        except (UnknownNameError, ImportError):
            return False
        return True

    def split(self, name):
        """``"family:spec"`` -> ``("family", "spec")``; a plain name -> ``(name, None)``."""
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} must be named by a string, got {type(name).__name__}")
        family, sep, spec = name.partition(":")
        return family, (spec if sep else None)

    def get(self, name):
        """The factory registered under ``name`` (or under its ``family:`` prefix).

        Raises
        ------
        UnknownNameError
            For an unknown name (a ValueError and a KeyError); the message lists
            the known names.
        """
        family, _ = self.split(name)
        self._load_builtins()
        if family not in self._factories:
            self._load_entry_points()
        if family not in self._factories:
            self._entry_points_loaded = False  # a plugin may have been installed since
            self._load_entry_points()
        try:
            factory = self._factories[family]
        except KeyError:
            known = ", ".join(repr(n) for n in sorted(self._factories))
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {known}") from None
        if isinstance(factory, _LazyEntryPoint):
            factory = self._factories[family] = factory.load(self.kind)
        return factory


class _LazyEntryPoint:
    def __init__(self, ep):
        self.ep = ep

    def load(self, kind):
        try:
            return self.ep.load()
        except Exception as exc:  # a broken plugin must say which one it is
            raise ImportError(f"cannot load {kind} plugin {self.ep.name!r} ({self.ep.value}): {exc}") from exc


image_encoders = Registry("image encoder", "skmm.image_encoders", builtins="skmm.encoders")
text_encoders = Registry("text encoder", "skmm.text_encoders", builtins="skmm.encoders")
fusions = Registry("fusion", "skmm.fusions", builtins="skmm.fusion")
