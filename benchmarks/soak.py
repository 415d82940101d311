"""Soak: predict from many threads and processes on one model and one cache_dir while files change.

One fitted FusionClassifier (a frozen ``ImageEncoder("cnn")`` with a shared
on-disk ``cache_dir``, TF-IDF text) is saved with joblib.  Its serial answers
(``predict_proba``) are computed first, one call at a time, then the cache is
emptied and, for ``--seconds``:

* ``--threads`` threads of this process share the one loaded model
  (``on_error="raise"``) and loop on ``predict_proba`` over random batches of
  1 to 96 rows;
* ``--processes`` worker processes load the same model file and do the same,
  alternately with ``on_error="raise"`` and ``on_error="warn"`` (warnings are
  recorded per call, which only a single-threaded process can do);
* a vandal process rewrites image files under them: some with identical bytes
  (the mtime, hence the cache key, changes), atomically or in place (a reader
  may see a half-written file); some alternately with two different images
  (their rows may answer for either); and some are deleted and restored.

Every answer is checked row by row (atol 1e-5) against the serial one: a
rewritten row may also give the answer of its other image, and under
``on_error="warn"`` a vandalised row may be answered as a missing image when
that call warned.  An error is "clear" when it is a ValueError naming a file
the vandal touched.  A different answer, any other exception, a call running
over ``--hang-seconds``, a worker that crashes or serves nothing, or a wrong
answer from the warm cache after the soak (every file restored) fails the
run (exit 1).  RSS of every process (and of its decoding workers) is sampled
from /proc throughout.

    python benchmarks/soak.py --seconds 180

The table goes into the "soak" section of BENCHMARKS.md (``--no-write``: print only).
"""

import argparse
import collections
import faulthandler
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

ATOL = 1e-5
BATCH_SIZES = (1, 4, 16, 48, 96)
MIB = 1 << 20
N_SAME, N_SWAP, N_GONE = 24, 8, 8  # rows whose files the vandal rewrites identically / swaps / deletes


# ----------------------------------------------------------------------------- setup (main process)


def build(workdir, n_rows, num_workers, seed):
    """Data, two fitted models (raise / warn), their serial answers, the vandal's plan; returns the config."""
    import joblib

    from skmm import FusionClassifier, ImageEncoder
    from skmm.datasets import make_shapes

    df = make_shapes(n_rows, random_state=seed, directory=os.path.join(workdir, "images"), image_size=32)
    alt = make_shapes(n_rows, random_state=seed + 1, directory=os.path.join(workdir, "alt"), image_size=32)
    df = df[["image_path", "caption", "label"]]
    cache_dir = os.path.join(workdir, "cache")
    models = {}
    for on_error in ("raise", "warn"):
        image = ImageEncoder(
            "cnn", image_size=16, trainable=False, random_state=0, cache_dir=cache_dir, num_workers=num_workers
        )
        clf = FusionClassifier(image=image, text="tfidf", max_epochs=3, random_state=0, on_error=on_error)
        models[on_error] = os.path.join(workdir, f"model-{on_error}.joblib")
        joblib.dump(clf.fit(df, df["label"]), models[on_error])

    rng = np.random.RandomState(seed)
    order = rng.permutation(n_rows)
    same, swap = order[:N_SAME], order[N_SAME : N_SAME + N_SWAP]
    gone = order[N_SAME + N_SWAP : N_SAME + N_SWAP + N_GONE]
    shape = df["label"].str.split("-").str[1]
    alt_shape = alt["label"].str.split("-").str[1]
    originals = os.path.join(workdir, "originals")
    os.makedirs(originals)
    plan, swap_alt = {}, {}
    for kind, rows in (("same", same), ("swap", swap), ("gone", gone)):
        for r in rows:
            path = df["image_path"][r]
            keep = os.path.join(originals, os.path.basename(path))
            shutil.copyfile(path, keep)
            plan[path] = {"kind": kind, "a": keep}
            if kind == "swap":  # the other image: a different shape, so the answers differ
                candidates = np.flatnonzero(alt_shape.to_numpy() != shape[r])
                plan[path]["b"] = swap_alt[int(r)] = alt["image_path"][int(candidates[rng.randint(len(candidates))])]

    # The serial answers, one call at a time, from the saved files.
    refs = {}
    for on_error, path in models.items():
        model = joblib.load(path)
        full = model.predict_proba(df)
        pieces = np.concatenate([model.predict_proba(df.iloc[i : i + 7]) for i in range(0, n_rows, 7)])
        missing = model.predict_proba(df.assign(image_path=None))
        other = full.copy()
        rows = sorted(swap_alt)
        other[rows] = model.predict_proba(df.iloc[rows].assign(image_path=[swap_alt[r] for r in rows]))
        refs[on_error] = {"ref": full, "missing": missing, "other": other}
        refs[on_error]["batch_effect"] = float(np.abs(full - pieces).max())
    np.savez(
        os.path.join(workdir, "refs.npz"),
        **{f"{m}_{k}": v for m, d in refs.items() for k, v in d.items() if k != "batch_effect"},
    )
    df.to_pickle(os.path.join(workdir, "frame.pkl"))
    vandal = sorted(plan)
    ref = refs["raise"]["ref"]
    checks = {
        "models_agree": float(np.abs(refs["raise"]["ref"] - refs["warn"]["ref"]).max()),
        "batch_effect": max(d["batch_effect"] for d in refs.values()),
        "swap_distinct": int(sum(np.abs(ref[r] - refs["raise"]["other"][r]).max() > 10 * ATOL for r in swap_alt)),
        "missing_distinct": int(
            sum(np.abs(ref[r] - refs["raise"]["missing"][r]).max() > 10 * ATOL for r in range(n_rows))
        ),
    }
    shutil.rmtree(cache_dir)  # the soak starts cold: every process fills the cache at once
    os.makedirs(cache_dir)
    return {
        "workdir": workdir,
        "models": models,
        "cache_dir": cache_dir,
        "plan": plan,
        "vandalised": vandal,
        "n_rows": n_rows,
        "seed": seed,
        "checks": checks,
    }


