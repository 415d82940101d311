"""Rows per second of FusionClassifier.predict on many rows, cached and uncached, and where the time goes.

    python benchmarks/throughput.py [--data /tmp/clipart/data] [--rows 10000] [--uncached-rows 1000] [--no-write]

The model of benchmarks/latency.py (frozen EfficientNet-Lite0 + MiniLM, ``concat``
head, saved and loaded).  The rows: the first ``--uncached-rows`` clipart test rows,
repeated to ``--rows`` for the cached figure.

- cached: ``predict`` on ``--rows`` rows whose embeddings are in the cache (a
  warm-up ``predict`` put them there), as a model scoring a table again does;
- uncached: ``predict`` with the encoders' cache off (``cache=False``), every
  picture decoded and every text tokenized and encoded, on ``--uncached-rows``
  rows (on a 2-core machine, 10,000 uncached rows take tens of minutes; rows per
  second do not depend on the count past a few batches).

Where the uncached time goes: each part alone, in this process, on the same
rows: decoding the files (``load_images``, in ImageEncoder's worker processes as
``predict`` decodes them), the image model (normalisation + backbone, batches of
64), the text model (tokenizer + MiniLM, batches of 64), both on the threads
skmm picks (:func:`skmm.utils.threads.free_cores`), and the head
(``proba_from_inputs`` on the features).  In ``predict`` decoding overlaps the
image model (the workers decode ahead), so the parts add up to more than a call.
Section "throughput" of BENCHMARKS.md.
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.latency import Ceiling, fitted_model, load_clipart, log  # noqa: E402
from benchmarks.report import command_line, write_section  # noqa: E402

from skmm.io.images import load_images_parallel  # noqa: E402
from skmm.utils.threads import free_cores, inference_threads, torch_threads  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def parts(model, rows):
    """Seconds of each part of an uncached predict on ``rows``, each alone."""
    ceiling = Ceiling(model)
    image_encoder = ceiling.image_encoder
    paths, texts = rows["image_path"].tolist(), rows["text"].tolist()

    def decode():
        return [pixels for _, pixels, _ in load_images_parallel(
            paths, ceiling.size, num_workers=image_encoder.num_workers, batch_size=64, on_error="ignore")]

    def skmm_threads(fn):
        # the threads skmm's encoders pick for each batch (the cores other jobs leave free)
        def run(*args):
            with torch_threads(inference_threads(module=True, cores=free_cores())):
                return fn(*args)
        return run

    image, text = skmm_threads(ceiling.image), skmm_threads(ceiling.text)
    t_decode, batches = timed(decode)
    t_image, _ = timed(lambda: [image(b) for b in batches])
    t_text, _ = timed(lambda: [text(ceiling.text_tokens(texts[i : i + 64])) for i in range(0, len(texts), 64)])
    inputs = model.model_inputs(rows)  # cached by now: the head's inputs
    t_head, _ = timed(lambda: model.proba_from_inputs(inputs))
    return {"decode the files": t_decode, "image model": t_image, "text model (with tokenizer)": t_text,
            "head": t_head}


def set_cache(model, on):
    for branch in model.branches_.values():
        branch.encoder.cache = on


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/tmp/clipart/data")
    ap.add_argument("--train", type=int, default=300)
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--uncached-rows", type=int, default=1000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    train, test = load_clipart(args.data)
    test = test[["image_path", "text"]]
    few = test.iloc[: args.uncached_rows]
    many = pd.concat([few] * (args.rows // len(few) + 1), ignore_index=True).iloc[: args.rows]
    with tempfile.TemporaryDirectory() as workdir:
        log(f"fitting on {args.train} rows")
        model = fitted_model(train, workdir, args.train)
        log(f"uncached predict on {len(few)} rows")
        set_cache(model, False)
        t_uncached, _ = timed(lambda: model.predict(few))
        set_cache(model, True)
        log("where the time goes")
        seconds = parts(model, few)
        log(f"a cached predict on {len(many)} rows (the same {len(few)} rows repeated, cached by now)")
        model.predict(few)
        t_cached, _ = timed(lambda: model.predict(many))
    md = markdown(len(many), t_cached, len(few), t_uncached, seconds, args, load_before,
                  time.perf_counter() - started)
    print(md)
    if not args.no_write:
        write_section("throughput", md)


def markdown(n_many, t_cached, n_few, t_uncached, seconds, args, load_before, total):
    total_parts = sum(seconds.values())
    lines = [
        "## Throughput of predict (issue 17, point 4)",
        "",
        f"`{command_line()}` ({total:.0f} s; {os.cpu_count()} CPUs, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads; 1-min load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end: other jobs shared the machine).",
        "",
        f"FusionClassifier(frozen EfficientNet-Lite0 224 px + frozen all-MiniLM-L6-v2, 'concat'), fitted on "
        f"{args.train} clipart rows; {n_few} clipart test rows, repeated for the cached figure.",
        "",
        "| predict | rows | seconds | rows/s |",
        "| --- | ---: | ---: | ---: |",
        f"| embeddings cached | {n_many} | {t_cached:.1f} | {n_many / t_cached:.0f} |",
        f"| uncached (cache=False) | {n_few} | {t_uncached:.1f} | {n_few / t_uncached:.1f} |",
        "",
        f"Where the uncached time goes ({n_few} rows, each part alone):",
        "",
        "| part | seconds | share | ms/row |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, t in seconds.items():
        lines.append(f"| {name} | {t:.1f} | {100 * t / total_parts:.0f}% | {1000 * t / n_few:.2f} |")
    biggest = max(seconds, key=seconds.get)
    lines += [
        "",
        f"Reading: cached rows run {(n_many / t_cached) / (n_few / t_uncached):.0f}x faster than uncached ones; "
        f"uncached, the largest part is the {biggest} ({100 * seconds[biggest] / total_parts:.0f}%), where time "
        "is best spent first (for the image model: a smaller model, `ImageEncoder(backend='onnxruntime')`, a GPU).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    np.random.seed(0)
    main()
