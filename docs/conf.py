"""Sphinx configuration of skmm's documentation site.

Built the way scikit-learn builds its own: autodoc + numpydoc for the API
reference, sphinx-gallery for the examples (each one executed on every build),
MyST so the guides stay Markdown.  Nothing is fetched from the network: no
intersphinx, no remote images.

    bash dev.sh docs        # sphinx-build -W --keep-going -b html docs docs/_build/html
"""

import os
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "sphinxext"))  # skmm_docs: gallery hooks, autodoc filters

import skmm  # noqa: E402
import torch  # noqa: E402

project = "skmm"
author = "the skmm developers"
copyright = "the skmm developers"
release = version = skmm.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "skmm_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb", "auto_examples/*.py"]
default_role = "literal"  # `x` in a docstring is code, never a guessed cross-reference

# -- autodoc / autosummary -----------------------------------------------------------
autosummary_generate = True
autosummary_generate_overwrite = True
autodoc_default_options = {"member-order": "groupwise"}
autodoc_typehints = "none"  # numpydoc's Parameters sections say it; skmm has no annotations to show
autoclass_content = "class"  # __init__ only stores its arguments (scikit-learn's rule)
# A method skmm overrides without a docstring (forward, extra_repr) is not documented with
# torch's or scikit-learn's words: the class docstring says what it does.
autodoc_inherit_docstrings = False

# -- numpydoc ------------------------------------------------------------------------
numpydoc_show_class_members = False  # the autosummary class template lists members itself
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# Validation of every documented public docstring (methods included): all of
# numpydoc's checks but six about completeness rather than form, which the
# house does not ask of every docstring: SA01 (a See Also section), EX01 (an
# Examples section: classes and functions have one, methods need not), ES01
# (an extended summary), PR01 (every parameter documented: fit's X and y, a
# fusion's modalities and dim are documented once, on the class or the guide),
# RT01 (a Returns section).  What stays catches docstrings that render wrong or
# mislead: unknown or misordered sections, parameters documented that do not
# exist, a parameter or return value without type or description, summaries
# that run over several lines, missing docstrings on public members.
numpydoc_validation_checks = {"all", "SA01", "EX01", "ES01", "PR01", "RT01", "RT02", "SS05"}

# -- MyST ------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# -- sphinx-gallery ----------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # every script runs: the plots and the printed output are rendered under the code
    "filename_pattern": r"\.py$",
    "ignore_pattern": r"(__init__|setup)\.py$|plugin_package",
    "within_subsection_order": "skmm_docs.ExampleOrder",
    "reset_argv": "skmm_docs.reset_argv",
    "abort_on_example_error": False,  # run them all, then fail the build listing every broken one
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    # The summary pages of running times load jQuery and DataTables from CDNs;
    # each example's page still shows its own time.
    "write_computation_times": False,
    "backreferences_dir": None,
    "default_thumb_file": None,
    "capture_repr": ("_repr_html_", "__repr__"),
    "matplotlib_animations": False,
}

# -- HTML ----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skmm {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"index": [], "auto_examples/index": []}
html_show_sourcelink = False
html_copy_source = False

# The examples run in this process, one after the other.  Their networks are
# tiny: one torch thread is faster than two taking turns on a 2-core machine.
torch.set_num_threads(1)

# torch and skorch warn about their own deprecations while examples run; those are
# not skmm's to fix and must not fail a -W build through the gallery's stderr.
warnings.filterwarnings("ignore", category=DeprecationWarning, module="skorch")
