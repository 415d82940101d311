"""Sphinx hooks of skmm's documentation: gallery settings and what autodoc shows."""

import os

# The gallery's order (a reading order, not alphabetical); examples not listed come last.
EXAMPLE_ORDER = [
    "quickstart.py",
    "plot_grid_search_fusion.py",
    "plot_learning_curves.py",
    "plot_modality_importance.py",
    "pretrained_local.py",
    "custom_fusion_plugin.py",
]

# Arguments the gallery passes to scripts that take some: smaller runs than the
# scripts' own defaults, so the whole site builds in a few minutes on 2 cores.
EXAMPLE_ARGV = {
    "quickstart.py": ["--n-samples", "120", "--max-epochs", "15"],
}


class ExampleOrder:
    """sphinx-gallery's ``within_subsection_order``: the order of :data:`EXAMPLE_ORDER`."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = os.path.basename(filename)
        return (EXAMPLE_ORDER.index(name), name) if name in EXAMPLE_ORDER else (len(EXAMPLE_ORDER), name)

    def __repr__(self):
        return f"<{self.__class__.__name__}>"


def reset_argv(gallery_conf, script_vars):
    """sphinx-gallery's ``reset_argv``: the command-line arguments of one example."""
    return list(EXAMPLE_ARGV.get(os.path.basename(script_vars["src_file"]), []))


def _defined_in_skmm(obj):
    target = getattr(obj, "fget", None) or getattr(obj, "__func__", None) or obj
    module = getattr(target, "__module__", None) or ""
    return module == "skmm" or module.startswith("skmm.")


def skip_foreign_members(app, what, name, obj, skip, options):
    """Document the members skmm defines (its base classes' included), not those
    inherited from scikit-learn, torch or skorch: those are documented there."""
    if skip or what != "class":
        return None
    if callable(obj) or isinstance(obj, (property, classmethod, staticmethod)):
        return None if _defined_in_skmm(obj) else True
    return None


def setup(app):
    app.connect("autodoc-skip-member", skip_foreign_members)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
