"""How fast skmm encodes images, measured side by side against the obvious alternatives.

Figures (each printed as a ratio, with the seconds behind it):

a. ``ImageEncoder("timm:<model>")`` vs a naive per-image loop (Pillow open,
   convert, resize, to tensor, the same module on a batch of one);
b. the same ImageEncoder vs embetter's ``ImageLoader`` + ``TimmEncoder``
   pipeline with the same timm model (random weights on both sides), at the
   float32 default and with ``precision="bfloat16"`` (bf16 autocast, which
   CPUs with AMX / AVX512-BF16 run several times faster);
c. ``GridSearchCV`` over 4 fusion strategies x 3 folds with frozen encoders,
   embedding cache on vs off (and whether ``mean_test_score`` is identical);
d. the second transform of the same images (cache hit) vs the first;
e. peak memory while encoding every row, in a fresh process.

Run on the clipart images (``--data DIR``, the directory holding
``clipart.csv``) and on a generated set of larger JPEG/PNG files (always)::

    python benchmarks/speed.py --data /work/data/clipart

The table goes into the "speed" section of BENCHMARKS.md.
"""

import argparse
import atexit
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

FUSIONS = ["concat", "gated", "attention", "late"]
GIB = 1 << 30

# Targets of issue 4: (figure, "ratio" at least / "bytes" at most)
TARGETS = {"b": 3.0, "c": 5.0, "d": 50.0, "e": 2 * GIB}


def register_timm():
    """Make ``timm:<name>`` resolvable even where the plugin is not wired into the registry yet."""
    from skmm.registry import image_backbones, lazy

    if "timm" not in image_backbones:
        image_backbones.register("timm", lazy("skmm.backbones.timm", "image_backbone"))


# ----------------------------------------------------------------------------- data


def load_clipart(directory):
    df = pd.read_csv(os.path.join(directory, "clipart.csv"))
    return df[["image_path", "text", "label"]].reset_index(drop=True)


