"""joblib round trips in a fresh Python process, and CUDA-trained models on CPU machines."""

import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
from sklearn.compose import make_column_transformer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skmm import FusionClassifier, ImageEncoder, TextEncoder

LOAD_AND_PREDICT = textwrap.dedent(
    """
    import sys, warnings
    import joblib, numpy as np, pandas as pd
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        model = joblib.load(sys.argv[1])
    X = pd.read_pickle(sys.argv[2])
    np.save(sys.argv[3], model.predict_proba(X))
    for w in caught:
        print("WARNING:", w.message)
    """
)


def _predict_in_fresh_process(tmp_path, model, X):
    model_path, X_path, out_path = tmp_path / "model.joblib", tmp_path / "X.pkl", tmp_path / "proba.npy"
    joblib.dump(model, model_path)
    X.to_pickle(X_path)
    script = tmp_path / "load.py"
    script.write_text(LOAD_AND_PREDICT)
    done = subprocess.run(
        [sys.executable, str(script), str(model_path), str(X_path), str(out_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return np.load(out_path), done.stdout


def _clf(**params):
    defaults = dict(
        image=ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (4, 8)}), text="gru",
        max_epochs=2, dim=16, hidden_dim=16, random_state=0, device="cpu",
    )
    defaults.update(params)
    return FusionClassifier(**defaults)


def test_fusion_classifier_round_trip(tmp_path, shapes_df):
    df = shapes_df
    clf = _clf(fusion="gated").fit(df, df["label"])
    proba, _ = _predict_in_fresh_process(tmp_path, clf, df)
    np.testing.assert_allclose(proba, clf.predict_proba(df), atol=1e-6)


def test_pipeline_round_trip(tmp_path, shapes_df):
    df = shapes_df
    features = make_column_transformer(
        (ImageEncoder("cnn", image_size=16, random_state=0, backbone_kwargs={"channels": (4, 8)}), "image_path"),
        (TextEncoder("tfidf", n_components=8, random_state=0), "caption"),
    ).set_output(transform="pandas")
    pipe = make_pipeline(features, FusionClassifier(fusion="attention", max_epochs=2, dim=16, hidden_dim=16,
                                                     random_state=0, device="cpu")).fit(df, df["label"])
    proba, _ = _predict_in_fresh_process(tmp_path, pipe, df)
    np.testing.assert_allclose(proba, pipe.predict_proba(df), atol=1e-6)


def test_grid_search_round_trip(tmp_path, shapes_df):
    df = shapes_df
    search = GridSearchCV(_clf(text="tfidf"), {"fusion": ["concat", "late"]}, cv=2).fit(df, df["label"])
    proba, _ = _predict_in_fresh_process(tmp_path, search, df)
    np.testing.assert_allclose(proba, search.predict_proba(df), atol=1e-6)


def _pretend_trained_on_cuda(clf):
    """Mark a CPU-fitted model as a CUDA one: loading then takes the no-CUDA fallback path."""
    clf.device_ = "cuda"
    clf.net_.device = "cuda"
    for encoder in clf.encoders_.values():
        encoder.device_ = "cuda"
    return clf


def test_cuda_trained_model_loads_on_cpu_with_a_warning(tmp_path, shapes_df):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the fallback path cannot run here (benchmarks/gpu.py covers CUDA)")
    df = shapes_df
    clf = _clf().fit(df, df["label"])
    expected = clf.predict_proba(df)
    proba, stdout = _predict_in_fresh_process(tmp_path, _pretend_trained_on_cuda(clf), df)
    np.testing.assert_allclose(proba, expected, atol=1e-6)
    assert "CUDA" in stdout or "cuda" in stdout  # the user is told the model moved to the CPU
    loaded = joblib.load(tmp_path / "model.joblib")
    assert loaded.device_ == "cpu" and str(loaded.net_.device) == "cpu"
    assert all(e.device_ == "cpu" for e in loaded.encoders_.values())


def test_trained_encoder_weights_are_stored_once_and_relinked(tmp_path, shapes_df):
    df = shapes_df
    clf = _clf().fit(df, df["label"])
    features = clf.encoders_["image"].transform(df["image_path"])
    joblib.dump(clf, tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib")
    for name in ("image", "text"):
        encoder = loaded.encoders_[name]
        branch = loaded.net_.module_.encoders[name]
        # one module, shared by the encoder and the network, as before saving
        assert any(m is encoder.backbone_.module for m in branch.modules())
    np.testing.assert_allclose(loaded.encoders_["image"].transform(df["image_path"]), features, atol=1e-6)
    np.testing.assert_allclose(loaded.predict_proba(df), clf.predict_proba(df), atol=1e-6)
    assert not hasattr(clf.encoders_["image"], "_module_in_net")  # saving left the live model alone
