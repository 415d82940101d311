"""
======================================
Learning curves and a confusion matrix
======================================

:mod:`skmm.plotting` draws what a fitted :class:`~skmm.FusionClassifier` has
to show, in the manner of scikit-learn's displays: every function takes an
optional ``ax=`` and returns the axes it drew on (``pip install
"skmm[plot]"`` brings matplotlib).

* :func:`~skmm.plotting.plot_learning_curves`: the training and validation
  loss per epoch, read from the skorch history of the fit;
* :func:`~skmm.plotting.plot_confusion_matrix`: which classes are mistaken for
  which, through :class:`sklearn.metrics.ConfusionMatrixDisplay`.
"""

import matplotlib.pyplot as plt
import torch
from sklearn.model_selection import train_test_split

from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.datasets import make_shapes
from skmm.plotting import plot_confusion_matrix, plot_learning_curves

torch.set_num_threads(1)  # small nets: one thread per process is faster than two fighting

# %%
# Early stopping on a validation split
# ------------------------------------
# ``validation_fraction`` holds out a stratified part of the training rows;
# training stops when their loss has not improved for ``n_iter_no_change``
# epochs and keeps the best epoch's weights.  ``n_classes=6`` makes the task
# harder: three shapes times two colours.

df = make_shapes(240, random_state=0, image_size=16, n_classes=6)
train, test = train_test_split(df, test_size=0.3, random_state=0, stratify=df["label"])
clf = FusionClassifier(
    image=ImageEncoder("cnn", image_size=16, num_workers=0, augment="none", backbone_kwargs={"channels": (8, 16)}),
    text=TextEncoder("tfidf"),
    fusion="concat", dim=32, hidden_dim=32, lr=3e-3, random_state=0,
    max_epochs=40, validation_fraction=0.2, n_iter_no_change=5,
).fit(train, train["label"])
print(f"trained {len(clf.net_.history)} epochs; test accuracy {clf.score(test, test['label']):.3f}")

# %%
# Learning curves
# ---------------

ax = plot_learning_curves(clf)

# %%
# Confusion matrix on the held-out rows
# -------------------------------------
# Both plots take an ``ax``, so they can share a figure; ``normalize="true"``
# shows each true class's row as fractions.

fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
plot_confusion_matrix(clf, test, test["label"], ax=axes[0])
plot_confusion_matrix(clf, test, test["label"], normalize="true", ax=axes[1])
axes[1].set_title("Confusion matrix, normalised by true class")
fig.tight_layout()
