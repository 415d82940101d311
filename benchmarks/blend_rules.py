"""How blend="auto" picks its weight: the sharpness fitted beside it, against the sharpness fixed at 1.

    python benchmarks/blend_rules.py DATASET [--seeds 0 1 2] [--ntrain N] [--ntest N] [--data DIR]

Fits ``FusionClassifier()`` (the from-scratch defaults: CNN + GRU, stacked TF-IDF +
LogisticRegression, ``blend="auto"``) once per seed, keeps the held-out rows the
blend is chosen on, and applies both rules to the same fitted network and the same
rows, side by side:

* ``s = 1`` (the rule before): ``p ∝ p_net^w p_text^(1-w)``, the smallest ``w``
  whose held-out log-loss is within one standard error of the lowest;
* ``s fitted`` (the library's rule, ``skmm.estimators.blend.fit_blend_weight``):
  ``p ∝ (p_net^w p_text^(1-w))^s``, each ``w`` at its best ``s``, then the same
  one-standard-error rule.

Prints, per seed and rule, the weight, the sharpness, and macro-F1 on the test
split, with pictures shifted and with texts shifted (the suite's shifts), and the
test log-loss; then the means over the seeds beside TF-IDF + LogisticRegression(C=10)
on the text and the soft vote of it with a LogisticRegression on 16x16 pixels.
"""
import argparse, os, sys, warnings
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np, torch
from benchmarks import accuracy as A
from skmm import FusionClassifier
from skmm.estimators import blend as B
from sklearn.metrics import f1_score

ap = argparse.ArgumentParser()
ap.add_argument("dataset")
ap.add_argument("--seeds", type=int, nargs="+", default=[0])
ap.add_argument("--ntrain", type=int, default=600); ap.add_argument("--ntest", type=int, default=300)
ap.add_argument("--data", default=os.path.expanduser("~/.cache/skmm-bench/data"))
args = ap.parse_args()
torch.set_num_threads(1)
sets = A.suite_sets(args.dataset, args.data, args.ntrain, args.ntest)
train = sets.pop("train")
test = sets["test"]


def fixed_scale_rule(p_net, p_linear, y):
    """The rule before: the sharpness fixed at 1, the smallest weight within one SE of the lowest log-loss."""
    rows = np.arange(len(y))
    per_row = np.array([-np.log(np.clip(B.blend_probabilities(p_net, p_linear, w)[rows, y], 1e-300, None))
                        for w in B.BLEND_GRID])
    return float(B.BLEND_GRID[B.kept_weight_index(per_row)]), 1.0

held = {}
library_rule = B.fit_blend_weight


def keeping(p_net, p_linear, y):  # what the fit chooses on, kept to apply both rules to
    held.update(p_net=p_net, p_linear=p_linear, y=y)
    return library_rule(p_net, p_linear, y)


B.fit_blend_weight = keeping
rules = {"s = 1 (before)": fixed_scale_rule, "s fitted (default)": library_rule}
scores = {r: [] for r in rules}
for seed in args.seeds:
    clf = FusionClassifier(on_error="warn", random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(train.drop(columns="label"), train["label"])
    proba = {}
    for name, d in sets.items():
        X = d.drop(columns="label")
        clf.blend_weight_, clf.blend_scale_ = 1.0, 1.0
        p_net = clf.predict_proba(X)
        clf.blend_weight_, clf.blend_scale_ = 0.0, 1.0
        proba[name] = (p_net, clf.predict_proba(X))
    for rule, choose in rules.items():
        w, s = choose(held["p_net"], held["p_linear"], held["y"])
        f1 = [f1_score(d["label"], clf.classes_[B.blend_probabilities(*proba[n], w, s).argmax(1)], average="macro")
              for n, d in sets.items()]
        y = np.searchsorted(clf.classes_, test["label"].to_numpy())
        loss = -np.log(B.blend_probabilities(*proba["test"], w, s)[np.arange(len(y)), y]).mean()
        scores[rule].append(f1)
        print(f"{args.dataset} seed {seed} {rule:20s} w {w:.2f} s {s:.2f}  macro-F1 test / pictures shifted / "
              f"texts shifted {f1[0]:.3f} / {f1[1]:.3f} / {f1[2]:.3f}  test log-loss {loss:.3f}", flush=True)
for rule, rows in scores.items():
    r = np.array(rows)
    print(f"{args.dataset} {rule:20s} mean over {len(r)} seeds " + " / ".join(
        f"{m:.3f} ± {sd:.3f}" for m, sd in zip(r.mean(0), r.std(0))))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    base = A.baselines({"train": train, **sets}, A.features({"train": train, **sets}, None), train["label"].to_numpy())
classes = np.unique(train["label"])
for key in ("sklearn TF-IDF + LR(C=10) (text)", "sklearn soft vote: TF-IDF LR + pixels LR"):
    print(f"{args.dataset} {key:40s} " + " / ".join(
        f"{f1_score(d['label'], classes[np.argmax(base[key][n], 1)], average='macro'):.3f}" for n, d in sets.items()))
