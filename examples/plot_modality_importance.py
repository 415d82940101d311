"""
===========================
Which modality did the work
===========================

Two questions about a fitted :class:`~skmm.FusionClassifier`:

* **How much does each modality matter?**
  :func:`skmm.inspection.modality_importance` scores the model on held-out
  rows with one modality shuffled across rows (permutation importance, as
  :func:`sklearn.inspection.permutation_importance` does it for one column)
  and with the modality removed (every row treated as missing it).  The score
  drop is the modality's importance.  It works for every fusion.
* **How much does the model lean on each modality, row by row?** Fusions that
  weigh modalities (``gated``, ``attention``, ``late``) say so:
  :meth:`FusionClassifier.modality_weights <skmm.FusionClassifier.modality_weights>`
  returns one weight per modality and row.
"""

import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.datasets import make_shapes
from skmm.inspection import modality_importance
from skmm.plotting import plot_modality_importance, plot_modality_weights

torch.set_num_threads(1)  # small nets: one thread per process is faster than two fighting

# %%
# A gated fusion on the shapes data
# ---------------------------------
# The label is (colour, shape): the caption gives the colour, the picture the
# shape, so both modalities should matter.  ``fusion="gated"`` is a Gated
# Multimodal Unit: a learned gate mixes the two, feature by feature.
# ``modality_dropout`` hides a modality from some training rows, so the model
# also learns to answer without it.

df = make_shapes(200, random_state=0, image_size=16)
train, test = train_test_split(df, test_size=0.3, random_state=0, stratify=df["label"])
clf = FusionClassifier(
    image=ImageEncoder("cnn", image_size=16, num_workers=0, augment="none", backbone_kwargs={"channels": (8, 16)}),
    text=TextEncoder("tfidf"),
    fusion="gated", modality_dropout=0.2,
    dim=32, hidden_dim=32, max_epochs=25, lr=3e-3, random_state=0,
).fit(train, train["label"])
print(f"test accuracy {clf.score(test, test['label']):.3f}")

# %%
# Permutation and removal importance
# ----------------------------------
# The result is a :class:`~sklearn.utils.Bunch`, like scikit-learn's
# ``permutation_importance``: means and standard deviations over
# ``n_repeats`` shuffles, plus the drop when the modality is removed.

result = modality_importance(clf, test, test["label"], n_repeats=5, random_state=0)
pd.DataFrame(
    {
        "permuted (mean)": result.importances_mean,
        "permuted (std)": result.importances_std,
        "removed": result.removal_importances_mean,
    },
    index=result.modalities,
).round(3)

# %%
# Both modalities matter: without either, the accuracy falls towards the 0.5
# that one modality alone can reach.

ax = plot_modality_importance(result)

# %%
# Per-row weights of the gated fusion
# -----------------------------------
# ``modality_weights`` returns a DataFrame with one column per modality; each
# row sums to 1.

weights = clf.modality_weights(test)
weights.describe().round(3)

# %%

ax = plot_modality_weights(weights)

# %%
# The weights follow the inputs: with the captions removed, the gate shifts
# towards the image, which is all that is left.  The shift is modest: the gate
# mixes features one by one, and a missing caption still enters the fusion as
# the learned "missing" embedding.

no_caption = test.assign(caption=None)
pd.DataFrame({"as given": weights.mean(), "captions removed": clf.modality_weights(no_caption).mean()}).round(3)
