"""
==============================================
Comparing fusion strategies with a grid search
==============================================

``fusion`` is a plain string parameter of :class:`~skmm.FusionClassifier`, so
:class:`~sklearn.model_selection.GridSearchCV` compares fusion strategies the
way it compares any hyper-parameter, and ``fusion_kwargs`` reaches each
fusion's own options.  The single-modality ablations ``"image"`` and ``"text"``
belong in the same search: they say how much each modality gives on its own,
and so how much the fusion adds.

See :doc:`/fusion` for what each strategy does and when to use it.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.datasets import make_shapes

torch.set_num_threads(1)  # small nets: one thread per process is faster than two fighting

# %%
# Data and model
# --------------
# In the shapes data set the image shows a shape and the caption names a
# colour; the label is the pair, so each modality alone reaches about 0.5.
# Small images, a small CNN trained end to end and TF-IDF captions keep every
# fit under a second.  ``num_workers=0`` decodes the images in this process
# (worker processes pay off on real photos, not on 16-pixel PNGs), and
# ``augment="none"`` trains on the pictures as they are: random crops of
# 16-pixel shapes cost more than they teach.

df = make_shapes(160, random_state=0, image_size=16)
clf = FusionClassifier(
    image=ImageEncoder("cnn", image_size=16, num_workers=0, augment="none", backbone_kwargs={"channels": (8, 16)}),
    text=TextEncoder("tfidf"),
    dim=32, hidden_dim=32, max_epochs=20, lr=3e-3, random_state=0,
)

# %%
# Every fusion, and the ablations
# -------------------------------
# A list of grids searches options only where they apply: ``factor`` is an
# option of ``bilinear`` (MFB) alone, and an option a fusion does not know is
# a TypeError that names it.

fusions = ["concat", "sum", "gated", "attention", "tensor", "film", "late", "image", "text"]
param_grid = [
    {"fusion": fusions},
    {"fusion": ["bilinear"], "fusion_kwargs": [{"factor": 2}, {"factor": 5}]},
]
cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
search = GridSearchCV(clf, param_grid, cv=cv).fit(df, df["label"])
print("best:", search.best_params_, f"cv accuracy {search.best_score_:.3f}")

# %%
# The results as a table: ``cv_results_`` is a dict of arrays, one entry per
# candidate.

results = pd.DataFrame(search.cv_results_)
results["candidate"] = [
    p["fusion"] + (f" {p['fusion_kwargs']}" if p.get("fusion_kwargs") else "") for p in results["params"]
]
table = results[["candidate", "mean_test_score", "std_test_score", "mean_fit_time"]]
table.sort_values("mean_test_score", ascending=False).round(3)

# %%
# And as a plot, the ablations in grey.

order = results.sort_values("mean_test_score")
colors = ["tab:gray" if c in ("image", "text") else "tab:blue" for c in order["candidate"]]
fig, ax = plt.subplots(figsize=(6, 4))
ax.barh(order["candidate"], order["mean_test_score"], xerr=order["std_test_score"], color=colors)
ax.axvline(0.5, color="black", linestyle=":", linewidth=1)
ax.set_xlim(0, 1.05)
ax.set_xlabel("mean cv accuracy (3 folds)")
ax.set_title("Fusion strategies on make_shapes")
fig.tight_layout()

# %%
# The best estimator is refitted on all rows (``refit=True``, the default) and
# ready to predict.

model = search.best_estimator_
print(model.fusion, np.mean(model.predict(df) == df["label"]))
