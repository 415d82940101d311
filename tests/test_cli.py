"""The ``skmm`` command.

The main commands run as users run them, in a subprocess (``python -m skmm.cli``,
under a timeout); error cases and the cache commands call :func:`skmm.cli.main`
in-process, which is the same code path minus the interpreter start (about 5 s
each on two cores), and check the exit status, the one-line message and that
nothing was written.
"""

import importlib.util
import io
import json
import os
import re
import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest

from skmm import FusionClassifier, ImageEncoder
from skmm.cache import get_cache
from skmm.cli import main

# Small and fast: 40 rows of 16-px images, raw pixels and TF-IDF, two epochs.
FAST = [
    "--image-backbone", "pixels", "--text-backbone", "tfidf",
    "--param", "max_epochs=2", "dim=8", "hidden_dim=8", "image__image_size=16", "random_state=0",
]  # fmt: skip


def run_cli(*args, cwd, timeout=180):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", "skmm.cli", *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def listing(directory):
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*"))


def assert_one_line_error(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("skmm: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """make-shapes output: shapes.csv with image paths relative to its directory."""
    root = tmp_path_factory.mktemp("shapes")
    assert main(["make-shapes", "--out", str(root), "--n-samples", "40", "--image-size", "16"]) == 0
    return root / "shapes.csv"


@pytest.fixture(scope="module")
def frame(shapes):
    """shapes.csv as a model sees it after the command resolved its paths."""
    df = pd.read_csv(shapes)
    df["image_path"] = [str(shapes.parent / p) for p in df["image_path"]]
    return df


@pytest.fixture(scope="module")
def model_path(shapes, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "model.joblib"
    result = run_cli("fit", shapes, "--target", "label", *FAST, "-o", out, cwd=out.parent)
    assert result.returncode == 0, result.stderr
    assert "epoch" in result.stdout and "train_loss" in result.stdout  # verbose=1: the epoch table
    assert "model.joblib" in result.stdout and "trained on 40 rows" in result.stdout
    return out


# ------------------------------------------------------------------ the main loop


def test_fit_saves_a_loadable_model(model_path):
    model = joblib.load(model_path)
    assert isinstance(model, FusionClassifier)
    assert model.max_epochs == 2 and model.dim == 8 and model.image.image_size == 16
    assert model.image.backbone == "pixels" and model.text.backbone == "tfidf"
    assert list(model.classes_) == ["blue-circle", "blue-square", "red-circle", "red-square"]
    assert model.verbose == 0  # the command's progress is not baked into the saved model
    assert listing(model_path.parent) == ["model.joblib"]  # no temporary file left


def test_predict_matches_the_model_in_process(model_path, shapes, frame, tmp_path):
    out = tmp_path / "predictions.csv"
    result = run_cli("predict", model_path, shapes, "--proba", "-o", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(out)
    model = joblib.load(model_path)
    proba_columns = [f"proba_{c}" for c in model.classes_]
    assert list(written.columns) == ["prediction", *proba_columns]
    X = frame.drop(columns="label")
    np.testing.assert_array_equal(written["prediction"].to_numpy(), model.predict(X))
    np.testing.assert_allclose(written[proba_columns].to_numpy(), model.predict_proba(X), rtol=0, atol=1e-12)


def test_predict_without_proba_and_to_stdout(model_path, shapes, frame, capsys):
    assert main(["predict", str(model_path), str(shapes), "-q", "-o", "-"]) == 0
    written = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(written.columns) == ["prediction"]
    np.testing.assert_array_equal(written["prediction"], joblib.load(model_path).predict(frame.drop(columns="label")))


def test_image_root_resolves_relative_paths(model_path, shapes, tmp_path, capsys):
    moved = tmp_path / "elsewhere.csv"
    moved.write_text(shapes.read_text())  # relative paths no longer next to the data file
    out = tmp_path / "p.csv"
    assert main(["predict", str(model_path), str(moved), "-q", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert not out.exists() and "shape_00000.png" in err and "not found" in err
    assert main(["predict", str(model_path), str(moved), "-q", "--image-root", str(shapes.parent), "-o", str(out)]) == 0
    assert len(pd.read_csv(out)) == 40


def test_evaluate_writes_metrics_and_predictions(model_path, shapes, tmp_path):
    report = tmp_path / "report"
    result = run_cli("evaluate", model_path, shapes, "--target", "label", "-o", report, "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(report)) == ["metrics.json", "predictions.csv", "report.html"]
    metrics = json.loads((report / "metrics.json").read_text())
    predictions = pd.read_csv(report / "predictions.csv")
    assert list(predictions.columns[:2]) == ["target", "prediction"]
    assert metrics["n_samples"] == 40
    assert metrics["accuracy"] == pytest.approx((predictions["target"] == predictions["prediction"]).mean())
    assert 0 <= metrics["f1_macro"] <= 1 and metrics["log_loss"] > 0
    per_class = metrics["classification_report"]
    assert {c: per_class[c]["support"] for c in metrics["classes"]} == {c: 10 for c in metrics["classes"]}
    assert {"precision", "recall", "f1-score"} <= set(per_class["red-circle"])
    assert re.search(r"accuracy \d\.\d{3}\s+macro-F1 \d\.\d{3}\s+log-loss \d\.\d{3}", result.stdout)
    assert "red-circle" in result.stdout


def test_encode_writes_prefixed_features(shapes, frame, tmp_path):
    out = tmp_path / "features.csv"
    args = ["encode", shapes, "--image-backbone", "pixels", "--param", "image__image_size=16", "--keep", "label"]
    result = run_cli(*args, "-q", "-o", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    features = pd.read_csv(out)
    image = ImageEncoder("pixels", image_size=16).fit(frame[["image_path"]])
    image_columns = [f"image_path__{name}" for name in image.get_feature_names_out()]
    assert list(features.columns[: 1 + len(image_columns)]) == ["label", *image_columns]
    assert all(c.startswith("caption__") for c in features.columns[1 + len(image_columns) :])  # text detected
    np.testing.assert_allclose(features[image_columns].to_numpy(), image.transform(frame[["image_path"]]), atol=1e-6)


def test_encode_only_the_named_column(shapes, tmp_path, capsys):
    out = tmp_path / "text.csv"
    assert main(["encode", str(shapes), "--text-col", "caption", "--param", "text__dim=8", "-q", "-o", str(out)]) == 0
    columns = pd.read_csv(out).columns
    assert len(columns) > 0 and all(c.startswith("caption__") for c in columns)


def test_parquet_output_or_a_clear_error(shapes, tmp_path, capsys):
    out = tmp_path / "features.parquet"
    code = main(["encode", str(shapes), "--text-col", "caption", "-q", "-o", str(out)])
    if importlib.util.find_spec("pyarrow") is None and importlib.util.find_spec("fastparquet") is None:
        assert code == 2 and not out.exists()
        assert_one_line_error(capsys.readouterr().err, "pyarrow")
    else:
        assert code == 0 and len(pd.read_parquet(out)) == 40


def test_demo_prints_held_out_accuracy(capsys):
    assert main(["demo", "--n-samples", "48", "--max-epochs", "2", "-q"]) == 0
    assert re.search(r"accuracy \d\.\d{3} on 12 held-out rows", capsys.readouterr().out)


def test_list_names_every_registry(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^image backbones: .*\bcnn\b.*\bpixels\b", out, re.M)
    assert re.search(r"^text backbones: .*\bgru\b.*\btfidf\b", out, re.M)
    assert re.search(r"^fusions: .*\bconcat\b.*\bgated\b", out, re.M)


def test_make_shapes_writes_a_portable_folder(shapes):
    df = pd.read_csv(shapes)
    assert len(df) == 40 and list(df.columns) == ["image_path", "caption", "label"]
    assert all(not os.path.isabs(p) and (shapes.parent / p).is_file() for p in df["image_path"])


# ------------------------------------------------------------------------- errors


def test_missing_target_is_a_one_line_error_in_a_subprocess(shapes, tmp_path):
    result = run_cli("fit", shapes, "--target", "lable", *FAST, "-o", tmp_path / "m.joblib", cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "--target 'lable'", "image_path, caption, label")
    assert listing(tmp_path) == []


@pytest.fixture
def bad_inputs(tmp_path, shapes):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("image_path,caption,label\n")
    text = shapes.read_text().replace("images/", "missing/")
    (tmp_path / "missing_images.csv").write_text(text)
    (tmp_path / "not_a_model.joblib").write_text("hello")
    return tmp_path


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["fit", "{shapes}", "--target", "label", "--param", "max_epoch=2"],
         ["'max_epoch'", "did you mean 'max_epochs'", "valid parameters:", "hidden_dim"]),
        (["fit", "{shapes}", "--target", "label", "--param", "max_epochs"], ["key=value", "'max_epochs'"]),
        (["fit", "{tmp}/empty.csv", "--target", "label"], ["empty.csv", "empty"]),
        (["fit", "{tmp}/header.csv", "--target", "label"], ["header.csv", "no rows"]),
        (["fit", "{tmp}/nothere.csv", "--target", "label"], ["nothere.csv", "does not exist"]),
        (["fit", "{tmp}", "--target", "label"], ["is a directory"]),
        (["fit", "{tmp}/missing_images.csv", "--target", "label", *FAST],
         ["missing/shape_00000.png", "image_path", "row 0"]),
        (["fit", "{shapes}", "--target", "label", "--image-col", "picture"], ["--image-col 'picture'", "columns"]),
        (["fit", "{shapes}", "--target", "label", "--fusion", "nope", *FAST], ["unknown fusion 'nope'", "gated"]),
        (["fit", "{shapes}", "--target", "label", "--param", "lr=-1", *FAST], ["lr"]),
        (["fit", "{shapes}", "--target", "label", "--image-root", "{tmp}/nodir"], ["--image-root", "nodir"]),
        (["predict", "{tmp}/not_a_model.joblib", "{shapes}"], ["cannot load model", "not_a_model.joblib"]),
        (["fit", "{shapes}"], ["required", "--target"]),
        (["fit", "{shapes}", "--target", "label", "--bogus"], ["unrecognized arguments: --bogus"]),
    ],
    ids=[
        "unknown-param", "param-without-value", "empty-file", "no-rows", "no-file", "directory", "missing-images",
        "missing-image-col", "unknown-fusion", "invalid-value", "bad-image-root", "bad-model", "no-target", "bad-flag",
    ],
)  # fmt: skip
def test_bad_input_is_a_one_line_error_and_writes_nothing(bad_inputs, shapes, capsys, argv, fragments):
    out = bad_inputs / "out"
    out.mkdir()
    argv = [a.format(shapes=shapes, tmp=bad_inputs) for a in argv]
    output = str(out / ("predictions.csv" if argv[0] == "predict" else "model.joblib"))
    assert main([*argv, "-q", "-o", output]) == 2
    assert_one_line_error(capsys.readouterr().err, *fragments)
    assert listing(out) == []


def test_usage_errors_are_one_line(capsys):
    assert main([]) == 2
    assert_one_line_error(capsys.readouterr().err, "COMMAND")
    assert main(["frobnicate"]) == 2
    assert_one_line_error(capsys.readouterr().err, "frobnicate")


def test_output_checked_before_any_work(shapes, tmp_path, capsys):
    assert main(["fit", str(shapes), "--target", "label", "-o", str(tmp_path / "no" / "m.joblib")]) == 2
    assert_one_line_error(capsys.readouterr().err, "does not exist")
    assert main(["predict", str(tmp_path / "m.joblib"), str(shapes), "-o", str(shapes)]) == 2
    assert_one_line_error(capsys.readouterr().err, "is an input")


def test_debug_shows_the_traceback(shapes, tmp_path, capsys):
    for argv in (["--debug", "fit"], ["fit", "--debug"]):
        code = main([*argv, str(shapes), "--target", "label", *FAST, "lr=-1", "-q", "-o", str(tmp_path / "m.joblib")])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" in err and err.strip().splitlines()[-1].startswith("skmm: error: ")


def test_unexpected_errors_exit_1_with_a_hint(shapes, tmp_path, capsys, monkeypatch):
    def boom(self, X, y):
        raise RuntimeError("something odd")

    monkeypatch.setattr(FusionClassifier, "fit", boom)
    assert main(["fit", str(shapes), "--target", "label", *FAST, "-q", "-o", str(tmp_path / "m.joblib")]) == 1
    assert_one_line_error(capsys.readouterr().err, "unexpected RuntimeError: something odd", "--debug")
    assert listing(tmp_path) == []


@pytest.mark.parametrize("failure", [OSError("No space left on device"), KeyboardInterrupt()])
def test_a_failing_save_leaves_no_model_and_no_temporary_file(shapes, tmp_path, capsys, monkeypatch, failure):
    def half_written(model, path):
        with open(path, "wb") as f:
            f.write(b"half a model")
        raise failure

    monkeypatch.setattr(joblib, "dump", half_written)
    code = main(["fit", str(shapes), "--target", "label", *FAST, "-q", "-o", str(tmp_path / "m.joblib")])
    assert code == (130 if isinstance(failure, KeyboardInterrupt) else 2)
    assert capsys.readouterr().err.strip().startswith("skmm: error: ")
    assert listing(tmp_path) == []


def test_a_failing_save_keeps_the_previous_model(shapes, tmp_path, capsys, monkeypatch):
    target = tmp_path / "m.joblib"
    target.write_bytes(b"previous model")

    def fail(model, path):
        raise OSError("disk full")

    monkeypatch.setattr(joblib, "dump", fail)
    assert main(["fit", str(shapes), "--target", "label", *FAST, "-q", "-o", str(target)]) == 2
    assert target.read_bytes() == b"previous model" and listing(tmp_path) == ["m.joblib"]


# -------------------------------------------------------------------------- cache


@pytest.fixture
def filled_cache(frame, tmp_path):
    directory = tmp_path / "cache"
    ImageEncoder("pixels", image_size=16, cache_dir=directory).fit_transform(frame[["image_path"]])
    info = get_cache(directory).info()
    assert info["entries"] == 40
    return directory, info


SIZE = r"\d+(\.\d)? (B|KiB|MiB|GiB)"


def test_cache_info(filled_cache, capsys):
    directory, info = filled_cache
    assert main(["cache", "info", str(directory)]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"40 entries, {SIZE} \(limit 10\.0 GiB\), unsigned entries; {SIZE} on disk\n", out), out
    assert "pixels" in out and "older skmm" not in out  # the fingerprint names the backbone
    (directory / ("0" * 32)).mkdir()  # a cache of skmm before the SQLite store
    assert main(["cache", "info", str(directory)]) == 0
    assert "1 subdirectories of an older skmm's cache (one file per entry) are ignored" in capsys.readouterr().out
    assert main(["cache", "info", str(directory), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bytes"] == info["bytes"]


def test_cache_prune_to_a_size(filled_cache, capsys):
    directory, info = filled_cache
    limit = info["bytes"] // 2
    assert main(["cache", "prune", str(directory), "--max-bytes", str(limit)]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"removed \d+ entries \({SIZE}\); \d+ entries \({SIZE}\) left", out), out
    assert 0 < get_cache(directory).info()["bytes"] <= limit
    assert main(["cache", "prune", str(directory), "--max-bytes", "1 lightyear"]) == 2
    assert_one_line_error(capsys.readouterr().err, "--max-bytes")


def test_cache_clear_asks_for_yes(filled_cache, capsys):
    directory, _ = filled_cache
    assert main(["cache", "clear", str(directory)]) == 2  # stdin is no terminal under pytest
    assert_one_line_error(capsys.readouterr().err, "--yes")
    assert get_cache(directory).info()["entries"] == 40
    assert main(["cache", "clear", str(directory), "--fingerprint", "no-such-thing", "--yes"]) == 2
    assert_one_line_error(capsys.readouterr().err, "no-such-thing")
    assert main(["cache", "clear", str(directory), "--yes"]) == 0
    assert re.search(rf"removed 40 entries \({SIZE}\)", capsys.readouterr().out)
    assert get_cache(directory).info()["entries"] == 0


def test_cache_clear_one_fingerprint(filled_cache, frame, capsys):
    directory, info = filled_cache
    from skmm import TextEncoder

    TextEncoder("tfidf", dim=8, cache_dir=directory).fit_transform(frame[["caption"]])
    image_fp = next(fp["fingerprint"] for fp in info["fingerprints"])
    assert main(["cache", "clear", str(directory), "--fingerprint", image_fp, "-y"]) == 0
    left = get_cache(directory).info()["fingerprints"]
    assert len(left) == 1 and left[0]["fingerprint"] != image_fp


def test_cache_of_a_missing_directory(tmp_path, capsys):
    assert main(["cache", "info", str(tmp_path / "nope")]) == 2
    assert_one_line_error(capsys.readouterr().err, "does not exist")
