"""
====================================
A custom fusion, shipped as a plugin
====================================

A fusion is a small :class:`torch.nn.Module`: it gets one ``(N, dim)`` tensor
per modality and returns ``(N, out_dim)``.  Subclass
:class:`skmm.fusion.Fusion`, register it under a name, and
``FusionClassifier(fusion="<name>")`` uses it, in ``GridSearchCV`` too.

``examples/plugin_package/`` is a complete installable plugin: one module,
``skmm_max_fusion.py``, with a :class:`~skmm.fusion.Fusion` subclass and its
factory, and a ``pyproject.toml`` that declares the factory as an entry point
in the group ``skmm.fusions``::

    [project.entry-points."skmm.fusions"]
    elementwise-max = "skmm_max_fusion:make_max_fusion"

After ``pip install examples/plugin_package``, ``fusion="elementwise-max"``
works in any process without an import: skmm reads the entry point the first
time it meets the name.  This script does without installing: it registers the
same class in-process with :func:`skmm.fusion.register_fusion`, then
grid-searches it against the built-in fusions.  See :doc:`/plugins` for
backbones and the rest of the contract.
"""

import sys
from pathlib import Path

import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.datasets import make_shapes
from skmm.fusion import register_fusion
from skmm.registry import fusions

try:
    import skmm_max_fusion  # installed with: pip install examples/plugin_package
except ImportError:  # not installed: import it from its folder beside this script
    # (sphinx-gallery runs an example from its folder, without __file__)
    here = Path(__file__).parent if "__file__" in globals() else Path.cwd()
    sys.path.insert(0, str(here / "plugin_package"))
    import skmm_max_fusion

torch.set_num_threads(1)  # small nets: one thread per process is faster than two fighting

# %%
# Register the fusion
# -------------------
# An installed plugin shows up in :data:`skmm.registry.fusions` through its
# entry point; otherwise ``register_fusion`` adds the class in this process.
# Its keyword-only ``__init__`` arguments become the fusion's options
# (``fusion_kwargs``), checked by name.

if "elementwise-max" in fusions.names():
    print("elementwise-max comes from the installed plugin's entry point")
else:
    register_fusion("elementwise-max")(skmm_max_fusion.MaxFusion)
    print("elementwise-max registered in-process")
print("fusions:", fusions.names())

# %%
# Grid-search it against built-in fusions
# ---------------------------------------
# The shapes data needs both modalities (the picture gives the shape, the
# caption the colour).  A list of grids gives the plugin's ``temperature``
# option to the plugin alone.

df = make_shapes(160, random_state=0, image_size=16)
clf = FusionClassifier(
    image=ImageEncoder("cnn", image_size=16, num_workers=0, augment="none", backbone_kwargs={"channels": (8, 16)}),
    text=TextEncoder("tfidf"),
    dim=32, hidden_dim=32, max_epochs=20, lr=3e-3, random_state=0,
)
param_grid = [
    {"fusion": ["concat", "gated"]},
    {"fusion": ["elementwise-max"], "fusion_kwargs": [None, {"temperature": 0.5}]},
]
search = GridSearchCV(clf, param_grid, cv=StratifiedKFold(3, shuffle=True, random_state=0)).fit(df, df["label"])
for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
    print(f"{score:.3f}  {params}")

# %%
# Modality weights and option checks
# ----------------------------------
# ``MaxFusion`` defines the ``modality_weights`` hook, so
# :meth:`FusionClassifier.modality_weights <skmm.FusionClassifier.modality_weights>`
# (and :func:`skmm.plotting.plot_modality_weights`) work for it as for
# ``gated``: here, the share of features each modality wins.

model = clf.set_params(fusion="elementwise-max", fusion_kwargs=None).fit(df, df["label"])
print(model.modality_weights(df).mean().round(3))

# %%
# An option the fusion does not have is an error that names it, raised when
# the network is built, before training.

try:
    clf.set_params(fusion="elementwise-max", fusion_kwargs={"temp": 1.0}).fit(df, df["label"])
except TypeError as exc:
    print("TypeError:", exc)