def load_refs(workdir):
    data = np.load(os.path.join(workdir, "refs.npz"))
    return {m: {k: data[f"{m}_{k}"] for k in ("ref", "missing", "other")} for m in ("raise", "warn")}


# ----------------------------------------------------------------------------- serving and checking


class Stats:
    def __init__(self, name, on_error):
        self.name, self.on_error = name, on_error
        self.requests = self.ok = self.rows = self.wrong = self.unexpected = self.missing_warned = self.other_image = 0
        self.errors = collections.Counter()
        self.examples = []  # wrong answers and unexpected errors, the first few
        self.latencies = []
        self.in_call_since = None

    def as_dict(self):
        d = dict(vars(self))
        d["errors"] = dict(self.errors)
        lat = sorted(self.latencies) or [0.0]
        d["latency"] = [lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))], lat[-1]]
        del d["latencies"], d["in_call_since"]
        return d

    def note(self, text):
        if len(self.examples) < 5:
            self.examples.append(text)


def error_kind(exc, vandalised):
    """``"<type>: <reason>"`` when ``exc`` is a ValueError naming a vandalised file, else None."""
    text = str(exc)
    if isinstance(exc, ValueError):
        for path in vandalised:
            at = text.find(repr(path) + ": ")
            if at >= 0:
                reason = re.split(r" \(|; |\.$", text[at + len(repr(path)) + 2 :])[0].strip()
                return f"{type(exc).__name__}: {reason}"
    return None


def check_rows(stats, got, rows, refs, frame, plan, warned):
    """Count the rows of one answer that are neither the serial answer nor an allowed alternative."""
    bad = []
    for j, r in enumerate(rows):
        if np.allclose(got[j], refs["ref"][r], atol=ATOL, rtol=0):
            continue
        path = frame["image_path"][r]
        if path in plan and plan[path]["kind"] == "swap" and np.allclose(got[j], refs["other"][r], atol=ATOL, rtol=0):
            stats.other_image += 1
            continue
        if (
            path in plan
            and warned
            and (repr(path) in warned or "more" in warned)
            and np.allclose(got[j], refs["missing"][r], atol=ATOL, rtol=0)
        ):
            stats.missing_warned += 1
            continue
        bad.append(r)
        kind = plan.get(path, {}).get("kind", "untouched")
        stats.note(f"row {r} ({kind} file): got {got[j]}, serial {refs['ref'][r]}")
    return bad


