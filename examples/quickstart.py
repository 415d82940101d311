"""
==========
Quickstart
==========

skmm in one page: make an image+text data set, fit a
:class:`~skmm.FusionClassifier`, grid-search fusion strategies, save the best
model and load it back.

The shapes data set needs both modalities: the picture shows the shape, the
caption names the colour, and the label is the pair.  A working fusion scores
near 1.0; each single modality tops out near 0.5.

Run it as a script (``bash dev.sh demo`` does this, in about a minute on 2 cores)::

    python examples/quickstart.py [--n-samples 240] [--max-epochs 20] [--out DIR]
"""

import argparse
import os
import tempfile
import time

import joblib
import torch
from sklearn.model_selection import GridSearchCV, train_test_split

import skmm
from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.datasets import make_shapes

parser = argparse.ArgumentParser(description="skmm quickstart: fit, grid-search fusions, save, reload")
parser.add_argument("--n-samples", type=int, default=240)
parser.add_argument("--max-epochs", type=int, default=20)
parser.add_argument("--out", default=None, help="folder for the images and the saved model (default: a temp dir)")
args = parser.parse_args()
torch.set_num_threads(1)  # small nets: one thread per process is faster than two fighting

# %%
# The data
# --------
# :func:`~skmm.datasets.make_shapes` writes small PNG files and returns a
# DataFrame with one row per image: a file path, a caption and a label.

out = args.out or tempfile.mkdtemp(prefix="skmm-quickstart-")
df = make_shapes(args.n_samples, random_state=0, directory=os.path.join(out, "images"))
train, test = train_test_split(df, test_size=0.25, random_state=0, stratify=df["label"])
print(f"{len(df)} rows in {out}; columns {list(df.columns)}; labels {sorted(df['label'].unique())}")
df.head()

# %%
# A classifier and a grid search over fusions
# -------------------------------------------
# The image goes through a small CNN and the caption through a GRU, both
# trained end to end with the fusion network.  ``fusion`` is an ordinary
# parameter, so :class:`~sklearn.model_selection.GridSearchCV` compares
# strategies the way it compares any hyper-parameter.  Every column's role is
# detected (here the column of image file paths and the caption; the label,
# equal to ``y``, is left out), and ``clf.column_roles_`` says so after fit.

clf = FusionClassifier(
    # num_workers=0: images this small decode faster here than in worker processes
    image=ImageEncoder("cnn", image_size=32, num_workers=0, backbone_kwargs={"channels": (16, 32, 64)}),
    text=TextEncoder("gru", dim=32),
    fusion="concat", dim=64, hidden_dim=64, max_epochs=args.max_epochs, lr=3e-3, random_state=0,
)
start = time.perf_counter()
search = GridSearchCV(clf, {"fusion": ["concat", "gated", "attention"]}, cv=3)
search.fit(train, train["label"])
print(f"grid search: {time.perf_counter() - start:.0f} s, best fusion {search.best_params_['fusion']!r}")
print("\nfusion      cv accuracy")
for fusion, score in zip(search.cv_results_["param_fusion"], search.cv_results_["mean_test_score"]):
    print(f"{fusion:<11} {score:.3f}")

# %%
# Save and reload
# ---------------
# :func:`skmm.save` writes a directory of data only (JSON and safetensors) that
# :func:`skmm.load` rebuilds without unpickling anything.  joblib works too,
# and keeps any estimator, but a joblib or pickle file runs code when it is
# loaded: load one only from a source you trust.

path = os.path.join(out, "model")
skmm.save(search.best_estimator_, path)
model = skmm.load(path)
print(f"saved and reloaded {path}: test accuracy {model.score(test, test['label']):.3f}")

joblib.dump(search.best_estimator_, os.path.join(out, "model.joblib"))  # for files you made yourself

# %%
# Each modality alone
# -------------------
# For contrast, the single-modality ablations ``fusion="image"`` and
# ``fusion="text"``: each can tell only half of the label.

for fusion in ("image", "text"):
    alone = clf.set_params(fusion=fusion).fit(train, train["label"])
    print(f"{fusion}-only ablation: test accuracy {alone.score(test, test['label']):.3f}")
