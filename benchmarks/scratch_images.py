"""What a from-scratch picture model adds to the text model (issue 15, point 3; BENCHMARKS.md, accuracy-scratch).

    python benchmarks/scratch_images.py ablation DATASET [--augment auto none light ...] [--seed 0]
    python benchmarks/scratch_images.py fused DATASET [--augment auto none photometric] [--seed 0]
    python benchmarks/scratch_images.py linear DATASET
    python benchmarks/scratch_images.py ceiling DATASET [--cache DIR]
    python benchmarks/scratch_images.py text DATASET
    (every part: [--ntrain 600] [--ntest 300] [--data DIR]; ablation and fused: [--param max_epochs=60 ...],
    more FusionClassifier parameters, as Python literals)

``ablation``: the image-only model trained from scratch (``FusionClassifier(
fusion="image", stacking=None, blend=None)``, the default CNN) once per
``ImageEncoder(augment=...)`` policy; macro-F1 on the test split, on the shifted
pictures, and on the *unaugmented training pictures* (how far the branch fits
its own rows), and the training loss of the first and last epoch.

``fused``: the from-scratch defaults (``FusionClassifier()``: CNN + GRU, stacked
TF-IDF + LogisticRegression, ``blend="auto"``) once per policy; macro-F1 on the
test split / pictures shifted / texts shifted, the blend's weight, and the
macro-F1 of the network's own uni-modal image head (what its image branch
predicts alone, read through ``net_.module_``), on the test split and the
shifted pictures.

``linear``: out-of-fold LogisticRegressions on the pictures (RGB pixels,
"silhouettes": each picture's luminance distance from its border's median,
scaled to a maximum of 1, which greyscaling or inverting leaves unchanged, at
16 and 32 px; and k-means features learned from the training pictures without
their labels, Coates & Ng 2011, at 32 px), combined with TF-IDF +
LogisticRegression(C=10) as ``a log p_text + b log p_image``, ``a`` and ``b``
fitted on the out-of-fold probabilities of every training row; macro-F1 on the
test split and with the pictures shifted, and, as an upper bound, with the
image's weight chosen on the test rows themselves.

``ceiling``: the same with LogisticRegressions on frozen ImageNet-pretrained
EfficientNet-Lite0 embeddings: what a picture model far better than any
trained from scratch here adds to the text model.

``text``: other linear text models beside TF-IDF + LogisticRegression(C=10)
(C = 3 and 30, character n-grams up to 5, ComplementNB, MultinomialNB) and
their log-linear combinations fitted the same way; macro-F1 on the test split.

The shifts are the suite's (benchmarks/accuracy_data.py): pictures greyscaled,
inverted and blurred; texts cut to their first word.
"""
import argparse
import ast
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.optimize import minimize  # noqa: E402
from scipy.special import log_softmax, softmax  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_predict  # noqa: E402
from sklearn.preprocessing import LabelEncoder  # noqa: E402
from skorch.helper import SliceDict  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from benchmarks import accuracy as A  # noqa: E402
from skmm import FusionClassifier, ImageEncoder  # noqa: E402


def macro_f1(y, pred):
    return f1_score(y, pred, average="macro")


def log(proba):
    """Log-probabilities, floored at 1e-6."""
    return np.log(np.clip(proba, 1e-6, None))


def targets(train, sets):
    """Class indices of the training and the test rows, and the 5 folds of the out-of-fold predictions."""
    enc = LabelEncoder().fit(train["label"])
    return enc.transform(train["label"]), enc.transform(sets["test"]["label"]), StratifiedKFold(5, shuffle=True, random_state=0)


def log_linear_weights(logs, y, start, upper):
    """Non-negative ``w`` minimising the log-loss of ``softmax(sum_k w_k logs[k])`` on the rows of ``y``."""
    def nll(w):
        return -log_softmax(sum(wk * lk for wk, lk in zip(w, logs)), axis=1)[np.arange(len(y)), y].mean()

    return minimize(nll, start, bounds=[(0, upper)] * len(logs)).x


