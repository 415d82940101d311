"""skmm.save / skmm.load: models as data (JSON + safetensors), loaded without unpickling.

The round trips load every saved model in ONE fresh Python process whose pickle
module refuses to unpickle anything and whose torch.load refuses
``weights_only=False``; the tests then compare what came back with the models
they were saved from.  The joblib path is covered here too: modules inside
pickles now load their tensors with ``weights_only=True``.
"""

import io
import json
import os
import pathlib
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import EarlyStopping

import skmm
from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.persistence.objects import LoadContext, Reader, SaveContext, Writer
from skmm.persistence.plain import Decoder
from skmm.utils.serialization import dump_module, load_module

# Runs in a fresh interpreter: pickle is disabled before anything else is imported.
LOAD_WITHOUT_PICKLE = textwrap.dedent(
    """
    import pickle, _pickle

    def refuse(*args, **kwargs):
        raise RuntimeError("unpickling is disabled in this process")

    class NoUnpickler(_pickle.Unpickler):
        find_class = load = refuse

    class NoPyUnpickler(pickle._Unpickler):
        find_class = load = refuse

    for module in (pickle, _pickle):
        module.load = module.loads = refuse
        module.Unpickler = NoUnpickler
    pickle._Unpickler, pickle._load, pickle._loads = NoPyUnpickler, refuse, refuse

    import torch, torch.serialization
    real_load, torch_loads = torch.serialization.load, []

    def guarded_load(*args, weights_only=None, **kwargs):
        if weights_only is not True:
            raise RuntimeError(f"torch.load(weights_only={weights_only!r}) called")
        torch_loads.append(1)
        return real_load(*args, weights_only=True, **kwargs)

    torch.load = torch.serialization.load = guarded_load

    import json, sys, warnings
    import numpy as np, pandas as pd
    import skmm

    folder = sys.argv[1]
    manifest = json.load(open(f"{folder}/manifest.json"))
    frame = pd.read_csv(f"{folder}/X.csv")
    inputs = {"frame": frame, "array": np.load(f"{folder}/X.npy", allow_pickle=False),
              "images": frame["image_path"], "texts": frame["caption"]}
    try:
        pickle.loads(b"\\x80\\x04K\\x01.")
        report = {"guard": False}
    except RuntimeError:
        report = {"guard": True}
    for name, (method, data) in manifest.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = skmm.load(f"{folder}/{name}")
        X = inputs[data]
        np.save(f"{folder}/{name}.npy", getattr(model, method)(X))
        out = {"warnings": [str(w.message) for w in caught]}
        if hasattr(model, "predict"):
            pred = model.predict(X)
            if isinstance(pred, pd.Categorical):
                out["categories"], out["ordered"] = list(pred.categories), bool(pred.ordered)
                pred = np.asarray(pred, dtype=object)
            out["dtype"], out["predictions"] = str(pred.dtype), pred.tolist()
        report[name] = out
    report["torch_loads"] = len(torch_loads)
    print(json.dumps(report))
    """
)


def _clf(**params):
    defaults = dict(max_epochs=2, dim=16, hidden_dim=16, random_state=0, device="cpu")
    defaults.update(params)
    return FusionClassifier(**defaults)


def _cnn(**params):
    return ImageEncoder("cnn", image_size=16, num_workers=0, backbone_kwargs={"channels": (4, 8)}, **params)


def _pixels():
    return ImageEncoder("pixels", image_size=8, num_workers=0)


