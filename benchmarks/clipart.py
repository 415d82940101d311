"""Benchmark: every fusion strategy on the clipart image+text split (issue 3, point 5).

    python benchmarks/clipart.py [--data DIR]

Rows are clip-art pictures (PNG files of every mode and size) with their title and
description; the label is the top-level gallery folder (15 classes, imbalanced).
The ``leaf`` column (the sub-folder) nearly is the label and is never used.

What runs, in order (every step prints its progress and its seconds):

1. A plain scikit-learn baseline on the text alone: TfidfVectorizer(char_wb 2-4)
   + LogisticRegression.
2. The images are read once, at ``--image-size`` pixels, through skmm's loader
   (``ImageEncoder("pixels", num_workers=2, on_error="warn")``); the clipart set
   holds one 623-megapixel picture above the default ``max_image_pixels``, which
   comes back as a missing image.
3. The image branch is trained once: skmm's SmallCNN (the ``"cnn"`` backbone)
   learns the image-only task from scratch (class-balanced loss, flips and shifts),
   its state dict is saved, and ``ImageEncoder("cnn", weights=<file>)`` then
   encodes every picture, frozen.  Out-of-fold: with ``--image-folds K`` > 1 the
   training rows are encoded by CNNs that never saw them (K-fold cross-fitting),
   so the fusion head does not learn to over-trust image features that are
   memorised on the training rows; the test rows are encoded by the CNN trained
   on all training rows.
4. The texts are encoded once: ``TextEncoder("tfidf")`` over char_wb 2-5 grams
   and word unigrams+bigrams, each reduced with TruncatedSVD.
5. Every fusion (concat, sum, gated, attention, bilinear, tensor, film, late)
   and the two ablations (fusion="image", fusion="text") are FusionClassifiers fed
   the encoded blocks as a DataFrame whose columns are named ``image__*`` /
   ``text__*`` (what a ColumnTransformer with ``set_output(transform="pandas")``
   gives), so the encoders' work is shared and each fusion trains only its head.

The table goes into BENCHMARKS.md (section "clipart") with this command line.
"""

import argparse
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
import torch.nn.functional as F
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks._report import command_line, write_section  # noqa: E402
from skmm import FusionClassifier, ImageEncoder, TextEncoder  # noqa: E402
from skmm.encoders.image import SmallCNN  # noqa: E402

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


# ---------------------------------------------------------------- image branch training


def _normalise(x):
    # the "cnn" backbone's own normalisation (ImageEncoder wraps it the same way)
    return (x.float() / 255.0 - 0.5) / 0.25