def out_of_fold(model, x, y, cv, *others):
    """Log-probabilities of ``model``: out of fold on the training rows ``x``, then, refitted on all of them, of each of ``others``."""
    oof = log(cross_val_predict(model, x, y, cv=cv, method="predict_proba"))
    model.fit(x, y)
    return (oof, *(log(model.predict_proba(o)) for o in others))


def image_head_proba(clf, inputs):
    """Probabilities of the fitted network's uni-modal image head on ``inputs`` (``clf.model_inputs(X)``)."""
    inputs = SliceDict(**{k: np.asarray(v) for k, v in inputs.items()})
    module = clf.net_.module_
    i = module.modalities.index("image")
    head = module.unimodal_heads[module.unimodal.index(i)]
    forward = module.forward
    module.forward = lambda **inp: head(module.embed(**inp)[i])
    try:
        logits = clf.net_.forward(inputs, training=False).float().cpu().numpy()
    finally:
        module.forward = forward
    return softmax(logits.astype(np.float64), axis=1)


def ablation(args, sets, train):
    X, y = train.drop(columns="label"), train["label"]
    for augment in args.augment:
        start = time.time()
        clf = FusionClassifier(image=ImageEncoder(augment=augment), fusion="image", stacking=None, blend=None,
                               on_error="warn", random_state=args.seed, **args.params).fit(X, y)
        scores = {k: macro_f1(d["label"], clf.predict(d.drop(columns="label"))) for k, d in sets.items()
                  if k != "text shifted"}
        loss = clf.net_.history[:, "train_loss"]
        print(f"{args.dataset} image-only augment={augment!r} {args.params or ''}: test {scores['test']:.3f} pictures shifted "
              f"{scores['image shifted']:.3f} training pictures {macro_f1(y, clf.predict(X)):.3f} | train loss "
              f"{loss[0]:.2f} -> {loss[-1]:.2f} | {time.time() - start:.0f} s", flush=True)


def fused(args, sets, train):
    X, y = train.drop(columns="label"), train["label"]
    for augment in args.augment:
        start = time.time()
        clf = FusionClassifier(image=ImageEncoder(augment=augment), on_error="warn", random_state=args.seed,
                               **args.params).fit(X, y)
        scores, heads = {}, {}
        for k, d in sets.items():
            inputs = clf.model_inputs(d.drop(columns="label"))  # the pictures are read once for both
            scores[k] = macro_f1(d["label"], clf.classes_[clf.proba_from_inputs(inputs).argmax(1)])
            if k != "text shifted":
                heads[k] = macro_f1(d["label"], clf.classes_[image_head_proba(clf, inputs).argmax(1)])
        print(f"{args.dataset} fused augment={augment!r} {args.params or ''}: " + " / ".join(f"{v:.3f}" for v in scores.values())
              + f" (test / pictures shifted / texts shifted) | blend weight {clf.blend_weight_:.2f} | image head "
              f"{heads['test']:.3f} / {heads['image shifted']:.3f} | {time.time() - start:.0f} s", flush=True)


def silhouettes(pixels, size):
    """Each picture's luminance distance from the median of its border pixels, scaled to a maximum of 1."""
    x = pixels.reshape(len(pixels), 3, size, size)
    lum = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    border = np.concatenate([lum[:, 0, :], lum[:, -1, :], lum[:, :, 0], lum[:, :, -1]], axis=1)
    f = np.abs(lum - np.median(border, axis=1)[:, None, None])
    f /= np.maximum(f.reshape(len(f), -1).max(axis=1), 1e-3)[:, None, None]
    return f.reshape(len(f), -1)