def _predictions(pred):
    if isinstance(pred, pd.Categorical):
        return {"categories": list(pred.categories), "ordered": bool(pred.ordered),
                "dtype": "object", "predictions": np.asarray(pred, dtype=object).tolist()}
    return {"dtype": str(pred.dtype), "predictions": pred.tolist()}


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory, shapes_df):
    """Fit, save with skmm.save, load all in one pickle-free process; (loaded, expected, report) per model."""
    folder = tmp_path_factory.mktemp("safe")
    shapes_df.to_csv(folder / "X.csv", index=False)
    frame = pd.read_csv(folder / "X.csv")  # what the child reads
    y = frame["label"]
    categorical = pd.Categorical(y, categories=[*sorted(y.unique()), "never-seen"])
    numbers = np.random.RandomState(0).rand(len(frame), 5).astype(np.float32)
    np.save(folder / "X.npy", numbers)

    def features():
        return make_column_transformer(
            (_pixels(), "image_path"), (TextEncoder("tfidf", n_components=8, random_state=0), "caption"),
        )

    models = {
        "trainable": (_clf(image=_cnn(), text="gru", fusion="gated").fit(frame, y), "predict_proba", "frame"),
        "frozen": (
            _clf(image=_pixels(), text=TextEncoder("tfidf", n_components=8, random_state=0),
                 class_weight="balanced").fit(frame, categorical),
            "predict_proba", "frame",
        ),
        "numeric": (_clf(fusion="late").fit(numbers, (numbers[:, 0] > 0.5).astype(np.int32)), "predict_proba",
                    "array"),
        "image_encoder": (_cnn(random_state=0).fit(frame["image_path"]), "transform", "images"),
        "gru_encoder": (TextEncoder("gru", dim=8, random_state=0).fit(frame["caption"]), "transform", "texts"),
        "tfidf_encoder": (
            TextEncoder("tfidf", backbone_kwargs={"ngram_range": (1, 2), "min_df": 2}).fit(frame["caption"]),
            "transform", "texts",
        ),
        "fusion_pipeline": (
            make_pipeline(features().set_output(transform="pandas"), _clf(fusion="attention")).fit(frame, y),
            "predict_proba", "frame",
        ),
        "sklearn_pipeline": (
            make_pipeline(features(), StandardScaler(), LogisticRegression(max_iter=200)).fit(frame, y),
            "predict_proba", "frame",
        ),
    }
    expected = {}
    for name, (model, method, data) in models.items():
        X = {"frame": frame, "array": numbers, "images": frame["image_path"], "texts": frame["caption"]}[data]
        expected[name] = (getattr(model, method)(X), _predictions(model.predict(X)) if hasattr(model, "predict") else {})
        skmm.save(model, folder / name)
    (folder / "manifest.json").write_text(json.dumps({n: [m, d] for n, (_, m, d) in models.items()}))
    (folder / "load.py").write_text(LOAD_WITHOUT_PICKLE)
    done = subprocess.run([sys.executable, str(folder / "load.py"), str(folder)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: (np.load(folder / f"{name}.npy"), expected[name], report[name]) for name in models}, report


MODELS = ["trainable", "frozen", "numeric", "image_encoder", "gru_encoder", "tfidf_encoder", "fusion_pipeline",
          "sklearn_pipeline"]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_a_saved_model_loads_without_unpickling_and_predicts_the_same(round_trip, name):
    results, report = round_trip
    loaded, (expected, predictions), child = results[name]
    assert report["guard"]  # pickle really refused to load in the child
    np.testing.assert_allclose(loaded, expected, atol=1e-6)
    assert {k: child[k] for k in predictions} == predictions  # labels, their dtype, categories
    assert child["warnings"] == []


@pytest.mark.slow
def test_loading_never_calls_torch_load_without_weights_only(round_trip):
    _, report = round_trip
    assert report["torch_loads"] == 0  # weights come from safetensors; torch.load is not even needed


def _fit_small(shapes_df, **params):
    df = shapes_df.iloc[:32]
    return _clf(image=_pixels(), text="tfidf", max_epochs=1, **params).fit(df, df["label"]), df


def test_files_are_json_and_safetensors(tmp_path, shapes_df):
    clf, _ = _fit_small(shapes_df)
    skmm.save(clf, tmp_path / "m")
    assert sorted(os.listdir(tmp_path / "m")) == ["arrays.safetensors", "model.json", "weights.safetensors"]
    document = json.loads((tmp_path / "m" / "model.json").read_text())
    assert document["format"] == "skmm.model" and document["format_version"] == 1
    assert document["model"]["__object__"]["class"] == "skmm.FusionClassifier"


def test_cuda_saved_model_loads_on_cpu_with_one_warning(tmp_path, shapes_df):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the fallback cannot run here")
    clf, df = _fit_small(shapes_df)
    skmm.save(clf, tmp_path)
    _mark_saved_on(tmp_path, "cuda")
    _edit_json(tmp_path, '"device": "cpu"', '"device": "cuda"')  # the parameter too: fitted with device="cuda"
    with pytest.warns(UserWarning, match="CUDA is not available") as caught:
        loaded = skmm.load(tmp_path)
    assert sum("CUDA" in str(w.message) for w in caught) == 1
    assert loaded.device_ == "cpu" and all(b.encoder.device_ == "cpu" for b in loaded.branches_.values())
    assert loaded.device == "cuda"  # the parameters stay as saved
    np.testing.assert_allclose(loaded.predict_proba(df), clf.predict_proba(df), atol=1e-6)
    assert skmm.load(tmp_path, device="cpu").device_ == "cpu"  # an explicit device: no warning needed


def _mark_saved_on(folder, device):
    """Rewrite every object's saved device (their fitted state, not their parameters)."""

    def visit(node):
        if isinstance(node, dict):
            record = node.get("__object__")
            if record is not None and isinstance(record.get("state"), dict) and "device" in record["state"]:
                record["state"]["device"] = device
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    document = json.loads((folder / "model.json").read_text())
    visit(document)
    (folder / "model.json").write_text(json.dumps(document))


def test_an_unfitted_estimator_keeps_its_parameters(tmp_path):
    clf = FusionClassifier(
        image=ImageEncoder("cnn", backbone_kwargs={"channels": (4, 8)}, cache_dir=pathlib.Path("/tmp/c")),
        text=TextEncoder("tfidf", backbone_kwargs={"ngram_range": (1, 2), "dtype": np.float32}),
        class_weight={0: 2.0, 1: 1.0}, fusion_kwargs={"heads": 2}, lr=np.float32(0.01),
    )
    loaded = skmm.load(skmm.save(clf, tmp_path))
    params, original = loaded.get_params(deep=True), clf.get_params(deep=True)
    assert set(params) == set(original)
    for key, value in original.items():
        if not hasattr(value, "get_params"):
            assert params[key] == value and type(params[key]) is type(value), key
    assert not hasattr(loaded, "classes_")


@pytest.mark.parametrize(
    "model, named",
    [
        (FusionClassifier(callbacks=[EarlyStopping()]), "FusionClassifier.callbacks[0]"),
        (FusionClassifier(random_state=np.random.RandomState(0)), "FusionClassifier.random_state"),
        (TextEncoder("tfidf", backbone_kwargs={"preprocessor": str.lower}), "backbone_kwargs['preprocessor']"),
        (FusionClassifier(text=TextEncoder("tfidf", backbone_kwargs={"tokenizer": lambda s: s.split()})),
         "FusionClassifier.text.backbone_kwargs['tokenizer']"),
        (GridSearchCV(FusionClassifier(), {"fusion": ["concat"]}), "GridSearchCV"),
        (make_pipeline(StandardScaler(), FusionClassifier(callbacks=[EarlyStopping()])), "callbacks"),
    ],
    ids=["callback", "random-state", "callable", "nested-callable", "search", "in-pipeline"],
)
def test_what_is_not_plain_data_is_a_type_error_naming_it(tmp_path, model, named):
    with pytest.raises(TypeError, match=named.replace("[", r"\[").replace("(", r"\(")):
        skmm.save(model, tmp_path / "m")
    assert not (tmp_path / "m").exists()  # nothing written


def test_subclasses_and_other_estimators_are_refused(tmp_path):
    class MyEncoder(ImageEncoder):
        pass

    with pytest.raises(TypeError, match="MyEncoder.*cannot store.*joblib"):
        skmm.save(MyEncoder(), tmp_path)
    with pytest.raises(TypeError, match="best_estimator_"):
        skmm.save(GridSearchCV(FusionClassifier(), {"dim": [8]}), tmp_path)


def test_the_branch_reader_cannot_be_saved_alone(tmp_path, shapes_df):
    df = shapes_df.iloc[:32]
    clf = _clf(image=_cnn(), text="tfidf", max_epochs=1).fit(df, df["label"])
    with pytest.raises(TypeError, match="encoders_"):
        skmm.save(clf.branches_["image"].encoder, tmp_path)
    # the trained encoder itself saves, with its trained weights
    encoder = clf.encoders_["image"]
    loaded = skmm.load(skmm.save(encoder, tmp_path))
    np.testing.assert_allclose(loaded.transform(df["image_path"]), encoder.transform(df["image_path"]), atol=1e-6)


@pytest.fixture
def saved(tmp_path, shapes_df):
    clf, df = _fit_small(shapes_df)
    skmm.save(clf, tmp_path)
    return tmp_path


def _edit_json(folder, old, new):
    path = folder / "model.json"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _edit_weights(folder, edit):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(folder / "weights.safetensors"))
    edit(tensors)
    save_file(tensors, str(folder / "weights.safetensors"))


