"""Rows per second of FusionClassifier.predict on many rows, cached and uncached, and where the time goes.

    python benchmarks/throughput.py [--data /tmp/clipart/data] [--rows 10000] [--uncached-rows 10000]
                                    [--chunk 1000] [--parts-rows 1000] [--budget 3000] [--no-write]

The model of benchmarks/latency.py (frozen EfficientNet-Lite0 + MiniLM, ``concat``
head, saved and loaded), with both encoders on ``backend="torch"`` (the default)
and on ``backend="onnxruntime"``.  The rows: clipart test rows, repeated to
``--rows``.

- cached: ``predict`` on ``--rows`` rows whose embeddings are in the cache (a
  warm-up ``predict`` put them there), as a model scoring a table again does;
- uncached: ``predict`` with the encoders' cache off (``cache=False``: every
  picture decoded and every text tokenized and encoded, repeated rows too) on
  ``--uncached-rows`` rows, ``--chunk`` rows per call, the two backends
  interleaved chunk by chunk so the machine's load falls on both; when the
  projected time passes ``--budget`` seconds the run stops after the chunks done
  so far, and the table says how many rows that was.

Where the uncached time goes, per backend: each part alone, in this process, on
the first ``--parts-rows`` rows: decoding the files (``load_images``, in
ImageEncoder's worker processes as ``predict`` decodes them), the image model
(normalisation + backbone, in the encoder's batches: 8 rows on the CPU), the
text model (tokenizer + MiniLM, batches of 64), both on the threads skmm picks
(:func:`skmm.utils.threads.free_cores`), and the head (``proba_from_inputs`` on
the features).  In ``predict`` decoding overlaps the image model (the workers
decode ahead), so the parts add up to more than a call.  Section "throughput"
of BENCHMARKS.md.
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


BACKENDS = ("torch", "onnxruntime")


def parts(model, rows, backend):
    """Seconds of each part of an uncached predict on ``rows``, each alone."""
    ceiling = Ceiling(model)
    image_encoder = ceiling.image_encoder
    paths, texts = rows["image_path"].tolist(), rows["text"].tolist()

    def decode():
        return [pixels for _, pixels, _ in load_images_parallel(
            paths, ceiling.size, num_workers=image_encoder.num_workers, batch_size=image_encoder._rows_per_forward(),
            on_error="ignore")]

    def skmm_threads(fn):
        # the threads skmm's encoders pick for each batch (the cores other jobs leave free)
        def run(*args):
            with torch_threads(inference_threads(module=True, cores=free_cores())):
                return fn(*args)
        return run

    if backend == "torch":
        image, text = skmm_threads(ceiling.image), skmm_threads(ceiling.text)
    else:
        image, text = ceiling.onnx_image, ceiling.onnx_text
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
    ap.add_argument("--uncached-rows", type=int, default=10000)
    ap.add_argument("--chunk", type=int, default=1000, help="rows per uncached predict call")
    ap.add_argument("--parts-rows", type=int, default=1000)
    ap.add_argument("--budget", type=float, default=3000, help="seconds the uncached calls may take in all")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    loads = [os.getloadavg()[0]]
    train, test = load_clipart(args.data)
    test = test[["image_path", "text"]]
    many = pd.concat([test] * (args.rows // len(test) + 1), ignore_index=True).iloc[: args.rows]
    uncached = pd.concat([test] * (args.uncached_rows // len(test) + 1), ignore_index=True).iloc[: args.uncached_rows]
    with tempfile.TemporaryDirectory() as workdir:
        models = {}
        for backend in BACKENDS:
            log(f"fitting on {args.train} rows, backend={backend}")
            models[backend] = fitted_model(train, workdir, args.train, image_backend=backend, text_backend=backend)
            set_cache(models[backend], False)
        spent = {backend: 0.0 for backend in BACKENDS}
        done = 0
        for i, start in enumerate(range(0, len(uncached), args.chunk)):
            chunk = uncached.iloc[start : start + args.chunk]
            for backend in (BACKENDS if i % 2 == 0 else BACKENDS[::-1]):
                spent[backend] += timed(lambda: models[backend].predict(chunk))[0]
            done += len(chunk)
            loads.append(os.getloadavg()[0])
            log(f"uncached: {done} rows, {sum(spent.values()):.0f} s ({', '.join(f'{b} {t:.0f} s' for b, t in spent.items())})")
            if done < len(uncached) and sum(spent.values()) * (done + args.chunk) / done > args.budget:
                log(f"stopping: the next chunk would pass the budget of {args.budget:.0f} s")
                break
        seconds = {}
        for backend in BACKENDS:
            log(f"where the time goes, backend={backend}")
            set_cache(models[backend], True)
            seconds[backend] = parts(models[backend], test.iloc[: args.parts_rows], backend)
        loads.append(os.getloadavg()[0])
        log(f"a cached predict on {len(many)} rows (the {len(test)} test rows repeated, cached by now)")
        model = models["torch"]
        model.predict(test)
        t_cached, _ = timed(lambda: model.predict(many))
    loads.append(os.getloadavg()[0])
    md = markdown(len(many), t_cached, done, spent, seconds, args, loads, len(uncached), time.perf_counter() - started)
    print(md)
    if not args.no_write:
        write_section("throughput", md)


def markdown(n_many, t_cached, n_uncached, spent, seconds, args, loads, asked, total):
    lines = [
        "## Throughput of predict (issue 17, point 4)",
        "",
        f"`{command_line()}` ({total:.0f} s; {os.cpu_count()} CPUs, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads; 1-min load average {min(loads):.1f}-{max(loads):.1f} over the run "
        f"({' '.join(f'{x:.1f}' for x in loads)}): other jobs shared the machine).",
        "",
        f"FusionClassifier(frozen EfficientNet-Lite0 224 px + frozen all-MiniLM-L6-v2, 'concat'), fitted on "
        f"{args.train} clipart rows; clipart test rows repeated.  Uncached: `cache=False`, {args.chunk} rows per "
        "`predict` call, the two backends interleaved chunk by chunk"
        + ("." if n_uncached >= asked else
           f"; stopped after {n_uncached} of the {asked} rows asked for (the time budget of {args.budget:.0f} s): "
           f"{asked} rows would take about {asked / n_uncached * sum(spent.values()) / 60:.0f} minutes for both.")
        + "",
        "",
        "| predict | backend | rows | seconds | rows/s |",
        "| --- | --- | ---: | ---: | ---: |",
        f"| embeddings cached | any | {n_many} | {t_cached:.1f} | {n_many / t_cached:.0f} |",
    ]
    for backend, t in spent.items():
        lines.append(f"| uncached (cache=False) | {backend} | {n_uncached} | {t:.1f} | {n_uncached / t:.1f} |")
    lines += ["", f"Where the uncached time goes (the first {args.parts_rows} test rows, each part alone):", "",
              "| part | backend | seconds | share | ms/row |", "| --- | --- | ---: | ---: | ---: |"]
    for backend, parts_seconds in seconds.items():
        total_parts = sum(parts_seconds.values())
        for name, t in parts_seconds.items():
            lines.append(f"| {name} | {backend} | {t:.1f} | {100 * t / total_parts:.0f}% | "
                         f"{1000 * t / args.parts_rows:.2f} |")
    torch_rate, onnx_rate = (n_uncached / spent[b] for b in BACKENDS)
    biggest = max(seconds["onnxruntime"], key=seconds["onnxruntime"].get)
    lines += [
        "",
        f"Reading: uncached, onnxruntime predicts {onnx_rate / torch_rate:.2f}x the rows per second of torch; "
        f"cached rows run {(n_many / t_cached) / onnx_rate:.0f}x faster than uncached ones with onnxruntime.  With "
        f"onnxruntime the largest part is the {biggest} "
        f"({100 * seconds['onnxruntime'][biggest] / sum(seconds['onnxruntime'].values()):.0f}%), where time is "
        "best spent next.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    np.random.seed(0)
    main()
