"""Variants of skmm's configurations on one data set of the accuracy suite, beside its scikit-learn baselines.

    python benchmarks/accuracy_variants.py DATASET CONFIG [CONFIG ...] [--seeds 0 1 2] [--ntrain N] [--ntest N]
        [--baselines] [--data DIR] [--cache DIR]

The script the defaults of FusionClassifier (stacking, modality_dropout, the README's
clipart configuration) were chosen with; CONFIG names a key of ``CONF`` below, and the
environment variable EXTRA may hold Python that adds keys to it (e.g.
``EXTRA='CONF["ls"] = lambda s: FusionClassifier(label_smoothing=0.1, random_state=s)'``).
Prints one line per configuration: macro-F1 on the test split, with pictures shifted
and with texts shifted (mean and standard deviation over the seeds), seconds per fit
and the load average.  The results quoted in BENCHMARKS.md's accuracy summary say
which command gave them.
"""
import argparse, os, sys, time, warnings
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np, torch
from benchmarks import accuracy as A
from skmm import FusionClassifier, ImageEncoder, TextEncoder  # noqa: F401 - for configurations given in EXTRA
from sklearn.base import clone
from sklearn.metrics import f1_score

ap = argparse.ArgumentParser()
ap.add_argument("dataset"); ap.add_argument("configs", nargs="+")
ap.add_argument("--seeds", type=int, nargs="+", default=[0])
ap.add_argument("--ntrain", type=int, default=600); ap.add_argument("--ntest", type=int, default=300)
ap.add_argument("--baselines", action="store_true")
ap.add_argument("--data", default=os.path.expanduser("~/.cache/skmm-bench/data"))
ap.add_argument("--cache", default=os.path.expanduser("~/.cache/skmm-bench/embeddings"))
args = ap.parse_args()
torch.set_num_threads(2)
root, cache = args.data, args.cache
os.makedirs(cache, exist_ok=True)
sets = A.suite_sets(args.dataset, root, args.ntrain, args.ntest)
train, test = sets["train"], sets["test"]
img, txt = A.pretrained_encoders(cache)
img.fit(train[["image_path"]]); txt.fit(train[["text"]])
classes = np.unique(train["label"]); y = test["label"].to_numpy()
f1 = lambda p: f1_score(y, classes[np.argmax(p, 1)], average="macro")
if args.baselines:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feats = A.features(sets, (img, txt))
    for name, pr in A.baselines(sets, feats, train["label"].to_numpy()).items():
        print(f"{name:60s} " + " ".join(f"{f1(pr[v]):.3f}" for v in A.VARIANTS), flush=True)
CONF = {
  "scratch": lambda s: FusionClassifier(on_error="warn", random_state=s),
  "scratch-nostack": lambda s: FusionClassifier(on_error="warn", random_state=s, stacking=None),
  "scratch-noblend": lambda s: FusionClassifier(on_error="warn", random_state=s, blend=None),
  "scratch-text": lambda s: FusionClassifier(fusion="text", on_error="warn", random_state=s),
  "scratch-image": lambda s: FusionClassifier(fusion="image", on_error="warn", random_state=s),
  "frozen": lambda s: FusionClassifier(image=img, text=txt, random_state=s),
  "frozen-nostack": lambda s: FusionClassifier(image=img, text=txt, random_state=s, stacking=None),
  "frozen-text": lambda s: FusionClassifier(image=img, text=txt, fusion="text", random_state=s),
  "frozen-image": lambda s: FusionClassifier(image=img, text=txt, fusion="image", random_state=s),
  "frozen-late": lambda s: FusionClassifier(image=img, text=txt, fusion="late", random_state=s),
  "frozen-gated": lambda s: FusionClassifier(image=img, text=txt, fusion="gated", random_state=s),
  "frozen-md4": lambda s: FusionClassifier(image=img, text=txt, modality_dropout=0.4, random_state=s),
  "frozen-md3": lambda s: FusionClassifier(image=img, text=txt, modality_dropout=0.3, random_state=s),
  "frozen-ul3": lambda s: FusionClassifier(image=img, text=txt, unimodal_loss=3.0, random_state=s),
  "frozen-tfidf": lambda s: FusionClassifier(image=img, text="tfidf", random_state=s),
  # without the photometric views of the training pictures (the default before them; BENCHMARKS accuracy-views)
  "frozen-noviews": lambda s: FusionClassifier(image=clone(img).set_params(augment=None), text=txt, random_state=s),
  "frozen-image-noviews": lambda s: FusionClassifier(image=clone(img).set_params(augment=None), text=txt,
                                                     fusion="image", random_state=s),
  # the trainable CNN's augmentation before "light+photometric"
  "scratch-light": lambda s: FusionClassifier(image=ImageEncoder("cnn", augment="light"), on_error="warn",
                                              random_state=s),
}
extra = os.environ.get("EXTRA")
if extra:
    exec(extra)
cols = ["image_path", "text"]
for name in args.configs:
    res = {v: [] for v in A.VARIANTS}; secs = []
    for s in args.seeds:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = CONF[name](s).fit(train[cols], train["label"])
            secs.append(time.perf_counter() - t)
            for v in A.VARIANTS:
                res[v].append(f1(m.predict_proba(sets[v][cols])))
    print(f"skmm {name:55s} " + " ".join(f"{np.mean(res[v]):.3f}±{np.std(res[v]):.3f}" for v in A.VARIANTS)
          + f"  {np.mean(secs):.0f}s  load {os.getloadavg()[0]:.1f}", flush=True)
