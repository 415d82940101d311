"""Benchmark: wide tables (issue 12, point 8) -- reading every column against dropping one kind.

    python benchmarks/wide.py [--rows 800] [--clipart /tmp/clipart/data/clipart.csv] [--no-write]

1. Generated (:func:`skmm.datasets.make_wide_shapes`): the label is how many of five
   facts hold, one in each of two pictures (``front``, ``back``), a title, a
   price and a brand.  One ``FusionClassifier(columns=...)`` reads every column;
   four others drop one kind (the two image columns, the text, the number, the
   category).  Same encoders (frozen resized pixels shared by the image columns,
   TF-IDF for the text), same training settings, same seeds, train/test halves.
2. Clipart (``--clipart CSV``; skipped when the file is absent): the image and
   the text of each clip-art row, then the same model with the numeric columns a
   user would have (image width, height and file size, title length).  Both
   read the pictures through the same frozen encoder, so its features are
   computed once (cached) and the comparison is the columns alone; each is
   fitted with ``--seeds`` random states (mean, sd and every seed reported).

Every model of a part is fitted in this one run; the table (accuracy and macro-F1
on the held-out rows, fit seconds) goes into BENCHMARKS.md, section "wide".
"""

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.metrics import accuracy_score, f1_score

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.report import command_line, write_section  # noqa: E402
from skmm import FusionClassifier, ImageEncoder, TextEncoder  # noqa: E402
from skmm.datasets import make_wide_shapes  # noqa: E402

WIDE = {"front": "image", "back": "image", "title": "text", "price": "numeric", "brand": "categorical"}


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def model(columns, args, **params):
    settings = dict(
        columns=columns, image=ImageEncoder("pixels", image_size=args.image_size), text=TextEncoder("tfidf"),
        fusion="concat", dim=64, hidden_dim=64, max_epochs=args.epochs, lr=3e-3, batch_size=32,
        random_state=0, device="cpu",
    )
    settings.update(params)
    return FusionClassifier(**settings)


def evaluate(name, clf, train, test, y_train, y_test):
    t0 = time.perf_counter()
    clf.fit(train, y_train)
    seconds = time.perf_counter() - t0
    pred = clf.predict(test)
    row = {"model": name, "accuracy": accuracy_score(y_test, pred), "macro_f1": f1_score(y_test, pred, average="macro"),
           "fit_s": seconds}
    log(f"{name}: accuracy {row['accuracy']:.3f}, macro-F1 {row['macro_f1']:.3f}, fit {seconds:.1f} s")
    return row


def generated(args):
    df = make_wide_shapes(args.rows, random_state=0, image_size=32)
    half = len(df) // 2
    train, test = df.iloc[:half], df.iloc[half:]
    variants = {"every column": WIDE}
    for kind in ("image", "text", "numeric", "categorical"):
        variants[f"without {kind}"] = {c: r for c, r in WIDE.items() if r != kind}
    return [evaluate(name, model(cols, args), train, test, train["label"], test["label"])
            for name, cols in variants.items()]


def clipart_columns(df):
    """The numeric columns a user has for free: picture width, height, file size; title length."""
    sizes = []
    for path in df["image_path"]:
        try:
            with Image.open(path) as img:  # the header only: no decoding
                sizes.append(img.size)
        except Exception:  # unreadable: missing numbers, imputed by the model
            sizes.append((np.nan, np.nan))
    width, height = zip(*sizes)
    return df.assign(
        width=np.asarray(width, dtype=float), height=np.asarray(height, dtype=float),
        file_size=[os.path.getsize(p) if os.path.exists(p) else np.nan for p in df["image_path"]],
        title_length=df["text"].fillna("").str.len().astype(float),
    )