def serve(model, stats, refs, frame, plan, deadline, seed, record_warnings):
    rng = random.Random(seed)
    vandalised = set(plan)
    while time.time() < deadline:
        rows = rng.sample(range(len(frame)), rng.choice(BATCH_SIZES))
        X = frame.iloc[rows]
        stats.requests += 1
        t0 = stats.in_call_since = time.time()
        try:
            if record_warnings:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    got = model.predict_proba(X)
                warned = " ".join(str(w.message) for w in caught)
            else:
                got, warned = model.predict_proba(X), ""
        except Exception as exc:  # noqa: BLE001 - every exception is judged below
            kind = error_kind(exc, vandalised)
            if kind is None:
                stats.unexpected += 1
                stats.note("unexpected " + "".join(traceback.format_exception(exc))[-1500:])
            else:
                stats.errors[kind] += 1
            continue
        finally:
            stats.latencies.append(time.time() - t0)
            stats.in_call_since = None
        bad = check_rows(stats, got, rows, refs, frame, plan, warned)
        stats.wrong += len(bad)
        stats.ok += not bad
        stats.rows += len(rows)


# ----------------------------------------------------------------------------- child processes


def handshake():
    """Say ready, wait for the main process's start signal (``go <deadline>``)."""
    print("ready", flush=True)
    line = sys.stdin.readline().split()
    if not line or line[0] != "go":
        sys.exit(0)
    return float(line[1])


def worker_main(config, index, out):
    import joblib
    import pandas as pd

    faulthandler.register(signal.SIGUSR1, all_threads=True)
    on_error = "raise" if index % 2 == 0 else "warn"
    model = joblib.load(config["models"][on_error])
    frame = pd.read_pickle(os.path.join(config["workdir"], "frame.pkl"))
    refs = load_refs(config["workdir"])[on_error]
    stats = Stats(f"process {index}", on_error)
    deadline = handshake()
    serve(model, stats, refs, frame, config["plan"], deadline, config["seed"] * 1000 + 100 + index, True)
    with open(out, "w") as fh:
        json.dump(stats.as_dict(), fh)