def _augment(x, generator):
    """uint8 (N, 3, S, S) -> normalised, randomly flipped and shifted (white padding) float images."""
    x = _normalise(x)
    flip = torch.rand(len(x), generator=generator) < 0.5
    x[flip] = x[flip].flip(-1)
    size = x.shape[-1]
    pad = max(1, size // 8)
    x = F.pad(x, (pad,) * 4, value=(1.0 - 0.5) / 0.25)
    i, j = torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist()
    return x[:, :, i : i + size, j : j + size]


def train_cnn(images, y, n_classes, *, channels, epochs, seed, batch_size=64, lr=3e-3):
    """Train skmm's SmallCNN (+ a linear head) on the image-only task; return the CNN."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        cnn = SmallCNN(channels)
        model = nn.Sequential(cnn, nn.Dropout(0.3), nn.Linear(cnn.out_dim, n_classes))
    weight = torch.tensor(compute_class_weight("balanced", classes=np.arange(n_classes), y=y), dtype=torch.float32)
    images, y = torch.from_numpy(images), torch.from_numpy(y)
    n = len(images)
    steps = epochs * ((n + batch_size - 1) // batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=generator)
        for k in range(0, n, batch_size):
            idx = perm[k : k + batch_size]
            loss = F.cross_entropy(model(_augment(images[idx], generator)), y[idx], weight=weight, label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return cnn.eval()


def cnn_encoder(cnn, path, args):
    torch.save(cnn.state_dict(), path)
    return ImageEncoder(
        "cnn", weights=path, image_size=args.image_size, device="cpu", batch_size=256,
        backbone_kwargs={"channels": tuple(args.channels)},
    )


def encode_images(train_px, test_px, y_train, n_classes, args, workdir):
    """Image features from a CNN trained once; out-of-fold on the training rows when folds > 1."""
    log(f"training the image CNN on {len(train_px)} pictures ({args.cnn_epochs} epochs, channels {args.channels})")
    cnn = train_cnn(train_px, y_train, n_classes, channels=args.channels, epochs=args.cnn_epochs, seed=args.seed)
    enc = cnn_encoder(cnn, os.path.join(workdir, "cnn_all.pt"), args).fit(train_px)
    test_f = enc.transform(test_px)
    if args.image_folds <= 1:
        return enc.transform(train_px), test_f
    train_f = np.zeros((len(train_px), test_f.shape[1]), dtype=np.float32)
    folds = StratifiedKFold(args.image_folds, shuffle=True, random_state=args.seed)
    for k, (fit_idx, out_idx) in enumerate(folds.split(train_px, y_train)):
        log(f"  out-of-fold CNN {k + 1}/{args.image_folds}")
        cnn_k = train_cnn(train_px[fit_idx], y_train[fit_idx], n_classes, channels=args.channels,
                          epochs=args.cnn_epochs, seed=args.seed + 1 + k)
        enc_k = cnn_encoder(cnn_k, os.path.join(workdir, f"cnn_fold{k}.pt"), args).fit(train_px[fit_idx])
        train_f[out_idx] = enc_k.transform(train_px[out_idx])
    return train_f, test_f


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "clipart"),
                    help="folder holding clipart.csv (built there by build.py when missing)")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--channels", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--cnn-epochs", type=int, default=20)
    ap.add_argument("--image-folds", type=int, default=0, help="K-fold cross-fitted image features (0: none)")
    ap.add_argument("--svd", type=int, default=256, help="SVD components of each text vectorizer")
    ap.add_argument("--epochs", type=int, default=30, help="max_epochs of every FusionClassifier")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the image reader uses 2 worker processes)")
    ap.add_argument("--fusions", nargs="+", default=FUSIONS)
    ap.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()

    train, test = load_data(args.data)
    classes, y_all = np.unique(pd.concat([train["label"], test["label"]]), return_inverse=True)
    y_train = np.searchsorted(classes, train["label"])
    log(f"{len(train)} train / {len(test)} test rows, {len(classes)} labels")
    rows = []

    # 1. the scikit-learn text baseline ----------------------------------------------------
    base = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)), LogisticRegression(max_iter=1000))
    t = time.perf_counter()
    base.fit(train["text"], train["label"])
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    pred = base.predict(test["text"])
    rows.append(("sklearn: TF-IDF char_wb 2-4 + LogisticRegression (text only)", *scores(test["label"], pred),
                 fit_s, time.perf_counter() - t))
    log(f"text baseline: acc {rows[-1][1]:.3f} macro-F1 {rows[-1][2]:.3f}")

    # 2. images, read once ------------------------------------------------------------------
    shared = {}
    t = time.perf_counter()
    reader = ImageEncoder("pixels", image_size=args.image_size, num_workers=2, on_error="warn", device="cpu")
    paths = pd.concat([train["image_path"], test["image_path"]], ignore_index=True).to_frame()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pixels, present = reader.fit(paths).encode(paths)
    lost = int((~present).sum())
    lost_msgs = [str(w.message) for w in caught if "could not be loaded" in str(w.message)]
    shared["read images"] = time.perf_counter() - t
    px = np.round(pixels * 255).astype(np.uint8).reshape(-1, 3, args.image_size, args.image_size)
    train_px, test_px = px[: len(train)], px[len(train):]
    log(f"read {len(px)} images in {shared['read images']:.0f}s; {lost} lost their image: {lost_msgs[:1]}")

    # 3. image branch trained once, used frozen ------------------------------------------------
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        img_train, img_test = encode_images(train_px, test_px, y_train, len(classes), args, workdir)
    # rows without a picture: zeros, like an encoder under on_error="warn"
    img_train[~present[: len(train)]] = 0.0
    img_test[~present[len(train):]] = 0.0
    shared["train + encode image CNN"] = time.perf_counter() - t
    log(f"image features {img_train.shape[1]} wide in {shared['train + encode image CNN']:.0f}s")

    # 4. texts encoded once ------------------------------------------------------------------------
    t = time.perf_counter()
    text_encoders = {
        "text_char": TextEncoder("tfidf", n_components=args.svd, random_state=args.seed, device="cpu",
                                 backbone_kwargs={"analyzer": "char_wb", "ngram_range": (2, 5), "min_df": 2}),
        "text_word": TextEncoder("tfidf", n_components=args.svd, random_state=args.seed, device="cpu",
                                 backbone_kwargs={"ngram_range": (1, 2), "min_df": 1}),
    }
    blocks_train, blocks_test = [], []
    for name, enc in text_encoders.items():
        enc.fit(train["text"])
        cols = [f"{name}__{i}" for i in range(enc.backbone_.out_dim)]
        blocks_train.append(pd.DataFrame(enc.transform(train["text"]), columns=cols))
        blocks_test.append(pd.DataFrame(enc.transform(test["text"]), columns=cols))
    shared["encode texts"] = time.perf_counter() - t
    cols = [f"image__{i}" for i in range(img_train.shape[1])]
    X_train = pd.concat([pd.DataFrame(img_train, columns=cols), *blocks_train], axis=1)
    X_test = pd.concat([pd.DataFrame(img_test, columns=cols), *blocks_test], axis=1)
    log(f"text features in {shared['encode texts']:.0f}s; fused input {X_train.shape[1]} columns")

    # 5. every fusion on the shared features --------------------------------------------------------
    for fusion in args.fusions:
        clf = FusionClassifier(
            fusion=fusion, class_weight="balanced", dim=128, hidden_dim=128, dropout=0.3, weight_decay=1e-2,
            max_epochs=args.epochs, batch_size=64, lr=1e-3, device="cpu", random_state=args.seed,
        )
        t = time.perf_counter()
        clf.fit(X_train, train["label"])
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        pred = clf.predict(X_test)
        rows.append((f"skmm FusionClassifier(fusion={fusion!r})", *scores(test["label"], pred),
                     fit_s, time.perf_counter() - t))
        log(f"{fusion:10s} acc {rows[-1][1]:.3f} macro-F1 {rows[-1][2]:.3f} fit {fit_s:.0f}s")

    total = time.perf_counter() - t_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    md = report(rows, shared, total, peak_mb, children_mb, lost, lost_msgs, args, len(train), len(test))
    print(md)
    if not args.no_write:
        write_section("clipart", md)
        log("wrote the clipart section of BENCHMARKS.md")


def report(rows, shared, total, peak_mb, children_mb, lost, lost_msgs, args, n_train, n_test):
    fused = [r for r in rows if "fusion=" in r[0] and not r[0].endswith(("'image')", "'text')"))]
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
        f"images read at {args.image_size} px; {lost} row(s) lost their image under on_error=\"warn\""
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
        "once and shared by all of them: " + ", ".join(f"{k} {v:.0f} s" for k, v in shared.items()) + ".",
        f"Whole run: {total / 60:.1f} min wall on a 2-core CPU shared with other jobs (no GPU); "
        f"peak RSS {peak_mb:.0f} MB (main process; image-reading workers {children_mb:.0f} MB).",
        "",
        "Configuration: image branch = skmm's SmallCNN "
        f"(channels {tuple(args.channels)}, {args.image_size} px) trained once on the image-only task for "
        f"{args.cnn_epochs} epochs (class-balanced, flips/shifts), then frozen as ImageEncoder(\"cnn\", weights=state "
        "dict)" + (f", training rows encoded out-of-fold ({args.image_folds} folds)" if args.image_folds > 1 else "")
        + f"; text = TF-IDF char_wb 2-5 and word 1-2 grams, each TruncatedSVD to {args.svd}; every FusionClassifier: "
        f"class_weight=\"balanced\", dim 128, dropout 0.3, weight_decay 1e-2, {args.epochs} epochs, seed {args.seed}.",
        "",
        f"Reference numbers for this split (issue 3): TF-IDF char 2-4 + LR {REFERENCE['text baseline'][0]:.3f} / "
        f"{REFERENCE['text baseline'][1]:.3f}; 24 px pixels + LR {REFERENCE['pixels24+LR'][0]:.3f} / "
        f"{REFERENCE['pixels24+LR'][1]:.3f}; both stacked naively {REFERENCE['naive stack'][0]:.3f} / "
        f"{REFERENCE['naive stack'][1]:.3f}.",
        "",
        "Targets:",
    ]
    if best is not None:
        ok = best[2] >= TARGET_F1
        lines.append(f"- best fusion macro-F1 >= {TARGET_F1:.3f} (text baseline + 0.05): "
                     f"{'met' if ok else 'NOT met'} ({best[0]}: {best[2]:.3f}; the baseline measured in this run: "
                     f"{rows[0][2]:.3f}).")
        if img is not None and txt is not None:
            beats = best[2] > img[2] and best[2] > txt[2] and best[1] > img[1] and best[1] > txt[1]
            lines.append(f"- best fusion beats both ablations (accuracy and macro-F1): {'met' if beats else 'NOT met'} "
                         f"(image only {img[1]:.3f} / {img[2]:.3f}, text only {txt[1]:.3f} / {txt[2]:.3f}).")
    lines.append(f"- whole benchmark under 20 min on 2 CPU cores: {'met' if total < 1200 else 'NOT met'} "
                 f"({total / 60:.1f} min).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
