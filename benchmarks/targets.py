"""Every target kind, side by side in one run: calibration, multilabel, regression.

    python benchmarks/targets.py [--data /tmp/clipart/data/clipart.csv] [--quick]

Three sections of BENCHMARKS.md:

- ``targets-calibration``: FusionClassifier on clipart (15 top-level categories)
  with and without ``calibration="temperature"``, the same seed (the same net,
  only the temperature differs): accuracy, log-loss and expected calibration
  error (15 bins) of the test split.
- ``targets-multilabel``: each clipart row's labels are the folder names of its
  gallery path (``leaf`` split on "/"), keeping names with at least 20 training
  rows; FusionClassifier (threshold 0.5 and "tune") against one-vs-rest
  LogisticRegression on TF-IDF of the text; micro, macro and samples F1.
- ``targets-regression``: make_shapes with a numeric target made from the shape
  (seen only in the image) and the colour (named only in the caption) plus
  noise; FusionRegressor fused, image only and text only, and scikit-learn's
  Ridge on the concatenated encoder features; R² and MAE on held-out rows.

Encoders, cheap and pretrained-free: ``ImageEncoder("pixels", image_size=32)``
(frozen resized pixels) and ``TextEncoder("tfidf")`` (frozen), features cached
on disk (``cache_dir``), so every model of a section reads the same features.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_absolute_error, r2_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MultiLabelBinarizer, StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import command_line, write_section  # noqa: E402

from skmm import FusionClassifier, FusionRegressor, ImageEncoder, TextEncoder  # noqa: E402
from skmm.datasets import make_shapes  # noqa: E402
from skmm.estimators.calibration import expected_calibration_error  # noqa: E402

SEED = 0


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def encoders(cache):
    image = ImageEncoder("pixels", image_size=32, cache_dir=cache, on_error="warn", device="cpu")
    text = TextEncoder("tfidf", cache_dir=cache, device="cpu")
    return image, text


def head(cls, cache, epochs, **params):
    image, text = encoders(cache)
    return cls(image=image, text=text, image_col="image_path", text_col="text", dim=128, hidden_dim=128,
               max_epochs=epochs, lr=2e-3, batch_size=64, random_state=SEED, device="cpu", **params)


def calibration_section(train, test, cache, epochs):
    rows = []
    for name, calibration in (("uncalibrated (T = 1)", None), ('calibration="temperature"', "temperature")):
        start = time.perf_counter()
        clf = head(FusionClassifier, cache, epochs, validation_fraction=0.2, n_iter_no_change=epochs,
                   calibration=calibration).fit(train, train["label"])
        proba = clf.predict_proba(test)
        y = np.searchsorted(clf.classes_, test["label"])
        rows.append((name, clf.temperature_, accuracy_score(y, proba.argmax(axis=1)),
                     log_loss(y, proba, labels=range(len(clf.classes_))),
                     expected_calibration_error(y, proba), time.perf_counter() - start))
        log(f"calibration {name}: {rows[-1]}")
    lines = ["| model | T | accuracy | log-loss | ECE (15 bins) | fit s |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {n} | {t:.2f} | {a:.3f} | {ll:.3f} | {e:.3f} | {s:.0f} |" for n, t, a, ll, e, s in rows]
    (_, _, _, ll0, e0, _), (_, t1, _, ll1, e1, _) = rows
    return (
        f"## Temperature calibration on clipart\n\n`{command_line()}`\n\n"
        f"FusionClassifier (pixels 32 px + TF-IDF, frozen; {epochs} epochs, validation_fraction=0.2, "
        f"same seed: the same net) on {len(train)} training rows, scored on the {len(test)} test rows "
        f"({train['label'].nunique()} classes). The temperature ({t1:.2f}) is fitted on the validation rows "
        f"after training; predictions are unchanged.\n\n" + "\n".join(lines) +
        f"\n\nlog-loss after / before: {ll1 / ll0:.2f}; ECE after / before: {e1 / e0:.2f}. {TIMES}\n"
    )


def multilabel_section(train, test, cache, epochs):
    sets_train = [set(leaf.split("/")) for leaf in train["leaf"]]
    counts = pd.Series([label for s in sets_train for label in s]).value_counts()
    keep = sorted(counts[counts >= 20].index)
    binarizer = MultiLabelBinarizer(classes=keep)
    Y_train = pd.DataFrame(binarizer.fit_transform([s & set(keep) for s in sets_train]), columns=keep, index=train.index)
    Y_test = binarizer.transform([set(leaf.split("/")) & set(keep) for leaf in test["leaf"]])
    rows = []

    def score(name, pred, seconds):
        pred = np.asarray(pred)
        rows.append((name, *(f1_score(Y_test, pred, average=a, zero_division=0) for a in ("micro", "macro", "samples")),
                     seconds))
        log(f"multilabel {name}: {rows[-1]}")

    start = time.perf_counter()
    _, text = encoders(cache)
    baseline = make_pipeline(text, OneVsRestClassifier(LogisticRegression(max_iter=2000, C=10)))
    score("one-vs-rest LogisticRegression on TF-IDF (text)", baseline.fit(train["text"], Y_train).predict(test["text"]),
          time.perf_counter() - start)
    for threshold in (0.5, "tune"):
        start = time.perf_counter()
        clf = head(FusionClassifier, cache, epochs, threshold=threshold, validation_fraction=0.2,
                   n_iter_no_change=epochs).fit(train, Y_train)
        score(f"FusionClassifier concat, threshold={threshold!r}", clf.predict(test), time.perf_counter() - start)
    lines = ["| model | micro F1 | macro F1 | samples F1 | fit s |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {n} | {a:.3f} | {b:.3f} | {c:.3f} | {s:.0f} |" for n, a, b, c, s in rows]
    return (
        f"## Multilabel on clipart\n\n`{command_line()}`\n\n"
        f"Labels: the folder names of each row's gallery path (`leaf` split on \"/\"), the {len(keep)} names with "
        f"at least 20 training rows ({Y_train.to_numpy().sum(axis=1).mean():.2f} labels per training row). "
        f"{len(train)} training rows, {len(test)} test rows. FusionClassifier: pixels 32 px + TF-IDF, frozen, "
        f"{epochs} epochs, validation_fraction=0.2 (early stopping; \"tune\" picks each label's F1-best "
        "threshold on those rows). F1 by scikit-learn's f1_score with zero_division=0 (a test row left with no "
        f"kept label scores 0 in samples F1 whatever is predicted). {TIMES}\n\n" + "\n".join(lines) + "\n"
    )


def shapes_target(df, seed):
    colour, shape = df["label"].str.split("-", expand=True).T.to_numpy()
    value = np.array([{"circle": 1.0, "square": 4.0}[s] + {"red": 0.0, "blue": 2.0}[c] for c, s in zip(colour, shape)])
    return value + np.random.default_rng(seed).normal(0, 0.3, len(df))


def regression_section(cache, n, epochs):
    df = make_shapes(2 * n, random_state=SEED, image_size=32, directory=os.path.join(cache, "shapes"))
    train, test = df.iloc[:n], df.iloc[n:]
    y_train, y_test = shapes_target(train, 1), shapes_target(test, 2)
    X_train, X_test = train.drop(columns="label"), test.drop(columns="label")
    rows = []
    for fusion in ("concat", "image", "text"):
        start = time.perf_counter()
        image, text = encoders(cache)
        reg = FusionRegressor(image=image, text=text, fusion=fusion, dim=64, hidden_dim=64, max_epochs=epochs,
                              lr=3e-3, random_state=SEED, device="cpu").fit(X_train, y_train)
        pred = reg.predict(X_test)
        rows.append((f"FusionRegressor fusion={fusion!r}", r2_score(y_test, pred), mean_absolute_error(y_test, pred),
                     time.perf_counter() - start))
        log(f"regression {rows[-1]}")
    start = time.perf_counter()
    image, text = encoders(cache)
    features = [np.hstack([image.fit(X_train["image_path"]).transform(X["image_path"]),
                           text.fit(X_train["caption"]).transform(X["caption"])]) for X in (X_train, X_test)]
    ridge = make_pipeline(StandardScaler(), Ridge(alpha=10.0)).fit(features[0], y_train)
    pred = ridge.predict(features[1])
    rows.append(("Ridge on concatenated encoder features", r2_score(y_test, pred), mean_absolute_error(y_test, pred),
                 time.perf_counter() - start))
    log(f"regression {rows[-1]}")
    lines = ["| model | R² | MAE | fit s |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {r2:.3f} | {mae:.3f} | {s:.0f} |" for name, r2, mae, s in rows]
    return (
        f"## Regression needing both modalities\n\n`{command_line()}`\n\n"
        f"make_shapes ({n} training rows, {n} test rows, 32 px): target = 1 (circle) or 4 (square), seen only in "
        "the image, + 0 (red) or 2 (blue), named only in the caption, + N(0, 0.3) noise. Encoders: pixels 32 px "
        f"+ TF-IDF, frozen; FusionRegressor {epochs} epochs, squared error, target standardised.\n\n"
        + "\n".join(lines) + "\n"
    )


# fit seconds are of one run on a shared machine; a section's first model also encodes (and caches) the images
TIMES = ("fit s: wall seconds of fit, the section's first skmm model including the encoding of every image into "
         "the disk cache, on a shared 2-core machine (compare models, not runs).")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/clipart/data/clipart.csv")
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "skmm-targets-cache"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="a few hundred rows and epochs: checks the script runs")
    parser.add_argument("--no-write", action="store_true", help="print the sections instead of writing BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    df = pd.read_csv(args.data)
    train, test = df[df["split"] == "train"], df[df["split"] != "train"]
    n_shapes, epochs = 400, args.epochs
    if args.quick:
        train, test, n_shapes, epochs = train.sample(300, random_state=SEED), test.sample(120, random_state=SEED), 80, 3
    sections = {
        "targets-calibration": calibration_section(train, test, args.cache, epochs),
        "targets-multilabel": multilabel_section(train, test, args.cache, epochs),
        "targets-regression": regression_section(args.cache, n_shapes, epochs),
    }
    for name, markdown in sections.items():
        if args.no_write:
            print(markdown)
        else:
            write_section(name, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