def kmeans_features(train_pixels, size, k=256, patch=6, seed=0, samples=100_000):
    """Coates & Ng's single-layer k-means features, learned from the training pictures without their labels.

    Each ``patch`` x ``patch`` window (every position) is normalised to zero mean and unit variance and
    whitened (PCA); ``k`` centroids come from MiniBatchKMeans on ``samples`` random windows of the training
    pictures.  A picture's features are the "triangle" activations ``max(0, mean distance - distance)`` of
    its windows, summed over its four quadrants (``4 k`` values).  Returns the function that computes
    them from flat RGB pixels.
    """
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import PCA

    def view(pixels):  # n, h, w, 3, patch, patch: every window, a view (nothing copied)
        x = np.asarray(pixels, dtype=np.float32).reshape(len(pixels), 3, size, size)
        return np.lib.stride_tricks.sliding_window_view(x, (patch, patch), axis=(2, 3)).transpose(0, 2, 3, 1, 4, 5)

    def normalised(w):
        w = w.reshape(*w.shape[:-3], -1)
        w = w - w.mean(axis=-1, keepdims=True)
        return w / np.sqrt(w.var(axis=-1, keepdims=True) + 0.01)

    rng = np.random.default_rng(seed)
    train = view(train_pixels)
    n, h, w = train.shape[:3]
    # only the drawn windows are copied: all of them would be 1 GB for 3,158 pictures at 32 px
    drawn = normalised(train[rng.integers(0, n, samples), rng.integers(0, h, samples), rng.integers(0, w, samples)])
    pca = PCA(random_state=seed).fit(drawn)

    def whiten(x):  # PCA whitening, its small directions damped (ZCA's epsilon; rotations keep the distances)
        return pca.transform(x) / np.sqrt(pca.explained_variance_ + 0.01)

    centroids = MiniBatchKMeans(k, random_state=seed, n_init=1, batch_size=4096).fit(whiten(drawn)).cluster_centers_

    def features(pixels):
        out = []
        for start in range(0, len(pixels), 128):
            win = normalised(view(pixels[start:start + 128]))
            m, h, w, d = win.shape
            z = whiten(win.reshape(-1, d))
            dist = np.sqrt(np.maximum((z ** 2).sum(1)[:, None] - 2 * z @ centroids.T + (centroids ** 2).sum(1), 0))
            act = np.maximum(dist.mean(axis=1, keepdims=True) - dist, 0).reshape(m, h, w, k)
            out.append(np.concatenate([q.sum(axis=(1, 2)) for half in np.array_split(act, 2, axis=1)
                                       for q in np.array_split(half, 2, axis=2)], axis=1))
        return np.concatenate(out)

    return features


def beside_text(args, sets, train, image_models):
    """Each image model stacked beside TF-IDF + LogisticRegression(C=10); one line of scores per model.

    ``image_models``: ``{name: (features, Cs)}``, ``features`` with "train", "test" and "shifted" rows.
    The combination is ``a log p_text + b log p_image``, ``a`` and ``b`` fitted on the out-of-fold
    probabilities of every training row.
    """
    y, y_test, cv = targets(train, sets)

    def score(z):
        return macro_f1(y_test, z.argmax(1))

    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        oof_text, p_text = out_of_fold(A.tfidf_lr(), train["text"].to_numpy(), y, cv, sets["test"]["text"].to_numpy())
        print(f"{args.dataset} TF-IDF + LR(C=10): test {score(p_text):.3f}", flush=True)
        for name, (feats, Cs) in image_models.items():
            for C in Cs:
                oof, p, p_shift = out_of_fold(A.scaled_lr(C), feats["train"], y, cv, feats["test"], feats["shifted"])
                a, b = log_linear_weights([oof_text, oof], y, [1.0, 0.3], 10)
                # an upper bound: the image's weight chosen on the test rows themselves
                oracle = max(score(p_text + c * p) for c in np.linspace(0, 1.5, 31))
                print(f"  + LR({C}) on {name}: image alone {score(p):.3f} (shifted {score(p_shift):.3f}) | a {a:.2f} "
                      f"b {b:.2f} | test {score(a * p_text + b * p):.3f} pictures shifted "
                      f"{score(a * p_text + b * p_shift):.3f} | best weight on the test rows {oracle:.3f}", flush=True)


def pictures(encoder, train, sets):
    """``encoder`` fitted on the training pictures; its features of the training, test and shifted rows."""
    encoder.fit(train[["image_path"]])
    return {k: encoder.transform(d[["image_path"]]) for k, d in
            (("train", train), ("test", sets["test"]), ("shifted", sets["image shifted"]))}


