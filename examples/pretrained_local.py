"""
=====================================
Pretrained backbones from local files
=====================================

Pretrained families (``timm:``, ``torchvision:``, ``hf:``, ``clip:``, ``st:``)
load weights by their usual names when the machine can reach the model hubs,
and from local files or directories always.  This example makes the local
files itself, with random weights, in exactly the formats real checkpoints
use, so it runs offline:

* a timm state dict in a ``.safetensors`` file (what a Hub repository's
  ``model.safetensors`` is), passed as ``ImageEncoder("timm:...", weights=path)``;
* a Hugging Face model directory made by :func:`skmm.testing.save_tiny_bert`,
  passed as ``TextEncoder("hf:<directory>")``.

With real checkpoints the code is the same; see :doc:`/pretrained` for names,
weights and offline machines.  The weights here are random, so the scores say
nothing about the models: the point is the loading path.
"""

import os
import tempfile
import time

import timm
import torch
from safetensors.torch import save_file
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.datasets import make_shapes
from skmm.testing import save_tiny_bert

torch.set_num_threads(1)  # small nets: one thread per process is faster than two fighting

# %%
# Local weights
# -------------
# timm's ``test_convnext`` is a ConvNeXt of a quarter-million parameters.  Its
# state dict saved with safetensors stands in for a downloaded
# ``model.safetensors``.  The tiny BERT gets the captions' words as its
# vocabulary (whole words only; other words would be ``[UNK]``).

workdir = tempfile.mkdtemp(prefix="skmm-pretrained-")
df = make_shapes(120, random_state=0, image_size=32, directory=os.path.join(workdir, "images"))

convnext_file = os.path.join(workdir, "test_convnext.safetensors")
torch.manual_seed(0)  # timm draws the random weights from torch's generator
save_file(timm.create_model("test_convnext", pretrained=False).state_dict(), convnext_file)

words = sorted({word for caption in df["caption"] for word in caption.lower().split()})
bert_dir = save_tiny_bert(os.path.join(workdir, "tiny-bert"), words=words)
print(sorted(os.listdir(bert_dir)))

# %%
# Encoders as transformers
# ------------------------
# A file or a directory loads through the same code as a downloaded
# checkpoint: the architecture from the name, the preprocessing from the
# model's configuration (``image_size`` overrides the input size), the
# weights from the file.  Pretrained weights give frozen feature extractors.

image_encoder = ImageEncoder("timm:test_convnext", weights=convnext_file, image_size=32, num_workers=0)
text_encoder = TextEncoder(f"hf:{bert_dir}", max_length=16)
print("image features:", image_encoder.fit_transform(df["image_path"]).shape)
print("text features: ", text_encoder.fit_transform(df["caption"]).shape)
print("trainable in a FusionClassifier:", image_encoder.backbone_.trainable, text_encoder.backbone_.trainable)

# %%
# With any scikit-learn model
# ---------------------------

features = make_column_transformer((image_encoder, "image_path"), (text_encoder, "caption"))
pipeline = make_pipeline(features, LogisticRegression(max_iter=1000))
scores = cross_val_score(pipeline, df, df["label"], cv=3)
print(f"logistic regression on the features: cv accuracy {scores.mean():.3f}")

# %%
# In a FusionClassifier
# ---------------------
# Frozen encoders compute each image and text once: their embeddings are
# cached (in memory here; on disk with ``cache_dir=``), keyed by the encoder's
# fingerprint (for a weights file: its path, size and modification time) and
# each input.  These rows were encoded above, so a grid search over fusions
# only trains fusion networks.

clf = FusionClassifier(image=image_encoder, text=text_encoder, fusion="concat",
                       dim=32, hidden_dim=32, max_epochs=20, lr=3e-3, random_state=0)
start = time.perf_counter()
search = GridSearchCV(clf, {"fusion": ["concat", "gated", "attention"]}, cv=3).fit(df, df["label"])
print(f"10 fits in {time.perf_counter() - start:.1f} s; best {search.best_params_}")