def make_generated(directory, n, seed=0):
    """Shapes data set redrawn as larger photos and clipart: half RGB JPEG, half RGBA PNG, 640-2000 px."""
    from skmm.datasets import make_shapes

    small = make_shapes(n, random_state=seed, directory=os.path.join(directory, "small"), image_size=64)
    rng = np.random.RandomState(seed)
    rows = []
    for i, row in small.iterrows():
        w, h = (int(v) for v in rng.randint(640, 2001, size=2))
        img = Image.open(row["image_path"]).convert("RGB").resize((w, h), Image.Resampling.BILINEAR)
        noise = rng.randint(0, 24, size=(h, w, 1), dtype=np.uint8)
        pixels = np.clip(np.asarray(img, dtype=np.int16) + noise - 12, 0, 255).astype(np.uint8)
        if i % 2:
            alpha = np.full((h, w, 1), 255, np.uint8)
            alpha[: h // 8] = 0  # a transparent band, as clipart has
            path = os.path.join(directory, f"img{i:05d}.png")
            Image.fromarray(np.concatenate([pixels, alpha], axis=2), "RGBA").save(path, compress_level=1)
        else:
            path = os.path.join(directory, f"img{i:05d}.jpg")
            Image.fromarray(pixels).save(path, quality=90)
        rows.append({"image_path": path, "text": row["caption"], "label": row["label"]})
    return pd.DataFrame(rows)


def loadable_by_pillow(paths):
    """Paths Pillow opens with its default decompression-bomb limit (the naive and embetter sides use it)."""
    keep = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p in paths:
            try:
                with Image.open(p) as img:
                    if img.width * img.height <= 2 * Image.MAX_IMAGE_PIXELS:
                        keep.append(p)
            except Exception:  # noqa: BLE001 - unreadable files are simply not in the subset
                pass
    return keep


# --------------------------------------------------------------------------- timing


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def best_of(repeats, fn):
    return min(timed(fn)[0] for _ in range(repeats))


def naive_loop(paths, module, size, mean, std):
    """What one writes first: one file, one resize, one forward at a time."""
    mean = torch.tensor(mean).view(3, 1, 1)
    std = torch.tensor(std).view(3, 1, 1)
    module.eval()
    out = []
    with torch.inference_mode():
        for path in paths:
            img = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().div_(255)
            out.append(module(((x - mean) / std)[None])[0].numpy())
    return np.stack(out)


def embetter_pipeline(name):
    """embetter's ColumnGrabber -> ImageLoader -> TimmEncoder, with random weights (nothing downloads)."""
    import timm
    from embetter.grab import ColumnGrabber
    from embetter.vision import ImageLoader, TimmEncoder
    from sklearn.pipeline import make_pipeline

    original = timm.create_model

    def create_model(model_name, pretrained=False, **kwargs):
        return original(model_name, pretrained=False, **kwargs)

    timm.create_model = create_model
    try:
        torch.manual_seed(0)
        return make_pipeline(ColumnGrabber("image_path"), ImageLoader(convert="RGB"), TimmEncoder(name))
    finally:
        timm.create_model = original


def run_embetter(pipe, df, chunk):
    # ImageLoader holds every image at full size; chunks keep 169-megapixel
    # clipart from filling the shared machine's memory.
    # The steps are called one after the other, as Pipeline.transform would:
    # scikit-learn 1.9's Pipeline refuses embetter's steps as "not fitted"
    # (they have no fitted attributes).
    def transform(part):
        for _, step in pipe.steps:
            part = step.transform(part)
        return part

    return np.concatenate([transform(df.iloc[i : i + chunk]) for i in range(0, len(df), chunk)])


class ThreadProbe:
    """Records torch's intra-op thread count at every forward of a module (run in this process)."""

    def __init__(self, *modules):
        self.seen = set()
        self.handles = [m.register_forward_pre_hook(self._hook) for m in modules]

    def _hook(self, module, args):
        self.seen.add(torch.get_num_threads())

    def take(self):
        seen, self.seen = sorted(self.seen), set()
        return seen


def breakdown(paths, module, size, mean, std, module_bf16=None):
    """Where the time goes, each part alone, serially in this process: decoding and the model."""
    from skmm.io.images import load_image

    def naive_decode(path):
        img = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(img)

    # Each part is timed twice and the shorter time kept: other jobs on a
    # shared machine only ever add time.
    t_naive_decode = best_of(2, lambda: [naive_decode(p) for p in paths])
    t_skmm_decode = best_of(2, lambda: [load_image(p, size) for p in paths])
    pixels = np.stack([load_image(p, size) for p in paths])
    per_file = sorted(((timed(lambda p=p: load_image(p, size))[0], p) for p in paths), reverse=True)
    slowest = per_file[0][1]
    t_slowest_naive, _ = timed(lambda: naive_decode(slowest))
    x = (torch.from_numpy(pixels).float().div_(255) - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(
        std
    ).view(1, 3, 1, 1)
    module.eval()
    with torch.inference_mode():
        module(x[:2])
        module(x[:1])
        t_b1 = best_of(2, lambda: [module(x[i : i + 1]) for i in range(len(x))])
        t_b64 = best_of(2, lambda: [module(x[i : i + 64]) for i in range(0, len(x), 64)])
        t_b64_bf16 = None
        if module_bf16 is not None:
            # As ImageEncoder(precision="bfloat16") runs it: NHWC input, bf16 autocast.
            module_bf16.eval()
            x_cl = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                module_bf16(x_cl[:2])
                t_b64_bf16 = best_of(2, lambda: [module_bf16(x_cl[i : i + 64]) for i in range(0, len(x), 64)])
    with Image.open(slowest) as img:
        slowest_info = f"{os.path.basename(slowest)}, {img.mode} {img.width} x {img.height}"
    return {
        "naive_decode": t_naive_decode, "skmm_decode": t_skmm_decode,
        "slowest": (slowest_info, per_file[0][0], t_slowest_naive),
        "model_b1": t_b1, "model_b64": t_b64, "model_b64_bf16": t_b64_bf16,
    }


def figures_abd(df, model, n_subset, chunk, seed):
    """a, b and d on one data set: ImageEncoder vs naive loop vs embetter, then the cache hit."""
    from skmm import ImageEncoder
    from skmm.cache import get_cache

    candidates = df["image_path"].sample(frac=1.0, random_state=seed).tolist()
    paths = loadable_by_pillow(candidates[: n_subset + 10])[:n_subset]
    sub = pd.DataFrame({"image_path": paths})

    enc = ImageEncoder(f"timm:{model}", random_state=0, device="cpu", on_error="warn").fit(sub["image_path"])
    enc16 = ImageEncoder(
        f"timm:{model}", random_state=0, device="cpu", on_error="warn", precision="bfloat16"
    ).fit(sub["image_path"])
    size, module = enc.backbone_.image_size, enc.backbone_.module
    pipe = embetter_pipeline(model)
    # Warm up the model and the page cache the same way for every side.
    naive_loop(paths[:2], module, size, enc.backbone_.mean, enc.backbone_.std)
    # Every side runs its model in this process: check that each one really
    # gets the same number of intra-op threads (the decoding workers of the
    # ImageEncoder set their own to 1 and never run the model).
    probe = ThreadProbe(module, enc16.backbone_.module, pipe.steps[-1][1].model)

    get_cache().clear()
    t_ours, first = timed(lambda: enc.transform(sub["image_path"]))
    threads = {"skmm": probe.take()}
    t_hit, second = timed(lambda: enc.transform(sub["image_path"]))
    assert np.array_equal(first, second)
    t_bf16, bf16 = timed(lambda: enc16.transform(sub["image_path"]))
    threads["skmm bf16"] = probe.take()
    cos = (first * bf16).sum(1) / (np.linalg.norm(first, axis=1) * np.linalg.norm(bf16, axis=1))
    t_naive, _ = timed(lambda: naive_loop(paths, module, size, enc.backbone_.mean, enc.backbone_.std))
    threads["naive"] = probe.take()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_emb, emb = timed(lambda: run_embetter(pipe, sub, chunk))
    threads["embetter"] = probe.take()
    for handle in probe.handles:
        handle.remove()
    assert emb.shape == first.shape, (emb.shape, first.shape)
    # skmm runs a frozen backbone on the cores other jobs leave free (skmm.utils.threads.free_cores):
    # on a busy machine it may use fewer threads than the other sides; the table says how many.
    return {
        "n": len(paths),
        "size": size,
        "a": (t_ours, t_naive),
        "b": (t_ours, t_emb),
        "a16": (t_bf16, t_naive),
        "b16": (t_bf16, t_emb),
        "cos16": float(cos.min()),
        "d": (t_hit, t_ours),
        "threads": threads,
        "parts": breakdown(paths, module, size, enc.backbone_.mean, enc.backbone_.std, enc16.backbone_.module),
    }


def figure_c(df, n_subset, epochs, seed):
    """GridSearchCV, 4 fusions x 3 folds, frozen encoders: cache off vs on."""
    from sklearn.model_selection import GridSearchCV

    from skmm import FusionClassifier, ImageEncoder, TextEncoder
    from skmm.cache import get_cache

    sub = df.sample(n=min(n_subset, len(df)), random_state=seed).reset_index(drop=True)
    X, y = sub[["image_path", "text"]], sub["label"]

    def search(cache):
        clf = FusionClassifier(
            image=ImageEncoder("cnn", image_size=64, trainable=False, random_state=0, on_error="warn", cache=cache),
            text=TextEncoder("tfidf", cache=cache),
            image_col="image_path", text_col="text", max_epochs=epochs, dim=32, hidden_dim=32,
            random_state=0, device="cpu",
        )
        get_cache().clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return GridSearchCV(clf, {"fusion": FUSIONS}, cv=3).fit(X, y)

    t_off, off = timed(lambda: search(False))
    t_on, on = timed(lambda: search(True))
    same = np.array_equal(off.cv_results_["mean_test_score"], on.cv_results_["mean_test_score"])
    return {"n": len(sub), "c": (t_on, t_off), "same_scores": same,
            "scores": on.cv_results_["mean_test_score"].round(4).tolist()}


# ----------------------------------------------------------------------- figure e


_CHILD = """
import json, resource, sys, time, warnings

def peak_rss():
    # VmHWM belongs to this process's own address space; ru_maxrss would also
    # count the benchmark process this one was forked from before exec.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
sys.path.insert(0, {root!r})
import pandas as pd
from skmm import ImageEncoder
paths = pd.read_csv({csv!r})["image_path"]
enc = ImageEncoder("cnn", image_size=64, random_state=0, on_error="warn", cache=False, device="cpu").fit(paths)
baseline = peak_rss()  # torch + skmm imported, model built
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    start = time.perf_counter()
    features = enc.transform(paths)
    seconds = time.perf_counter() - start
print(json.dumps({{
    "rows": len(features), "seconds": seconds, "num_workers": __import__("skmm.io.images", fromlist=["x"])
        .resolve_num_workers(enc.num_workers, len(paths), enc.batch_size),
    "baseline_maxrss": baseline,
    "self_maxrss": peak_rss(),
    "workers_maxrss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
    "warnings": [str(w.message)[:160] for w in caught],
}}))
"""


def _tree_pss(root_pid):
    """Proportional set size of a process and all its descendants, in bytes (Linux)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parents[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


def figure_e(df, workdir, name):
    """Encode every row in a fresh process; peak memory of it and its decoding workers."""
    csv = os.path.join(workdir, f"{name}-all.csv")
    df[["image_path"]].to_csv(csv, index=False)
    code = _CHILD.format(root=ROOT, csv=csv)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    peak, stop = [0], threading.Event()

    def sample():
        while not stop.wait(0.2):
            try:
                peak[0] = max(peak[0], _tree_pss(proc.pid))
            except OSError:
                pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"the encoding process failed ({proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result["tree_pss_peak"] = peak[0]
    return result


# ---------------------------------------------------------------------------- report


def fmt_ratio(fast, slow):
    return f"{slow / fast:.1f}x" if fast > 0 else "inf"


def build_markdown(args, results, started, load_before, total):
    lines = [
        "## Speed: encoding images (issue 4)",
        "",
        "```",
        f"{_command()}",
        "```",
        "",
        f"Machine: {len(os.sched_getaffinity(0))} CPU cores shared with other jobs (load average "
        f"{load_before[0]:.1f} when the run started, {os.getloadavg()[0]:.1f} when it ended; other engineers' "
        f"jobs may have run meanwhile), no GPU; torch {torch.__version__}, "
        f"{torch.get_num_threads()} intra-op threads in the main process; Python {platform.python_version()}. "
        f"Run started {started}, took {total / 60:.1f} min. ratio = other / skmm seconds "
        "(above 1: skmm is faster; for d, first / second transform), all measured in this one run.",
        "",
        "| figure | data | skmm | other | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for name, res in results.items():
        c, e = res.get("c"), res.get("e")
        for model, abd in (res.get("abd") or {}).items():
            n, size = abd["n"], abd["size"]
            for a_key, b_key, label in (("a", "b", "float32"), ("a16", "b16", "bfloat16")):
                option = "" if label == "float32" else f", precision=\"{label}\""
                ours, naive = abd[a_key]
                lines.append(
                    f"| a. ImageEncoder(timm:{model}{option}) vs naive per-image loop | {name}, {n} images, {size} px "
                    f"| {ours:.1f} s ({n / ours:.1f} img/s) | {naive:.1f} s ({n / naive:.1f} img/s) "
                    f"| {fmt_ratio(ours, naive)} | - | - |"
                )
                ours, emb = abd[b_key]
                met = emb / ours >= TARGETS["b"]
                verdicts.append((f"b ({label})", f"{name}, {model}", met))
                lines.append(
                    f"| b. ImageEncoder{'(' + option[2:] + ')' if option else ''} vs embetter ImageLoader+TimmEncoder({model}) "
                    f"| {name}, {n} images | {ours:.1f} s | {emb:.1f} s | {fmt_ratio(ours, emb)} | >= 3x "
                    f"| {'yes' if met else 'no'} |"
                )
            hit, first = abd["d"]
            met = first / hit >= TARGETS["d"]
            verdicts.append(("d", f"{name}, {model}", met))
            lines.append(
                f"| d. second transform (cache hit) vs first, {model} | {name}, {n} images "
                f"| {hit * 1000:.1f} ms | {first:.1f} s | {fmt_ratio(hit, first)} | >= 50x | {'yes' if met else 'no'} |"
            )
        if c:
            on, off = c["c"]
            met = off / on >= TARGETS["c"] and c["same_scores"]
            verdicts.append(("c", name, met))
            lines.append(
                f"| c. GridSearchCV 4 fusions x 3 folds, cache on vs off | {name}, {c['n']} rows "
                f"| {on:.1f} s | {off:.1f} s | {fmt_ratio(on, off)} "
                f"(mean_test_score identical: {'yes' if c['same_scores'] else 'NO'}) | >= 5x, same scores "
                f"| {'yes' if met else 'no'} |"
            )
        if e:
            peak = max(e["tree_pss_peak"], e["self_maxrss"])
            met = peak < TARGETS["e"]
            verdicts.append(("e", name, met))
            lines.append(
                f"| e. peak memory encoding every row (process + {e['num_workers']} decoding workers) "
                f"| {name}, all {e['rows']} rows | {peak / GIB:.2f} GiB | - | - | < 2 GiB | {'yes' if met else 'no'} |"
            )
    lines += [
        "",
        "Where the time goes (each part alone, serially, in the main process, same images, same threads, "
        "best of 2): "
        "decoding to 224 px with the naive loop's `open().convert(\"RGB\").resize(BILINEAR)` and with skmm's "
        "`load_image` (transparency on white, EXIF, Lanczos), the slowest file of the subset with each, and "
        "the model forward on batches of 1 and of 64 (float32; and bf16 autocast on NHWC input, as "
        "`precision=\"bfloat16\"` runs it). \"ceiling\" is the best float32 a/b ratio the CPU allows: "
        "the naive / embetter seconds over skmm's lower bound, max(model at batch 64, "
        f"(model at batch 64 x {torch.get_num_threads()} threads + skmm decoding) / {_cores()} cores).",
        "",
        "| data, model | decode naive | decode skmm | slowest file: skmm / naive | model batch 1 | model batch 64 "
        "| model batch 64, bf16 | threads skmm / skmm bf16 / naive / embetter | ceiling a | ceiling b "
        "| bf16 vs float32 embeddings: min cosine |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, res in results.items():
        for model, abd in (res.get("abd") or {}).items():
            parts = abd["parts"]
            floor = _skmm_floor(parts)
            info, slow_ours, slow_naive = parts["slowest"]
            th = abd["threads"]
            lines.append(
                f"| {name}, {model} | {parts['naive_decode']:.2f} s | {parts['skmm_decode']:.2f} s "
                f"| {info}: {slow_ours:.2f} s / {slow_naive:.2f} s | {parts['model_b1']:.2f} s "
                f"| {parts['model_b64']:.2f} s | {parts['model_b64_bf16']:.2f} s "
                f"| {' / '.join(','.join(map(str, th[k])) for k in ('skmm', 'skmm bf16', 'naive', 'embetter'))} "
                f"| {abd['a'][1] / floor:.1f}x | {abd['b'][1] / floor:.1f}x | {abd['cos16']:.5f} |"
            )
    lines += ["", "Details:", ""]
    for name, res in results.items():
        if res.get("e"):
            e = res["e"]
            lines.append(
                f"- e, {name}: encoding took {e['seconds']:.0f} s ({e['rows'] / e['seconds']:.0f} rows/s) with "
                f"ImageEncoder(\"cnn\", image_size=64); peak summed PSS of the process tree "
                f"{e['tree_pss_peak'] / GIB:.2f} GiB (sampled every 0.2 s), peak RSS (VmHWM) of the main process "
                f"{e['self_maxrss'] / GIB:.2f} GiB ({e['baseline_maxrss'] / GIB:.2f} GiB of it before the first image: "
                f"torch and skmm imported, model built), of the largest worker {e['workers_maxrss'] / GIB:.2f} GiB; "
                f"an upper bound counting every shared page once per process: "
                f"{(e['self_maxrss'] + e['num_workers'] * e['workers_maxrss']) / GIB:.2f} GiB. "
                f"Warnings: {'; '.join(e['warnings']) or 'none'}"
            )
        if res.get("c"):
            lines.append(f"- c, {name}: mean_test_score per fusion {dict(zip(FUSIONS, res['c']['scores']))}.")
    lines += [
        "",
        "How each figure is made:",
        "",
        f"- a, b, d use a random subset of {args.subset} images (seed {args.seed}) per data set, leaving out "
        "files above Pillow's own decompression-bomb limit (179 MP), which the naive loop and embetter cannot "
        f"open; the timm models ({', '.join(args.models.split(','))}) have random weights on every side (embetter's `TimmEncoder` is "
        "made to call `timm.create_model(..., pretrained=False)`). skmm: `ImageEncoder(\"timm:...\")` with its "
        "defaults (batch 64, `num_workers=\"auto\"`: "
        f"{__import__('skmm.io.images', fromlist=['x']).resolve_num_workers('auto', args.subset, 64)} decoding "
        "workers here, each batch decoded in chunks of 8 "
        "images; letterbox to the model's 224 px) and the cache cleared first. Naive: Pillow open -> convert RGB -> resize -> tensor -> the same module on a batch of one "
        "under `torch.inference_mode`. embetter: `ColumnGrabber -> ImageLoader -> TimmEncoder` as "
        f"documented, called on chunks of {args.chunk} rows because `ImageLoader` keeps every image at full "
        "size (on all rows at once, the 169-MP clipart would need several GB); embetter runs the model one "
        "image at a time, in training mode, with autograd on.",
        "- d: the same ImageEncoder transforming the same paths a second time, answered by the in-memory "
        "embedding cache (no file is opened; keys are path, size and mtime).",
        f"- c: `FusionClassifier(image=ImageEncoder(\"cnn\", image_size=64, trainable=False, random_state=0), "
        f"text=TextEncoder(\"tfidf\"), max_epochs={args.epochs})` in `GridSearchCV(cv=3)` over "
        f"{FUSIONS}, on a random subset of {args.c_subset} rows; \"off\" passes `cache=False` to both "
        "encoders, so each of the 12 fits and the refit encodes its rows again.",
        "- e: `ImageEncoder(\"cnn\", image_size=64, cache=False, on_error=\"warn\").transform` of every row "
        "in a fresh process; memory is the larger of the process tree's summed proportional set size "
        "(sampled every 0.2 s) and the main process's peak RSS (VmHWM); the workers' ru_maxrss counts "
        "the pages they share with the main process.",
    ]
    lines += ["", _reading(results, verdicts)]
    return "\n".join(lines), verdicts


def _cores():
    return len(os.sched_getaffinity(0))


def _skmm_floor(parts):
    model = parts["model_b64"]
    return max(model, (model * torch.get_num_threads() + parts["skmm_decode"]) / _cores())


def _reading(results, verdicts):
    """The plain-words summary of this run, from its own numbers."""
    met = sorted({fig for fig, _, ok in verdicts if ok} - {fig for fig, _, ok in verdicts if not ok})
    missed = sorted({fig for fig, _, ok in verdicts if not ok})
    ratios = {k: [] for k in ("a", "b", "a16", "b16", "cos16", "ceil_b", "model", "model16", "decode", "batching")}
    for res in results.values():
        for abd in (res.get("abd") or {}).values():
            parts = abd["parts"]
            for key in ("a", "b", "a16", "b16"):
                ratios[key].append(abd[key][1] / abd[key][0])
            ratios["cos16"].append(abd["cos16"])
            ratios["ceil_b"].append(abd["b"][1] / _skmm_floor(parts))
            ratios["model"].append(parts["model_b64"])
            ratios["model16"].append(parts["model_b64"] / parts["model_b64_bf16"])
            ratios["decode"].append(parts["skmm_decode"])
            ratios["batching"].append(parts["model_b1"] / parts["model_b64"])
    text = f"Reading of this run: targets met: {', '.join(met) or 'none'}; missed: {', '.join(missed) or 'none'}."
    if not ratios["a"]:
        return text

    def span(values):
        return f"{min(values):.1f}-{max(values):.1f}x" if len(values) > 1 else f"{values[0]:.1f}x"

    model_heavy = sum(m > d for m, d in zip(ratios["model"], ratios["decode"]))
    n_images = max(abd["n"] for res in results.values() for abd in (res.get("abd") or {}).values())
    text += (
        f" At the float32 default, a: the ImageEncoder runs at {span(ratios['a'])} the naive loop's speed; "
        f"b: {span(ratios['b'])} embetter's (target 3x). On this {_cores()}-core CPU the model forward at "
        f"batch 64 takes {min(ratios['model']):.1f}-{max(ratios['model']):.1f} s for the subset and skmm's "
        f"serial decoding {min(ratios['decode']):.1f}-{max(ratios['decode']):.1f} s (the model is the larger "
        f"part in {model_heavy} of {len(ratios['model'])} data set x model pairs); batching the forward gains "
        f"{span(ratios['batching'])} over batches of one. Even with decoding entirely hidden in the workers, "
        f"the CPU bounds float32 b at {span(ratios['ceil_b'])}"
    )
    text += ", below the 3x target." if max(ratios["ceil_b"]) < TARGETS["b"] else "."
    text += (
        f" With `precision=\"bfloat16\"` the same model runs {span(ratios['model16'])} faster at batch 64 "
        f"(this CPU has {'AMX' if _has_amx() else 'no AMX'}), and the ImageEncoder reaches {span(ratios['a16'])} "
        f"the naive loop and {span(ratios['b16'])} embetter (both in float32: they have no such option), with "
        f"embeddings at cosine similarity >= {min(ratios['cos16']):.4f} to float32's."
    )
    slowest = max(abd["parts"]["slowest"][1] for res in results.values() for abd in (res.get("abd") or {}).values())
    text += (
        f" At {n_images} images and batch 64 there"
        f" are {-(-n_images // 64)} batches, and the first forward waits for every file of the first batch, the slowest of which"
        f" alone takes up to {slowest:.2f} s to decode here, during which the model has nothing to do."
    )
    return text + " Timings on a shared machine vary by tens of percent from run to run (load average above)."


def _has_amx():
    try:
        with open("/proc/cpuinfo") as f:
            return "amx_bf16" in f.read()
    except OSError:
        return False


def _command():
    return " ".join(["python", os.path.relpath(os.path.abspath(sys.argv[0]), ROOT), *sys.argv[1:]])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="directory holding clipart.csv (built by shared/data/clipart/build.py)")
    parser.add_argument(
        "--models", default="resnet18,mobilenetv3_small_100", help="timm models for figures a, b, d (comma separated)"
    )
    parser.add_argument("--subset", type=int, default=120, help="images per data set for a, b, d")
    parser.add_argument("--c-subset", type=int, default=120, help="rows per data set for c")
    parser.add_argument("--generated", type=int, default=200, help="rows of the generated set")
    parser.add_argument("--epochs", type=int, default=10, help="max_epochs in figure c")
    parser.add_argument("--chunk", type=int, default=16, help="rows per embetter call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="abcde", help="figures to run, e.g. 'ce'")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)

    register_timm()
    started = time.strftime("%Y-%m-%d %H:%M")
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="skmm-speed-")
    atexit.register(shutil.rmtree, workdir, True)  # the generated images take ~250 MB
    sets = {}
    if args.data:
        sets["clipart"] = load_clipart(args.data)
    t_gen, sets["generated"] = timed(lambda: make_generated(os.path.join(workdir, "generated"), args.generated))
    print(f"generated {len(sets['generated'])} images in {t_gen:.0f} s", flush=True)

    results = {}
    for name, df in sets.items():
        res = results[name] = {}
        if set("abd") & set(args.only):
            res["abd"] = {}
            for model in args.models.split(","):
                res["abd"][model] = figures_abd(df, model, args.subset, args.chunk, args.seed)
                print(name, model, "a/b/d", res["abd"][model], flush=True)
        if "c" in args.only:
            res["c"] = figure_c(df, args.c_subset, args.epochs, args.seed)
            print(name, "c", res["c"], flush=True)
        if "e" in args.only:
            res["e"] = figure_e(df, workdir, name)
            print(name, "e", {k: v for k, v in res["e"].items() if k != "warnings"}, flush=True)

    markdown, verdicts = build_markdown(args, results, started, load_before, time.perf_counter() - t0)
    print(markdown)
    if not args.no_write:
        from benchmarks.report import write_section

        write_section("speed", markdown)
    return verdicts


if __name__ == "__main__":
    main()
