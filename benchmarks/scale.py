"""Scaling past one machine's memory and one process: what it costs, measured on this machine.

Three measurements, each side by side in one run:

1. ``rss``: peak resident memory of a FusionClassifier fit with a trainable CNN
   at 64 px on the clipart rows repeated 1x, 4x and 16x, decoding every
   picture before training (``decode="upfront"``) or per batch in the loader
   workers (``decode="per_batch"``), with the frozen text features in memory or
   in a file read per batch (``SKMM_SPILL_BYTES``).  Each fit runs in a fresh process;
   its peak RSS (``ru_maxrss``) includes the loader workers' own.
2. ``cache``: the disk cache with 10^5 and 10^6 synthetic entries (512
   float32 each): writing, reading back (cold cache object), 10,000 random
   rows, ``info()``, disk usage, opening a cold cache; with ``--old-ref`` the
   store of an older commit (one file per entry) too, each in a fresh process.
3. ``dask``: ``skmm.dask.encode`` on a LocalCluster (2 worker processes) against
   ``ImageEncoder.transform`` in one process, images per second.

Usage::

    python benchmarks/scale.py [--parts rss,cache,dask] [--cache-sizes 100000,1000000]
                               [--old-ref COMMIT --old-sizes 100000] [--write]

The clipart pictures are first written as 64 px PNG files under a scratch
directory (the run measures the memory of training, not the decoding of
multi-megapixel originals); the scratch directory is deleted at the end.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import command_line, write_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIPART = "/tmp/clipart/data/clipart.csv"

_FIT = textwrap.dedent(
    """
    import json, resource, sys, time
    import pandas as pd, torch
    torch.set_num_threads(1)
    from skmm import FusionClassifier, ImageEncoder
    table, decode, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
    df = pd.read_parquet(table)
    df = pd.concat([df] * repeat, ignore_index=True)
    image = ImageEncoder("cnn", image_size=64, augment="none", decode=decode, num_workers=1,
                         backbone_kwargs={"channels": (4, 8)})
    clf = FusionClassifier(image=image, text="tfidf", dim=32, max_epochs=1, batch_size=64, random_state=0)
    start = time.perf_counter()
    clf.fit(df[["image_path", "text"]], df["label"])
    seconds = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"rows": len(df), "seconds": seconds, "rss_mib": own, "worker_rss_mib": workers}))
    """
)


def thumbnails(scratch):
    """The clipart table with its pictures as 64 px PNG files in ``scratch``."""
    table = os.path.join(scratch, "clipart64.parquet")
    if os.path.exists(table):
        return table, len(pd.read_parquet(table))
    from skmm.io.images import load_images_parallel
    from PIL import Image

    df = pd.read_csv(CLIPART)
    df = df[df["image_path"].map(os.path.exists)].reset_index(drop=True)
    out = []
    for start, pixels, ok in load_images_parallel(list(df["image_path"]), 64, num_workers=2, on_error="ignore"):
        for j, (pix, good) in enumerate(zip(pixels.numpy(), ok)):
            path = os.path.join(scratch, f"{start + j:05d}.png")
            Image.fromarray(np.moveaxis(pix, 0, -1)).save(path)
            out.append(path)
    df["image_path"] = out
    table = os.path.join(scratch, "clipart64.parquet")
    df[["image_path", "text", "label"]].to_parquet(table)
    return table, len(df)


# Where a fit keeps the frozen text features: in memory, or in a file read per batch (skmm.encoders.spill).
_FEATURES = {"memory": "100G", "file": "0"}


def run_rss(scratch, repeats, variants):
    """Each ``(decode, features)`` variant at each repeat, in a fresh process."""
    table, n = thumbnails(scratch)
    script = os.path.join(scratch, "fit.py")
    with open(script, "w") as f:
        f.write(_FIT)
    rows = []
    for repeat in repeats:
        for decode, features in variants:
            env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", SKMM_SPILL_BYTES=_FEATURES[features])
            proc = subprocess.run([sys.executable, script, table, decode, str(repeat)], capture_output=True,
                                  text=True, env=env, check=True)
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            result.update(repeat=repeat, decode=decode, features=features)
            print(result, flush=True)
            rows.append(result)
    return n, rows


_CACHE = textwrap.dedent(
    """
    import json, os, random, subprocess, sys, time
    import numpy as np
    from skmm.cache import DiskCache, text_key
    directory, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    keys = [text_key(str(i)) for i in range(n)]
    block = 10_000
    cache = DiskCache(directory, max_bytes="100G", memory_max_bytes=0)
    start = time.perf_counter()
    for i in range(0, n, block):
        part = keys[i : i + block]
        cache.get_or_compute("bench", part, lambda pos, i=i: np.full((len(pos), dim), 1.0, np.float32) + i)
    write = time.perf_counter() - start
    del cache
    start = time.perf_counter()  # a cold cache object: construct it and read one row
    cold = DiskCache(directory, max_bytes="100G", memory_max_bytes=0)
    cold.get_or_compute("bench", keys[:1], lambda pos: 1 / 0)
    opened = time.perf_counter() - start
    sample = random.Random(0).sample(keys, min(n, 10_000))
    start = time.perf_counter()
    DiskCache(directory, max_bytes="100G", memory_max_bytes=0).get_or_compute("bench", sample, lambda pos: 1 / 0)
    random_read = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(0, n, block):
        cold.get_or_compute("bench", keys[i : i + block], lambda pos: 1 / 0)
    read = time.perf_counter() - start
    start = time.perf_counter()
    info = cold.info()
    listing = time.perf_counter() - start
    du = subprocess.run(["du", "-sk", directory], capture_output=True, text=True).stdout.split()[0]
    print(json.dumps({"entries": n, "write_s": write, "open_s": opened, "read_s": read, "random_s": random_read,
                      "random_rows": len(sample), "info_s": listing, "info_entries": info["entries"],
                      "entry_bytes": info["bytes"], "du_bytes": int(du) * 1024}))
    """
)


def old_tree(scratch, ref):
    """skmm as of the git commit ``ref`` (the store before SQLite), extracted under ``scratch``."""
    target = os.path.join(scratch, f"skmm-{ref}")
    if not os.path.isdir(target):
        os.makedirs(target)
        archive = subprocess.run(["git", "-C", ROOT, "archive", ref, "skmm"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", target], input=archive, check=True)
    return target


def run_cache(scratch, sizes, old_ref=None, old_sizes=(), dim=512):
    """Each size in a fresh process: the current store, and the store of ``old_ref`` for ``old_sizes``."""
    script = os.path.join(scratch, "cache_bench.py")
    with open(script, "w") as f:
        f.write(_CACHE)
    runs = [("sqlite", ROOT, n) for n in sizes]
    if old_ref:
        runs = [("files", old_tree(scratch, old_ref), n) for n in old_sizes] + runs
    rows = []
    for store, path, n in runs:
        directory = os.path.join(scratch, f"cache-{store}-{n}")
        env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1")
        proc = subprocess.run([sys.executable, script, directory, str(n), str(dim)], capture_output=True,
                              text=True, env=env, check=True)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["store"] = store
        rows.append(result)
        print(result, flush=True)
        shutil.rmtree(directory)
    return rows


def run_dask(scratch, n_images=2000):
    import dask.dataframe as dd
    import distributed
    from skmm import ImageEncoder
    from skmm.dask import encode

    table, _ = thumbnails(scratch)
    df = pd.read_parquet(table).iloc[:n_images]
    encoder = ImageEncoder("cnn", image_size=64, random_state=0, cache=False, num_workers=0).fit(df[["image_path"]])
    start = time.perf_counter()
    expected = encoder.transform(df[["image_path"]])
    one = time.perf_counter() - start
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env={"OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}) as cluster, \
            distributed.Client(cluster) as client:
        ddf = dd.from_pandas(df, npartitions=8, sort=False)
        client.run(lambda: __import__("skmm.encoders"))  # the workers' imports are not encoding
        encode(ddf, encoder, "image_path").compute()  # warm-up: first forward passes
        start = time.perf_counter()
        out = encode(ddf, encoder, "image_path").compute()
        two = time.perf_counter() - start
    assert np.allclose(out.to_numpy(), expected, atol=1e-5)
    return {"images": len(df), "one_process_s": one, "dask_s": two}


def markdown(rss, cache, dask_row):
    lines = ["## Scale: memory of training, the disk cache at 10^5-10^6 entries, Dask encoding (issue 14)", "",
             f"`{command_line()}`, on this machine (2 cores shared with other jobs).", ""]
    if rss:
        n, rows = rss
        lines += [f"**Peak RSS of a fit** (trainable CNN at 64 px with channels (4, 8), frozen tfidf text (3,040 "
                  f"features a row), 1 epoch, batch 64, 1 loader worker; the {n} clipart rows repeated; fresh process "
                  "per fit; text features in memory, or in a file read per batch, `SKMM_SPILL_BYTES=0`):", "",
                  "| rows | decode | text features | peak RSS (MiB) | loader worker peak (MiB) | fit (s) |",
                  "|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['rows']:,} | {r['decode']} | {r['features']} | {r['rss_mib']:,.0f} | "
                         f"{r['worker_rss_mib']:,.0f} | {r['seconds']:.0f} |")
        by = {(r["repeat"], r["decode"], r["features"]): r for r in rows}
        reps = sorted({r["repeat"] for r in rows})
        lo, hi = reps[0], reps[-1]
        for decode, features in sorted({(r["decode"], r["features"]) for r in rows}):
            a, b = by.get((lo, decode, features)), by.get((hi, decode, features))
            if a and b:
                grow = b["rss_mib"] - a["rss_mib"]
                per_row = grow * 2**20 / (b["rows"] - a["rows"]) / 1000
                lines.append(f"\n{decode}, features in {features}: {hi}x the rows of {lo}x costs {grow:+,.0f} MiB of "
                             f"peak RSS ({per_row:+.1f} KB a row; ratio {b['rss_mib'] / a['rss_mib']:.2f}).")
        lines.append("")
    if cache:
        lines += ["**Disk cache** (512 float32 a row, unsigned, memory front off; written in blocks of 10,000 keys "
                  "through `get_or_compute`, read back by new cache objects; each size in a fresh process; "
                  "`files`: one file per entry, the store before SQLite, run from `git archive` of the commit given):",
                  "", "| store | entries | write (s) | rows/s written | open cold + 1 row (s) | read all (s) | "
                  "rows/s read | 10,000 random rows (s) | info() (s) | entry bytes | disk usage (du) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in cache:
            lines.append(
                f"| {r['store']} | {r['entries']:,} | {r['write_s']:.1f} | {r['entries'] / r['write_s']:,.0f} | "
                f"{r['open_s']:.4f} | {r['read_s']:.1f} | {r['entries'] / r['read_s']:,.0f} | {r['random_s']:.2f} | "
                f"{r['info_s']:.4f} | {r['entry_bytes'] / 2**20:,.0f} MiB | {r['du_bytes'] / 2**20:,.0f} MiB |")
        by = {(r["store"], r["entries"]): r for r in cache}
        for (store, n), r in sorted(by.items()):
            old = by.get(("files", n))
            if store == "sqlite" and old:
                lines.append(f"\nAt {n:,} entries SQLite against files: write {old['write_s'] / r['write_s']:.1f}x "
                             f"faster, read {old['read_s'] / r['read_s']:.1f}x, info() "
                             f"{old['info_s'] / r['info_s']:,.0f}x, disk usage {r['du_bytes'] / old['du_bytes']:.2f}x.")
        lines.append("")
    if dask_row:
        d = dask_row
        lines += [f"**skmm.dask.encode** ({d['images']} clipart pictures at 64 px, random CNN, 8 partitions, "
                  "LocalCluster of 2 worker processes x 1 thread) against `transform` in one process (1 thread):", "",
                  "| | seconds | images/s |", "|---|---|---|",
                  f"| one process | {d['one_process_s']:.2f} | {d['images'] / d['one_process_s']:,.0f} |",
                  f"| Dask, 2 workers | {d['dask_s']:.2f} | {d['images'] / d['dask_s']:,.0f} |", "",
                  f"Ratio: {d['one_process_s'] / d['dask_s']:.2f}x the one-process throughput.", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="rss,cache,dask")
    parser.add_argument("--repeats", default="4,16")
    parser.add_argument("--rss-variants", default="upfront:memory,per_batch:memory,per_batch:file",
                        help="decode:features pairs (features: memory or file)")
    parser.add_argument("--cache-sizes", default="100000,1000000")
    parser.add_argument("--old-ref", help="also measure the disk cache of this git commit (one file per entry)")
    parser.add_argument("--old-sizes", default="100000", help="the sizes to measure the old store at")
    parser.add_argument("--scratch", help="a scratch directory to keep (default: a new one, deleted at the end)")
    parser.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = parser.parse_args()
    parts = args.parts.split(",")
    scratch = args.scratch or tempfile.mkdtemp(prefix="skmm-scale-")
    os.makedirs(scratch, exist_ok=True)
    try:
        variants = [tuple(v.split(":")) for v in args.rss_variants.split(",")]
        rss = run_rss(scratch, [int(r) for r in args.repeats.split(",")], variants) if "rss" in parts else None
        cache = run_cache(scratch, [int(n) for n in args.cache_sizes.split(",")], args.old_ref,
                          [int(n) for n in args.old_sizes.split(",")]) if "cache" in parts else None
        dask_row = run_dask(scratch) if "dask" in parts else None
    finally:
        if not args.scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    text = markdown(rss, cache, dask_row)
    print(text)
    if args.write:
        write_section("scale", text)


if __name__ == "__main__":
    main()
