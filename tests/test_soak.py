"""benchmarks/soak.py: predict from threads and processes on one model and one cache_dir while a
vandal rewrites and deletes image files; every answer is the serial one or a clear error.

The full soak (a few minutes, 8 threads + 2 processes) is run by hand and reported in
BENCHMARKS.md; here a 15-second one runs in a subprocess under a timeout (so a hang fails
instead of freezing the run), and the checker itself is tested on made-up answers.
"""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from helpers import ROOT, load_benchmark


@pytest.fixture(scope="module")
def soak():
    return load_benchmark("soak")


def _setup(soak):
    frame = pd.DataFrame({"image_path": ["/d/a.png", "/d/b.png", "/d/c.png"], "caption": ["x", "y", "z"]})
    plan = {"/d/b.png": {"kind": "swap"}, "/d/c.png": {"kind": "gone"}}
    refs = {
        "ref": np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]),
        "other": np.array([[0.9, 0.1], [0.1, 0.9], [0.7, 0.3]]),
        "missing": np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]),
    }
    return frame, plan, refs


def test_checker_accepts_the_serial_answer_and_the_allowed_alternatives(soak):
    frame, plan, refs = _setup(soak)
    stats = soak.Stats("t", "warn")
    got = refs["ref"] + 5e-6
    assert soak.check_rows(stats, got, [0, 1, 2], refs, frame, plan, "") == []
    got = np.array([refs["ref"][0], refs["other"][1], refs["missing"][2]])
    warned = (
        "1 image in column 'image_path' could not be loaded and is treated as missing: "
        "row 2: '/d/c.png': file not found."
    )
    assert soak.check_rows(stats, got, [0, 1, 2], refs, frame, plan, warned) == []
    assert (stats.other_image, stats.missing_warned) == (1, 1)


def test_checker_counts_wrong_answers(soak):
    frame, plan, refs = _setup(soak)
    stats = soak.Stats("t", "warn")
    # Another row's answer, a missing-image answer without a warning, the other image of an unswapped file.
    got = np.array([refs["ref"][2], refs["missing"][2], [0.5, 0.5]])
    assert soak.check_rows(stats, got, [0, 2, 0], refs, frame, plan, "") == [0, 2, 0]
    # A warning about another file does not excuse this one; an untouched file is never excused.
    warned = "... row 9: '/d/zzz.png': file not found."
    assert soak.check_rows(stats, refs["missing"][[0, 2]], [0, 2], refs, frame, plan, warned) == [0, 2]
    assert len(stats.examples) == 5


def test_only_value_errors_naming_a_vandalised_file_are_clear(soak):
    vandalised = {"/d/c.png"}
    msg = "Could not load image in row 2, column 'image_path': '/d/c.png': file is truncated (image file is truncated)"
    assert soak.error_kind(ValueError(msg), vandalised) == "ValueError: file is truncated"
    assert soak.error_kind(ValueError(msg.replace("c.png", "a.png")), vandalised) is None
    assert soak.error_kind(RuntimeError(msg), vandalised) is None
    assert soak.error_kind(ValueError("something else"), vandalised) is None


@pytest.mark.slow
@pytest.mark.soak
def test_short_soak_answers_right_or_fails_clearly(tmp_path):
    out = tmp_path / "soak.json"
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "soak.py"), "--seconds", "15", "--threads", "4",
           "--processes", "2", "--no-write", "--hang-seconds", "90", "--json", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        log, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the soak's own session: its workers, vandal and decoders
        log, _ = proc.communicate()
        pytest.fail(f"the soak hung:\n{log[-5000:]}")
    assert proc.returncode == 0, log[-5000:]
    summary = json.loads(out.read_text())
    assert summary["failures"] == [], summary["failures"]
    workers = summary["workers"]
    assert len(workers) == 6
    for w in workers:
        assert w["requests"] > 0 and w["ok"] > 0, w
        assert w["wrong"] == 0 and w["unexpected"] == 0, w
    assert sum(summary["vandal"].values()) > 0
    assert summary["post_check"] == {"first": 0, "second": 0}
    assert summary["cache"]["entries"] > 0
