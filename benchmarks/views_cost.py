"""What the augmented views of frozen pictures cost (``ImageEncoder(augment="auto")`` on a frozen encoder).

    python benchmarks/views_cost.py [--rows 200] [--data DIR]

Side by side in one run, on ``--rows`` clipart training pictures through the frozen
EfficientNet-Lite0 of benchmarks/accuracy.py, without any cache: encoding the plain
pictures (what every frozen fit pays once) against encoding one photometric view
of each (what the views add, once; later fits read both from the cache); then the
fit of FusionClassifier on the cached features with views against without (the
same number of rows; half of them read the cached views).  Interleaved, best of ``--repeat``; prints ratios.
"""
import argparse, os, sys, tempfile, time, warnings
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch
from sklearn.base import clone
from benchmarks import accuracy as A, accuracy_data
from skmm import FusionClassifier

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=200); ap.add_argument("--repeat", type=int, default=2)
ap.add_argument("--data", default=os.path.expanduser("~/.cache/skmm-bench/data"))
args = ap.parse_args()
torch.set_num_threads(2)
train, _ = accuracy_data.load("clipart", args.data)
train = A.subsample(train, args.rows)
cache = tempfile.mkdtemp(prefix="skmm-views-")
img, txt = A.pretrained_encoders(cache)
plain = clone(img).set_params(cache=False).fit(train[["image_path"]])
views = plain.as_branch().views
times = {"encode plain": [], "encode one view": []}
for _ in range(args.repeat):
    t = time.perf_counter(); plain.transform(train[["image_path"]]); times["encode plain"].append(time.perf_counter() - t)
    t = time.perf_counter(); plain.augmented_features(train[["image_path"]], views)
    times["encode one view"].append(time.perf_counter() - t)
cols = ["image_path", "text"]
fits = {"fit, views (default)": [], "fit, augment=None": []}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for name, image in (("fit, views (default)", img), ("fit, augment=None", clone(img).set_params(augment=None))):
        FusionClassifier(image=image, text=txt, random_state=0).fit(train[cols], train["label"])  # fills the cache
    for _ in range(args.repeat):
        for name, image in (("fit, views (default)", img), ("fit, augment=None", clone(img).set_params(augment=None))):
            t = time.perf_counter()
            FusionClassifier(image=image, text=txt, random_state=0).fit(train[cols], train["label"])
            fits[name].append(time.perf_counter() - t)
best = {k: min(v) for k, v in {**times, **fits}.items()}
for k, v in best.items():
    print(f"{k:28s} {v:7.2f} s", flush=True)
print(f"views' encoding / plain encoding: {best['encode one view'] / best['encode plain']:.2f}")
print(f"fit on cached features, views / none: {best['fit, views (default)'] / best['fit, augment=None']:.2f}")
print(f"load {os.getloadavg()[0]:.1f}")