def _reshape_head(tensors):
    key = next(k for k in tensors if k.endswith("head.0.weight"))
    tensors[key] = torch.zeros(tensors[key].shape[0] + 1, tensors[key].shape[1])


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda f: _edit_json(f, '"skmm.FusionClassifier"', '"os.system"'), "names the class 'os.system'"),
        (lambda f: _edit_json(f, '"skmm.TextEncoder"', '"builtins.eval"'), "names the class 'builtins.eval'"),
        (lambda f: _edit_json(f, '"fusion": "concat"', '"fusion": {"__reduce__": ["os.system", "ls"]}'),
         "unknown tag"),
        (lambda f: _edit_json(f, '"format_version": 1', '"format_version": 99'), "upgrade skmm"),
        (lambda f: _edit_json(f, '"dim": 16', '"dim": 17'), "size mismatch"),
        (lambda f: _edit_weights(f, _reshape_head), "does not fit"),
        (lambda f: _edit_weights(f, lambda t: t.update(extra=torch.zeros(1))), "does not use"),
        (lambda f: _edit_weights(f, lambda t: t.pop(next(iter(t)))), "Missing key"),
        (lambda f: (f / "arrays.safetensors").unlink(), "missing"),
        (lambda f: ((f / "model.json").unlink(), os.mkfifo(f / "model.json")), "not a regular file"),
        (lambda f: (f / "weights.safetensors").write_bytes(b"garbage"), "cannot be read"),
    ],
    ids=["class", "nested-class", "tag", "version", "param-vs-weights", "shape", "extra", "missing", "no-arrays",
         "fifo", "garbage"],
)
def test_a_tampered_directory_is_a_clear_error(saved, tamper, message):
    tamper(saved)
    with pytest.raises(ValueError, match=message):
        skmm.load(saved)