def write_file(path, data, atomic, rng):
    if atomic:
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    else:  # in place, in two halves: a reader may meet an empty or half-written file
        with open(path, "wb") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
            time.sleep(rng.uniform(0, 0.005))
            fh.write(data[len(data) // 2 :])


def vandal_main(config, out):
    plan = config["plan"]
    content = {p: {k: open(v, "rb").read() for k, v in spec.items() if k in "ab"} for p, spec in plan.items()}
    showing = dict.fromkeys(plan, "a")
    by_kind = collections.defaultdict(list)
    for path, spec in plan.items():
        by_kind[spec["kind"]].append(path)
    rng = random.Random(config["seed"])
    actions = collections.Counter()
    gone = {}  # path -> when to restore it
    deadline = handshake()
    while time.time() < deadline:
        now = time.time()
        for path in [p for p, t in gone.items() if t <= now]:
            write_file(path, content[path]["a"], rng.random() < 0.5, rng)
            del gone[path]
            actions["restore deleted file"] += 1
        kind = rng.choice(["same", "same", "swap", "gone"])
        path = rng.choice(by_kind[kind])
        atomic = rng.random() < 0.5
        how = "atomically" if atomic else "in place"
        if kind == "same":
            write_file(path, content[path][showing[path]], atomic, rng)
            actions[f"rewrite identical bytes {how}"] += 1
        elif kind == "swap":
            showing[path] = "b" if showing[path] == "a" else "a"
            write_file(path, content[path][showing[path]], atomic, rng)
            actions[f"swap to the other image {how}"] += 1
        elif path not in gone:
            os.remove(path)
            gone[path] = now + rng.uniform(0.05, 1.0)
            actions["delete file"] += 1
        time.sleep(rng.uniform(0.02, 0.2))
    for path in plan:  # every file back to its original bytes (a fresh mtime)
        write_file(path, content[path]["a"], True, rng)
    with open(out, "w") as fh:
        json.dump(dict(actions), fh)


# ----------------------------------------------------------------------------- RSS from /proc

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss(pid):
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


def pss(pid):
    """Proportional set size (shared pages divided among their users), or RSS where smaps_rollup is missing."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return rss(pid)


def descendants(pid, skip=()):
    """Child processes of ``pid``, recursively, not entering those in ``skip``."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parent[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, todo = [], [pid]
    while todo:
        pid = todo.pop()
        kids = [c for c, p in parent.items() if p == pid and c not in skip]
        found += kids
        todo += kids
    return found


def sample_rss(pids):
    """``{name: (own RSS, summed PSS of its other child processes)}`` for the processes still alive.

    Decoding workers are forked: most of their RSS is pages shared with their parent, so they are
    counted by PSS, which splits shared pages among the processes using them.
    """
    tracked = set(pids.values())
    out = {}
    for name, pid in pids.items():
        own = rss(pid)
        if own:  # 0: exited, not reaped yet
            out[name] = (own, sum(pss(c) or 0 for c in descendants(pid, tracked)))
    return out


# ----------------------------------------------------------------------------- the soak (main process)


def start_child(role, config_path, log, *extra):
    cmd = [sys.executable, os.path.abspath(__file__), "--role", role, "--config", config_path, *extra]
    with open(log, "w") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)


def kill_pids(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def kill_children(children):
    """Kill the child processes still running, and their decoding workers first."""
    for proc, _ in children.values():
        if proc.poll() is None:
            kill_pids(descendants(proc.pid))
            proc.kill()
            proc.wait()


def wait_ready(proc, timeout):
    import select

    end = time.time() + timeout
    while time.time() < end:
        if select.select([proc.stdout], [], [], max(0.0, end - time.time()))[0]:
            line = proc.stdout.readline()
            if line.strip() == "ready":
                return True
            if not line:
                return False
    return False


def cache_usage(cache_dir):
    from skmm.cache import DiskCache

    info = DiskCache(cache_dir).info()
    return {"entries": info["entries"], "bytes": info["bytes"], "file_bytes": info["file_bytes"]}


def run_soak(seconds=180, threads=8, processes=2, num_workers=2, hang_seconds=120, n_rows=240, seed=0):
    """Run the soak in a temporary directory; returns the summary (``summary["failures"]`` empty when it passed)."""
    workdir = tempfile.mkdtemp(prefix="skmm-soak-")
    summary = {"hung": True}  # kept for a look when the run dies or hangs
    try:
        summary = _soak(workdir, seconds, threads, processes, num_workers, hang_seconds, n_rows, seed)
    finally:
        if not summary.get("hung"):
            shutil.rmtree(workdir, ignore_errors=True)
    return summary


def _soak(workdir, seconds, threads, processes, num_workers, hang_seconds, n_rows, seed):
    import joblib
    import pandas as pd

    t_setup = time.time()
    config = build(workdir, n_rows, num_workers, seed)
    config_path = os.path.join(workdir, "config.json")
    with open(config_path, "w") as fh:
        json.dump(config, fh)
    setup_s = time.time() - t_setup
    print(f"set up in {setup_s:.0f} s; serial checks: {config['checks']}", flush=True)

    failures = []
    children = {}
    for k in range(processes):
        out = os.path.join(workdir, f"worker{k}.json")
        proc = start_child("worker", config_path, out + ".log", "--index", str(k), "--out", out)
        children[f"process {k}"] = (proc, out)
    out = os.path.join(workdir, "vandal.json")
    children["vandal"] = (start_child("vandal", config_path, out + ".log", "--out", out), out)
    try:
        model = joblib.load(config["models"]["raise"])  # one model shared by every thread
        frame = pd.read_pickle(os.path.join(workdir, "frame.pkl"))
        refs = load_refs(workdir)["raise"]
        for name, (proc, _) in children.items():
            if not wait_ready(proc, 300):
                failures.append(f"{name} did not start (exit {proc.poll()})")

        start = time.time()
        deadline = start + seconds
        for proc, _ in children.values():
            try:
                proc.stdin.write(f"go {deadline}\n")
                proc.stdin.close()
            except OSError:
                pass
        stats = [Stats(f"thread {i}", "raise") for i in range(threads)]
        pool = [
            threading.Thread(
                target=serve,
                args=(model, s, refs, frame, config["plan"], deadline, seed * 1000 + i, False),
                daemon=True,
            )
            for i, s in enumerate(stats)
        ]
        for t in pool:
            t.start()

        pids = {f"main ({threads} threads)": os.getpid()}
        pids.update({name: proc.pid for name, (proc, _) in children.items()})
        samples, hung = [], False
        interval = max(0.5, seconds / 120)
        while any(t.is_alive() for t in pool) or any(p.poll() is None for p, _ in children.values()):
            now = time.time()
            samples.append((now - start, sample_rss(pids)))
            late = [s.name for s in stats if s.in_call_since and now - s.in_call_since > hang_seconds]
            late += [n for n, (p, _) in children.items() if p.poll() is None and now > deadline + hang_seconds]
            if late:
                failures.append(f"hang: {', '.join(late)} still inside a call {hang_seconds} s on (stacks on stderr)")
                faulthandler.dump_traceback(all_threads=True)
                for proc, _ in children.values():
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGUSR1)
                time.sleep(2)
                kill_children(children)
                hung = True
                break
            time.sleep(interval)
        samples.append((time.time() - start, sample_rss({k: v for k, v in pids.items() if k.startswith("main")})))
        duration = time.time() - start

        results, vandal = [s.as_dict() for s in stats], {}
        for name, (proc, out) in children.items():
            code = proc.wait()
            if code != 0 or not os.path.exists(out):
                log = open(out + ".log").read()[-3000:]
                failures.append(f"{name} exited with {code}: {log}")
                continue
            data = json.load(open(out))
            if name == "vandal":
                vandal = data
            else:
                results.append(data)
        for r in results:
            if r["wrong"]:
                failures.append(f"{r['name']}: {r['wrong']} wrong rows: {r['examples']}")
            if r["unexpected"]:
                failures.append(f"{r['name']}: {r['unexpected']} unexpected errors: {r['examples']}")
            if not r["ok"]:
                failures.append(f"{r['name']} served no answer")

    finally:  # never leave a child behind, whatever happened
        kill_children(children)
    post = {}
    if not hung and vandal:  # every file back to its first bytes: the warm cache must agree with the serial answers
        for attempt in ("first", "second"):
            got = model.predict_proba(frame)
            post[attempt] = int((np.abs(got - refs["ref"]).max(axis=1) > ATOL).sum())
        if any(post.values()):
            failures.append(f"after the soak, rows answered differently from the serial answers: {post}")
    summary = {
        "seconds": seconds, "threads": threads, "processes": processes, "num_workers": num_workers,
        "n_rows": n_rows, "setup_s": setup_s, "duration_s": duration, "checks": config["checks"],
        "workers": results, "vandal": vandal, "rss": samples, "post_check": post,
        "cache": cache_usage(config["cache_dir"]), "failures": failures,
    }  # fmt: skip
    if hung:
        summary["hung"] = True
        summary["failures"].append(f"files kept in {workdir}")
    return summary


# ----------------------------------------------------------------------------- report


def rss_over_time(samples, duration):
    """Per process: RSS (own + decoding workers) at 0/25/50/75/100 % of the run and the peak, in MiB."""
    names = list(dict.fromkeys(n for _, s in samples for n in s))
    table = {}
    for name in names:
        series = [(t, own, kids) for t, s in samples if name in s for own, kids in [s[name]]]
        if not series:
            continue
        points = []
        for frac in (0, 0.25, 0.5, 0.75, 1.0):
            t, own, kids = min(series, key=lambda x: abs(x[0] - frac * duration))
            points.append(f"{own / MIB:.0f}" + (f" + {kids / MIB:.0f}" if kids else ""))
        peak = max(series, key=lambda x: x[1] + x[2])
        table[name] = points + [f"{(peak[1] + peak[2]) / MIB:.0f}"]
    return table


def build_markdown(summary, command, started, load_before):
    import torch

    workers = summary["workers"]
    total = collections.Counter()
    for w in workers:
        total.update(w["errors"])
    lines = [
        "## Soak: predict under load while image files change (issue 11)",
        "",
        "```",
        command,
        "```",
        "",
        f"Machine: {len(os.sched_getaffinity(0))} CPU cores shared with other jobs (load average "
        f"{load_before[0]:.1f} when the run started, {os.getloadavg()[0]:.1f} when it ended), no GPU used; "
        f"torch {torch.__version__}, Python {sys.version.split()[0]}. Run started {started}; set-up (data, two fits, "
        f"serial answers) {summary['setup_s']:.0f} s, soak {summary['duration_s']:.0f} s.",
        "",
        f"One model file (FusionClassifier, frozen `ImageEncoder(\"cnn\", image_size=16, "
        f"num_workers={summary['num_workers']})` with one shared `cache_dir`, TF-IDF text; {summary['n_rows']} "
        f"make_shapes rows; requests of {'/'.join(map(str, BATCH_SIZES))} random rows). "
        f"{summary['threads']} threads of the main process share one loaded model (`on_error=\"raise\"`); "
        f"{summary['processes']} worker processes load the same file (even: `raise`, odd: `warn`). The cache "
        "starts empty. A vandal process meanwhile rewrites image files with identical bytes "
        f"({N_SAME} files), swaps {N_SWAP} between two images, deletes and restores {N_GONE}, half of the "
        "writes atomic, half in place. Every answer is compared row by row with the serial one (atol 1e-5; "
        "a swapped file may answer for either image; under `warn` a vandalised row may answer as a missing "
        "image when that call warned).",
        "",
        "| worker | on_error | requests | rows answered | answers right | clear errors | wrong rows | "
        "unexpected errors | swapped rows answered for the other image | missing (warned) rows | "
        "latency p50 / p99 / max |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in workers:
        lat = " / ".join(f"{x:.2f} s" for x in w["latency"])
        lines.append(
            f"| {w['name']} | {w['on_error']} | {w['requests']} | {w['rows']} | {w['ok']} | "
            f"{sum(w['errors'].values())} | {w['wrong']} | {w['unexpected']} | {w['other_image']} | "
            f"{w['missing_warned']} | {lat} |"
        )
    ok = sum(w["ok"] for w in workers)
    lines.append(
        f"| **all** | | **{sum(w['requests'] for w in workers)}** | {sum(w['rows'] for w in workers)} | "
        f"{ok} ({ok / summary['duration_s']:.1f}/s) | {sum(total.values())} | "
        f"**{sum(w['wrong'] for w in workers)}** | **{sum(w['unexpected'] for w in workers)}** | "
        f"{sum(w['other_image'] for w in workers)} | {sum(w['missing_warned'] for w in workers)} | |"
    )
    lines += ["", "| clear error (a ValueError naming the vandalised file) | count |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in total.most_common()] or ["| (none) | 0 |"]
    lines += ["", "| vandal action | count |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(summary["vandal"].items())]
    lines += [
        "",
        "Memory in MiB over the soak: RSS of the process, + the PSS of its DataLoader decoding workers when "
        "any were alive at that moment (forked workers share most pages with their parent; PSS counts a "
        "shared page once across them); peak: the largest sum seen, sampled every "
        f"{max(0.5, summary['seconds'] / 120):.1f} s):",
        "",
        "| process | start | 25 % | 50 % | 75 % | end | peak |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, points in rss_over_time(summary["rss"], summary["duration_s"]).items():
        lines.append(f"| {name} | " + " | ".join(points) + " |")
    c, post = summary["checks"], summary["post_check"]
    cache = summary["cache"]
    lines += [
        "",
        f"Serial checks before the soak: the raise and warn models agree to {c['models_agree']:.1e}; answering "
        f"in batches of 7 vs all rows at once differs by {c['batch_effect']:.1e}; {c['swap_distinct']} of "
        f"{N_SWAP} swapped rows and {c['missing_distinct']} of {summary['n_rows']} rows without their image "
        "answer differently (so a wrong image would be seen). After the soak (every file restored, cache warm): "
        f"rows answered differently from the serial answers: {post.get('first', '-')} then "
        f"{post.get('second', '-')} (from the cache). Cache at the end: {cache['entries']} entries, "
        f"{cache['bytes'] / MIB:.1f} MiB ({cache['file_bytes'] / MIB:.1f} MiB on disk).",
        "",
        "Verdict: " + ("**pass**" if not summary["failures"] else "**FAIL**: " + "; ".join(summary["failures"])[:2000]),
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180, help="length of the soak (default 180)")
    parser.add_argument("--threads", type=int, default=8, help="threads of the main process (default 8)")
    parser.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--num-workers", type=int, default=2, help="the image encoder's DataLoader workers")
    parser.add_argument("--hang-seconds", type=float, default=120, help="a call longer than this is a hang")
    parser.add_argument("--rows", type=int, default=240, help="rows of the data set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the summary here")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    parser.add_argument("--role", default="main", choices=["main", "worker", "vandal"], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role != "main":
        config = json.load(open(args.config))
        if args.role == "worker":
            worker_main(config, args.index, args.out)
        else:
            vandal_main(config, args.out)
        return 0

    from benchmarks.report import command_line

    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M")
    summary = run_soak(
        args.seconds, args.threads, args.processes, args.num_workers, args.hang_seconds, args.rows, args.seed
    )
    markdown = build_markdown(summary, command_line(), started, load_before)
    print(markdown, flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summary, fh)
    if not args.no_write:
        from benchmarks.report import write_section

        write_section("soak", markdown)
    if summary.get("hung"):
        sys.stdout.flush()
        kill_pids(descendants(os.getpid()))  # decoding workers of the stuck threads
        os._exit(1)  # threads stuck in a call would keep the interpreter from exiting
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
