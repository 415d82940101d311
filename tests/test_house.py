"""The house rules of the package, measured on its source (issue: one owner for each thing).

- no module imports a private name (leading underscore) from another skmm package;
- no source file is over 500 lines.
"""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "skmm"
SOURCES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 500


def _package_of(path):
    """The skmm package a file belongs to: skmm/io/images/decode.py -> ('io', 'images')."""
    return path.relative_to(PACKAGE).parent.parts


def _imported(path):
    """(dotted module, name) of every ``from X import name`` in ``path``, resolved to absolute."""
    tree = ast.parse(path.read_text())
    here = ("skmm", *_package_of(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join(base + tuple((node.module or "").split(".")) if node.module else base)
            else:
                module = node.module or ""
            for alias in node.names:
                yield module, alias.name


def _private_imports(path):
    own = ".".join(("skmm", *_package_of(path)))
    bad = []
    for module, name in _imported(path):
        if not module.startswith("skmm"):
            continue
        parts = module.split(".")
        private_module = any(p.startswith("_") and not p.startswith("__") for p in parts)
        same_package = module == own or module.startswith(own + ".")
        private_name = name.startswith("_") and not name.endswith("__")
        if (private_name or private_module) and not same_package:
            bad.append(f"{module}.{name}")
    return bad


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_crosses_a_package(path):
    assert _private_imports(path) == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_file_is_over_500_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_the_checker_sees_a_private_import(tmp_path, monkeypatch):
    fake = PACKAGE / "encoders" / "image.py"
    monkeypatch.setattr(pathlib.Path, "read_text", lambda self: "from ..io.images.decode import _secret\n")
    assert _private_imports(fake) == ["skmm.io.images.decode._secret"]