def linear(args, sets, train):
    pixels = {size: pictures(ImageEncoder("pixels", image_size=size, on_error="warn"), train, sets) for size in (16, 32)}
    models = {f"pixels {s} px": (pixels[s], (0.003, 0.01, 0.03)) for s in (16, 32)}
    models.update({f"silhouettes {s} px": ({k: silhouettes(v, s) for k, v in pixels[s].items()}, (0.003, 0.01, 0.03))
                   for s in (16, 32)})
    kmeans = kmeans_features(pixels[32]["train"], 32, seed=args.seed)
    models["k-means features 32 px"] = ({k: kmeans(v) for k, v in pixels[32].items()}, (0.003, 0.01, 0.03, 0.1))
    beside_text(args, sets, train, models)


def ceiling(args, sets, train):
    """The same stacking with a frozen ImageNet-pretrained EfficientNet-Lite0: what a far better picture model adds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feats = pictures(A.pretrained_encoders(args.cache)[0], train, sets)
    beside_text(args, sets, train, {"frozen EfficientNet-Lite0 embeddings": (feats, (0.01, 0.1, 1.0))})


def text_models(args, sets, train):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import ComplementNB, MultinomialNB
    from sklearn.pipeline import make_pipeline, make_union

    def union(longest=4):
        return make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, longest), sublinear_tf=True))

    models = {"LR(C=10)": A.tfidf_lr(), "LR(C=3)": make_pipeline(union(), LogisticRegression(C=3, max_iter=3000)),
              "LR(C=30)": make_pipeline(union(), LogisticRegression(C=30, max_iter=3000)),
              "LR(C=10), chars 2-5": make_pipeline(union(5), LogisticRegression(C=10, max_iter=3000)),
              "ComplementNB": make_pipeline(union(), ComplementNB(alpha=0.3)),
              "MultinomialNB": make_pipeline(union(), MultinomialNB(alpha=0.1))}
    y, y_test, cv = targets(train, sets)
    oof, proba = {}, {}
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        for name, model in models.items():
            oof[name], proba[name] = out_of_fold(model, train["text"].to_numpy(), y, cv, sets["test"]["text"].to_numpy())
            print(f"{args.dataset} {name}: test {macro_f1(y_test, proba[name].argmax(1)):.3f}", flush=True)
    for names in (["LR(C=10)", "ComplementNB"], ["LR(C=10)", "MultinomialNB"], ["LR(C=10)", "LR(C=3)", "LR(C=30)"],
                  ["LR(C=10)", "ComplementNB", "MultinomialNB"]):
        a = log_linear_weights([oof[n] for n in names], y, [0.5] * len(names), 20)
        z = sum(w * proba[n] for w, n in zip(a, names))
        print(f"{args.dataset} {' x '.join(names)} (weights {np.round(a, 2).tolist()}): test "
              f"{macro_f1(y_test, z.argmax(1)):.3f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("part", choices=["ablation", "fused", "linear", "ceiling", "text"])
    ap.add_argument("dataset")
    ap.add_argument("--augment", nargs="+", default=["auto", "none"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ntrain", type=int, default=600)
    ap.add_argument("--ntest", type=int, default=300)
    ap.add_argument("--data", default=os.path.expanduser("~/.cache/skmm-bench/data"))
    ap.add_argument("--param", nargs="+", default=[], metavar="KEY=VALUE")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/skmm-bench/embeddings"),
                    help="ceiling: cache_dir of the frozen image encoder (accuracy.py's --cache)")
    args = ap.parse_args()
    args.params = {k: ast.literal_eval(v) for k, v in (p.split("=", 1) for p in args.param)}
    torch.set_num_threads(1)
    sets = A.suite_sets(args.dataset, args.data, args.ntrain, args.ntest)
    train = sets.pop("train")
    {"ablation": ablation, "fused": fused, "linear": linear, "ceiling": ceiling, "text": text_models}[args.part](args, sets, train)


if __name__ == "__main__":
    main()