def test_plain_data_round_trips_exactly():
    value = {
        "t": (1, "a", None), "int keys": {0: 1.5, (1, 2): "x"}, "f32": np.arange(3, dtype=np.float32),
        "i64": np.arange(4).reshape(2, 2), "bool": np.array([True, False]), "strs": np.array(["a", "bc"]),
        "objs": np.array(["a", 1, None], dtype=object), "scalar": np.int64(3), "type": np.float64,
        "dtype": np.dtype("float32"), "builtin": float, "slice": slice(0, 3, None), "path": pathlib.Path("/a/b"),
        "nan": float("nan"),
    }
    writer = Writer()
    encoded = json.loads(json.dumps(writer.encode(value, "value")))
    back = Decoder(writer.encode.arrays, None)(encoded, "value")
    assert back.keys() == value.keys()
    for key, original in value.items():
        got = back[key]
        assert type(got) is type(original), key
        if isinstance(original, np.ndarray):
            assert got.dtype == original.dtype and got.tolist() == original.tolist(), key
        elif key == "nan":
            assert np.isnan(got)
        else:
            assert got == original, key


# --- joblib: modules in pickles load with torch.load(weights_only=True) ----------------------


class Tied(torch.nn.Module):
    """Shared weights, a non-persistent buffer, a frozen parameter, BatchNorm statistics."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
        self.b.weight = self.a.weight
        self.register_buffer("steps", torch.arange(3.0), persistent=False)
        self.norm = torch.nn.BatchNorm1d(4)
        self.a.bias.requires_grad_(False)


def test_dump_module_keeps_tied_weights_non_persistent_buffers_and_frozen_parameters():
    module = Tied().eval()
    saved = dump_module(module)
    assert len(pickle.dumps(saved.structure)) < 10_000  # the structure holds no weights
    back, device = load_module(pickle.loads(pickle.dumps(saved)), "cpu")
    assert device == "cpu" and back.a.weight is back.b.weight
    assert torch.equal(back.steps, module.steps) and not back.a.bias.requires_grad
    x = torch.randn(3, 4)
    assert torch.equal(back.norm(back.b(back.a(x))), module.norm(module.b(module.a(x))))


def test_tied_weights_are_saved_once_each_and_load_strictly(tmp_path):
    from safetensors.torch import load_file, save_file

    module, tensors = Tied(), {}
    SaveContext(tensors, "0/").save_module("m", module)
    save_file(tensors, str(tmp_path / "w.safetensors"))  # refuses tensors that share memory
    reader = Reader({}, load_file(str(tmp_path / "w.safetensors")), None)
    twin = Tied()
    LoadContext(reader, "0/", "twin").load_module("m", twin)
    assert twin.a.weight is twin.b.weight and torch.equal(twin.a.weight, module.a.weight)
    assert reader.used == set(tensors)


def test_modules_of_an_older_format_are_refused_clearly():
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2), buf)
    with pytest.raises(ValueError, match="older skmm"):
        load_module(buf.getvalue(), "cpu")


@pytest.mark.slow
def test_joblib_round_trips_load_tensors_with_weights_only(tmp_path, shapes_df, monkeypatch):
    pytest.importorskip("timm")
    df = shapes_df.iloc[:8]
    images = np.random.RandomState(0).randint(0, 255, (2, 32, 32, 3)).astype(np.uint8)
    cases = [
        (_cnn(random_state=0).fit(df["image_path"]), df["image_path"]),
        (TextEncoder("gru", dim=8, random_state=0).fit(df["caption"]), df["caption"]),
        (TextEncoder("lstm", dim=8, random_state=0).fit(df["caption"]), df["caption"]),
        # relative position indices are non-persistent buffers
        (ImageEncoder("timm:test_vit_relpos", random_state=0, device="cpu").fit(images), images),
    ]
    calls = []
    real = torch.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    for i, (encoder, X) in enumerate(cases):
        joblib.dump(encoder, tmp_path / f"{i}.joblib")
        np.testing.assert_allclose(joblib.load(tmp_path / f"{i}.joblib").transform(X), encoder.transform(X), atol=1e-6)
    assert calls and all(w is True for w in calls)


def test_a_pickled_classifier_holds_no_tensor_outside_the_map_location_paths(shapes_df):
    # Tensors pickled by plain pickle load only on their own device: a CUDA-trained model
    # would not load on a CPU-only machine (seen on a GPU with the net's `module` and its LR
    # scheduler's optimizer). Every tensor must travel through skorch's CUDA-dependent
    # attributes or skmm's dump_module (whose structure holds meta tensors only).
    df = shapes_df.iloc[:32]
    clf = _clf(image=_cnn(), text="gru", max_epochs=1).fit(df, df["label"])
    plain = []

    class Counting(pickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, torch.Tensor) and obj.device.type != "meta":
                plain.append(tuple(obj.shape))
            return NotImplemented

    Counting(io.BytesIO()).dump(clf)
    assert plain == []
    assert pickle.loads(pickle.dumps(clf)).net_.module is not None


def test_changed_weights_behind_a_frozen_encoder_turn_its_cache_off(tmp_path, shapes_df):
    df = shapes_df.iloc[:8]
    torch.manual_seed(1)
    torch.save(ImageEncoder("cnn").fit(df["image_path"]).backbone_.module.state_dict(), tmp_path / "w.pt")
    encoder = ImageEncoder("cnn", weights=str(tmp_path / "w.pt"), num_workers=0).fit(df["image_path"])
    expected = encoder.transform(df["image_path"])
    skmm.save(encoder, tmp_path / "m")
    assert not [w for w in _load_warnings(tmp_path / "m")]  # same weights: nothing to say
    torch.manual_seed(2)
    torch.save(ImageEncoder("cnn").fit(df["image_path"]).backbone_.module.state_dict(), tmp_path / "w.pt")
    with pytest.warns(UserWarning, match="differ from the saved ones"):
        loaded = skmm.load(tmp_path / "m")
    assert loaded.cache is False
    np.testing.assert_allclose(loaded.transform(df["image_path"]), expected, atol=1e-6)


def _load_warnings(path):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        skmm.load(path)
    return caught