def clipart(args):
    df = clipart_columns(pd.read_csv(args.clipart))
    train, test = df[df["split"] == "train"], df[df["split"] == "test"]
    base = {"image_path": "image", "text": "text"}
    extra = {**base, "width": "numeric", "height": "numeric", "file_size": "numeric", "title_length": "numeric"}
    rows = []
    for name, cols in (("image + text", base), ("image + text + 4 numeric columns", extra)):
        runs = [
            evaluate(f"{name} (seed {seed})", model(cols, args, on_error="warn", max_epochs=args.clipart_epochs,
                                                     random_state=seed), train, test, train["label"], test["label"])
            for seed in range(args.seeds)
        ]
        row = {"model": name}
        for key in ("accuracy", "macro_f1", "fit_s"):
            values = [r[key] for r in runs]
            row[key], row[f"{key}_sd"], row[f"{key}_all"] = np.mean(values), np.std(values), values
        rows.append(row)
    return rows, (len(train), len(test))


def table(rows):
    lines = ["| model | accuracy | macro-F1 | fit (s) |", "|---|---|---|---|"]
    for r in rows:
        if "macro_f1_all" in r:  # several seeds: mean +- sd, and each seed's macro-F1
            seeds = ", ".join(f"{v:.3f}" for v in r["macro_f1_all"])
            lines.append(f"| {r['model']} | {r['accuracy']:.3f} +- {r['accuracy_sd']:.3f} | "
                         f"{r['macro_f1']:.3f} +- {r['macro_f1_sd']:.3f} ({seeds}) | {r['fit_s']:.1f} |")
        else:
            lines.append(f"| {r['model']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {r['fit_s']:.1f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=800)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument("--clipart", default="/tmp/clipart/data/clipart.csv")
    ap.add_argument("--clipart-epochs", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=3, help="clipart: models fitted per column set (random_state 0..n-1)")
    ap.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    args = ap.parse_args()
    load, t0 = os.getloadavg()[0], time.perf_counter()
    gen = generated(args)
    best_dropped = max(r["macro_f1"] for r in gen[1:])
    lines = [
        "## Wide tables: every column against dropping one kind (issue 12)", "", "```", command_line(), "```", "",
        f"Machine: 2 CPU cores shared with other jobs (load average {load:.1f} at the start), no GPU. "
        "Every model of a table was fitted in this one run, same encoders, settings and seeds.", "",
        f"Generated (`make_wide_shapes({args.rows})`, first half train, second half test; label = how many of "
        "5 facts hold, one per picture, title, price and brand). FusionClassifier(columns=...) with frozen "
        f"resized pixels ({args.image_size} px, shared by both image columns), TF-IDF, concat fusion, "
        f"{args.epochs} epochs:", "", table(gen), "",
        f"Every column: macro-F1 {gen[0]['macro_f1']:.3f}; best model without one kind: {best_dropped:.3f} "
        f"({'beats every one' if gen[0]['macro_f1'] > best_dropped else 'does NOT beat every one'}).",
    ]
    if args.clipart and os.path.exists(args.clipart):
        rows, (n_train, n_test) = clipart(args)
        deltas = np.subtract(rows[1]["macro_f1_all"], rows[0]["macro_f1_all"])
        lines += [
            "", f"Clipart ({n_train} train / {n_test} test rows, 15 classes; same encoders, "
            f"{args.clipart_epochs} epochs, {args.seeds} seeds each, mean +- sd): adding the numbers a user has "
            "for free (picture width, height, file size; title length) as numeric columns:", "", table(rows), "",
            f"Change in macro-F1 from the four numeric columns: {deltas.mean():+.3f} on average "
            f"(per seed: {', '.join(f'{d:+.3f}' for d in deltas)}).",
        ]
    else:
        lines += ["", f"Clipart: skipped ({args.clipart} not found)."]
    lines += ["", f"Whole run: {(time.perf_counter() - t0) / 60:.1f} min."]
    md = "\n".join(lines)
    print(md)
    if not args.no_write:
        write_section("wide", md)
        log("wrote the wide section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
