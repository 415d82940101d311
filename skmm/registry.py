"""Registries: a name -> factory map per kind of plugin.

Three registries exist, one per kind: :data:`image_backbones`, :data:`text_backbones`
and :data:`fusions`.  A factory is registered with a decorator::

    from skmm.registry import fusions

    @fusions.register("my-fusion")
    def make_my_fusion(modalities, dim, n_classes, **kwargs):
        ...

Names may carry a *family prefix*: ``"torchvision:resnet18"`` looks up the factory
registered as ``"torchvision"`` and hands it ``"resnet18"`` as its ``spec``.

Third-party packages add entries through entry points in the groups
``skmm.image_backbones``, ``skmm.text_backbones`` and ``skmm.fusions`` (the older
groups ``skmm.image_encoders`` and ``skmm.text_encoders`` are still read); they are
read lazily, the first time a name is looked up that is not registered in-process,
through :func:`entry_points` (tests monkeypatch it).

``image_encoders`` and ``text_encoders``, the registries' former names, still work
and warn (DeprecationWarning).
"""

import importlib
import importlib.metadata
import warnings

__all__ = [
    "Registry",
    "UnknownNameError",
    "entry_points",
    "fusions",
    "image_backbones",
    "lazy",
    "text_backbones",
]


class UnknownNameError(ValueError, KeyError):
    """An unknown registry name; a ValueError (bad parameter) and a KeyError (missing key)."""

    def __str__(self):  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def entry_points(group):
    """The installed entry points of ``group``, a list.

    Every registry reads its plugins through this one function, looked up at call
    time, so tests can replace it::

        monkeypatch.setattr("skmm.registry.entry_points", lambda group: [...])
    """
    return list(importlib.metadata.entry_points(group=group))


def lazy(module, attr):
    """A factory that imports ``module`` only when called, then calls its ``attr``.

    Registering a family through it keeps ``import skmm`` light and optional
    libraries optional.

    Examples
    --------
    >>> from skmm.registry import Registry, lazy
    >>> maths = Registry("function", "example.functions")
    >>> maths.register("sqrt", lazy("math", "sqrt"))  # doctest: +ELLIPSIS
    <function lazy_sqrt at ...>
    >>> maths.get("sqrt")(9.0)
    3.0
    """

    def factory(*args, **kwargs):
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    factory.__name__ = f"lazy_{attr}"
    factory.__qualname__ = factory.__name__
    factory.__doc__ = f"Imports {module} and calls its {attr}."
    return factory


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
    legacy_groups : tuple of str, optional
        Former names of ``group``, still read (their plugins warn).

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

    def __init__(self, kind, group, builtins=None, legacy_groups=()):
        self.kind = kind
        self.group = group
        self.legacy_groups = tuple(legacy_groups)
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

    def unregister(self, name):
        """Remove ``name`` (a registered or plugin entry); an unknown name is an UnknownNameError."""
        self._load_builtins()
        try:
            del self._factories[name]
        except KeyError:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {self._known()}") from None

    def refresh(self):
        """Read the entry points again on the next lookup (after installing a plugin)."""
        self._entry_points_loaded = False

    def _load_builtins(self):
        if self._builtins is not None:
            module, self._builtins = self._builtins, None
            importlib.import_module(module)

    def _load_entry_points(self):
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for group in (self.group, *self.legacy_groups):
            for ep in entry_points(group):
                if ep.name in self._factories:
                    continue
                # Load lazily: keep the entry point, resolve it on first use.
                self._factories[ep.name] = _LazyEntryPoint(ep, None if group == self.group else (group, self.group))

    def _known(self):
        return ", ".join(repr(n) for n in sorted(self._factories))

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
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {self._known()}") from None
        if isinstance(factory, _LazyEntryPoint):
            factory = self._factories[family] = factory.load(self.kind)
        return factory


class _LazyEntryPoint:
    def __init__(self, ep, renamed=None):
        self.ep = ep
        self.renamed = renamed  # (old group, new group) when read from a group's former name

    def load(self, kind):
        if self.renamed is not None:
            old, new = self.renamed
            warnings.warn(
                f"{kind} plugin {self.ep.name!r} ({self.ep.value}) is declared in the entry-point group "
                f"{old!r}; declare it in {new!r}",
                DeprecationWarning,
                stacklevel=4,
            )
        try:
            return self.ep.load()
        except Exception as exc:  # a broken plugin must say which one it is
            raise ImportError(f"cannot load {kind} plugin {self.ep.name!r} ({self.ep.value}): {exc}") from exc


image_backbones = Registry(
    "image backbone", "skmm.image_backbones", builtins="skmm.backbones", legacy_groups=("skmm.image_encoders",)
)
text_backbones = Registry(
    "text backbone", "skmm.text_backbones", builtins="skmm.backbones", legacy_groups=("skmm.text_encoders",)
)
fusions = Registry("fusion", "skmm.fusions", builtins="skmm.fusion")

_RENAMED = {"image_encoders": "image_backbones", "text_encoders": "text_backbones"}


def __getattr__(name):
    if name in _RENAMED:
        warnings.warn(
            f"skmm.registry.{name} is renamed skmm.registry.{_RENAMED[name]}", DeprecationWarning, stacklevel=2
        )
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
