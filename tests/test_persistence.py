"""joblib round trips in a fresh Python process, and CUDA-trained models on CPU machines.

Every model is saved once and loaded in ONE fresh process (starting Python with
torch takes seconds); the tests then compare what came back.
"""

import json
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
import torch
from sklearn.compose import make_column_transformer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skmm import FusionClassifier, ImageEncoder, TextEncoder

LOAD_AND_PREDICT = textwrap.dedent(
    """
    import json, sys, warnings
    import joblib, numpy as np, pandas as pd
    X = pd.read_pickle(sys.argv[2])
    report = {}
    for name in sys.argv[3:]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = joblib.load(f"{sys.argv[1]}/{name}.joblib")
        np.save(f"{sys.argv[1]}/{name}.npy", model.predict_proba(X))
        report[name] = [str(w.message) for w in caught]
    print(json.dumps(report))
    """
)


def _clf(**params):
    defaults = dict(
        image=ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (4, 8)}), text="gru",
        max_epochs=2, dim=16, hidden_dim=16, random_state=0, device="cpu",
    )
    defaults.update(params)
    return FusionClassifier(**defaults)


def _pretend_trained_on_cuda(clf):
    """Mark a CPU-fitted model as a CUDA one: loading then takes the no-CUDA fallback path."""
    clf.device_ = "cuda"
    clf.net_.device = "cuda"
    for branch in clf.branches_.values():
        branch.encoder.device_ = "cuda"
    return clf


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory, shapes_df):
    """Fit the models, save each, load them all in one fresh process; return what came back."""
    df = shapes_df
    features = make_column_transformer(
        (ImageEncoder("cnn", image_size=16, random_state=0, backbone_kwargs={"channels": (4, 8)}), "image_path"),
        (TextEncoder("tfidf", n_components=8, random_state=0), "caption"),
    ).set_output(transform="pandas")
    models = {
        "classifier": _clf(fusion="gated").fit(df, df["label"]),
        "pipeline": make_pipeline(features, FusionClassifier(
            fusion="attention", max_epochs=2, dim=16, hidden_dim=16, random_state=0, device="cpu")
        ).fit(df, df["label"]),
        "search": GridSearchCV(_clf(text="tfidf"), {"fusion": ["concat", "late"]}, cv=2).fit(df, df["label"]),
    }
    expected = {name: model.predict_proba(df) for name, model in models.items()}
    cuda = _clf().fit(df, df["label"])
    expected["cuda"] = cuda.predict_proba(df)
    models["cuda"] = _pretend_trained_on_cuda(cuda)
    folder = tmp_path_factory.mktemp("models")
    for name, model in models.items():
        joblib.dump(model, folder / f"{name}.joblib")
    df.to_pickle(folder / "X.pkl")
    (folder / "load.py").write_text(LOAD_AND_PREDICT)
    done = subprocess.run(
        [sys.executable, str(folder / "load.py"), str(folder), str(folder / "X.pkl"), *models],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    warnings_by_model = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        name: (np.load(folder / f"{name}.npy"), expected[name], warnings_by_model[name], folder / f"{name}.joblib")
        for name in models
    }


@pytest.mark.parametrize("name", ["classifier", "pipeline", "search"])
def test_round_trip_in_a_fresh_process_gives_the_same_probabilities(round_trip, name):
    loaded, expected, _, _ = round_trip[name]
    np.testing.assert_allclose(loaded, expected, atol=1e-6)


def test_cuda_trained_model_loads_on_cpu_with_a_warning(round_trip):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the fallback path cannot run here (benchmarks/gpu.py covers CUDA)")
    loaded, expected, warned, path = round_trip["cuda"]
    np.testing.assert_allclose(loaded, expected, atol=1e-6)
    assert any("cuda" in w.lower() for w in warned)  # the user is told the model moved to the CPU
    model = joblib.load(path)
    assert model.device_ == "cpu" and str(model.net_.device) == "cpu"
    assert all(b.encoder.device_ == "cpu" for b in model.branches_.values())
    assert all(e.device_ == "cpu" for e in model.encoders_.values())


def test_trained_encoder_weights_are_stored_once(shapes_df):
    df = shapes_df
    clf = _clf(image=ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (16, 32)})).fit(df, df["label"])
    weights = sum(p.numel() * p.element_size() for p in clf.net_.module_.parameters())
    whole, net_alone = len(pickle.dumps(clf)), len(pickle.dumps(clf.net_))
    # the encoders add their settings and vocabularies, not a second copy of the weights
    assert whole - net_alone < weights / 2


def test_fitted_encoders_share_the_trained_modules_and_survive_a_round_trip(tmp_path, shapes_df):
    df = shapes_df
    clf = _clf().fit(df, df["label"])
    features = clf.encoders_["image"].transform(df["image_path"])
    joblib.dump(clf, tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib")
    for model in (clf, loaded):
        for name in ("image", "text"):
            encoder = model.encoders_[name]
            # one module, shared by the encoder and the network
            assert any(m is encoder.backbone_.module for m in model.net_.module_.encoders[name].modules())
    np.testing.assert_allclose(loaded.encoders_["image"].transform(df["image_path"]), features, atol=1e-6)
    np.testing.assert_allclose(loaded.predict_proba(df), clf.predict_proba(df), atol=1e-6)


def test_the_branch_reader_refuses_to_encode_without_its_module(shapes_df):
    df = shapes_df
    clf = _clf(max_epochs=1).fit(df, df["label"])
    reader = clf.branches_["image"].encoder
    assert reader.backbone_.module is None
    with pytest.raises(RuntimeError, match="encoders_"):
        reader.transform(df["image_path"])
