"""FusionRegressor: numeric targets from images and texts, single and multi-output."""

import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV

import skmm
from skmm import FusionRegressor, ImageEncoder
from skmm.registry import fusions

SHAPE = {"circle": 1.0, "square": 4.0}
COLOUR = {"red": 0.0, "blue": 2.0}


def both_modalities_target(df, seed=0):
    """A number from the shape (image only) plus one from the colour (caption only), plus noise."""
    colour, shape = df["label"].str.split("-", expand=True).T.to_numpy()
    noise = np.random.default_rng(seed).normal(0, 0.1, len(df))
    return pd.Series([SHAPE[s] + COLOUR[c] for c, s in zip(colour, shape)], index=df.index) + noise


def fast_regressor(**params):
    defaults = dict(
        image=ImageEncoder("pixels", image_size=12), text="tfidf", max_epochs=25, lr=3e-3,
        dim=32, hidden_dim=32, random_state=0, device="cpu",
    )
    defaults.update(params)
    return FusionRegressor(**defaults)


@pytest.fixture
def training(shapes_df):
    X = shapes_df.drop(columns="label")
    return X, both_modalities_target(shapes_df)


@pytest.fixture
def no_regressor_training(monkeypatch):
    calls = []
    monkeypatch.setattr("skorch.NeuralNetRegressor.fit", lambda self, *a, **k: calls.append(1))
    return calls


@pytest.mark.slow
def test_fused_regressor_uses_both_modalities(shapes640):
    train, test = shapes640
    y_train, y_test = both_modalities_target(train), both_modalities_target(test, seed=1)
    scores = {
        fusion: fast_regressor(fusion=fusion, max_epochs=40).fit(train.drop(columns="label"), y_train).score(
            test.drop(columns="label"), y_test)
        for fusion in ("concat", "image", "text")
    }
    # each modality alone explains part of the variance; both explain nearly all of it
    assert scores["concat"] > 0.9
    assert scores["concat"] > max(scores["image"], scores["text"]) + 0.2


def test_predictions_come_back_in_the_units_and_form_of_y(training):
    X, y = training
    y_big = y * 1000 + 1e6
    reg = fast_regressor().fit(X, y_big)
    pred = reg.predict(X)
    assert pred.shape == (len(X),) and pred.dtype == np.float64
    assert abs(pred.mean() - y_big.mean()) < 0.2 * y_big.std()
    assert r2_score(y_big, pred) > 0.5
    np.testing.assert_allclose(reg.target_mean_, [y_big.mean()])
    # a DataFrame of targets: a DataFrame back, with y's columns and X's index
    Y = pd.DataFrame({"price": y_big, "stock": -3 * y}, index=X.index)
    out = reg.fit(X, Y).predict(X.iloc[:5])
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["price", "stock"]
    assert list(out.index) == list(X.index[:5])
    assert reg.n_targets_ == 2 and reg.net_.module_.n_outputs == 2
    # a 2-D array: an array of the same width
    assert reg.fit(X, Y.to_numpy()).predict(X).shape == (len(X), 2)


def test_standardize_target_off_trains_on_raw_values(training):
    X, y = training
    reg = fast_regressor(standardize_target=False, max_epochs=2).fit(X, y)
    np.testing.assert_array_equal(reg.target_mean_, [0.0])
    np.testing.assert_array_equal(reg.target_scale_, [1.0])


@pytest.mark.parametrize("loss, criterion", [
    ("squared_error", "MSELoss"), ("absolute_error", "L1Loss"), ("huber", "HuberLoss")])
def test_each_loss_trains_its_criterion(training, loss, criterion):
    X, y = training
    reg = fast_regressor(loss=loss).fit(X, y)
    assert type(reg.net_.criterion_).__name__ == criterion
    assert reg.score(X, y) > 0.5


@pytest.mark.parametrize("y, match", [
    (["a"] * 96, "y must hold numbers for a regressor; y has 'a' at row 0"),
    (np.r_[np.ones(5), np.nan, np.ones(90)], "missing or infinite target .* at row 5"),
    (pd.Series(np.r_[np.ones(7), np.inf, np.ones(88)], index=[f"p{i}" for i in range(96)]),
     r"the first at row 'p7' \(position 7\)"),
    (pd.DataFrame({"a": np.ones(96), "b": [None] * 3 + [1.0] * 93}), "row 0 .* in column 'b'"),
])
def test_bad_targets_fail_before_training_naming_the_row(training, no_regressor_training, y, match):
    X, _ = training
    with pytest.raises(ValueError, match=match):
        fast_regressor().fit(X, y)
    assert no_regressor_training == []


def test_rows_without_any_modality_get_the_training_mean(training):
    X, y = training
    reg = fast_regressor(max_epochs=3).fit(X, y)
    empty = X.iloc[:3].copy()
    empty["image_path"] = None
    empty["caption"] = ""
    np.testing.assert_allclose(reg.predict(empty), y.mean())


def test_every_fusion_and_the_unimodal_heads_train(training):
    X, y = training
    for name in fusions.names():
        reg = fast_regressor(fusion=name, max_epochs=1, unimodal_loss=1.0).fit(X, y)
        assert np.isfinite(reg.predict(X)).all(), name
        assert np.isfinite(reg.net_.history[-1, "train_loss"]), name
    # the uni-modal loss adds a regression head per modality and a term to the loss
    reg = fast_regressor(fusion="concat", max_epochs=1, unimodal_loss=1.0).fit(X, y)
    heads = reg.net_.module_.unimodal_heads
    assert [head.out_features for head in heads] == [1, 1]


def test_unimodal_loss_adds_each_modalitys_regression_loss(training):
    X, y = training
    import torch

    reg = fast_regressor(max_epochs=1, unimodal_loss=2.0).fit(X, y)
    net = reg.net_
    logits = torch.zeros(4, 1)
    per = torch.ones(4, 2, 1)
    mask = torch.tensor([[True, True], [True, False], [False, True], [True, True]])
    target = torch.zeros(4, 1)
    loss = net.get_loss((logits, per, mask), target)
    assert loss.item() == pytest.approx(0.0 + 2.0 * 1.0)  # MSE of 1 on each modality's own rows


def test_grid_search_with_a_regression_scorer(training):
    X, y = training
    search = GridSearchCV(fast_regressor(max_epochs=5), {"fusion": ["concat", "late"]}, cv=2,
                          scoring="neg_mean_absolute_error").fit(X, y)
    assert search.best_params_["fusion"] in ("concat", "late")
    assert search.cv_results_["mean_test_score"].shape == (2,)
    assert np.all(search.cv_results_["mean_test_score"] < 0)


def test_disk_cache_serves_the_second_fit(training, tmp_path):
    X, y = training
    image = ImageEncoder("pixels", image_size=12, cache_dir=str(tmp_path / "cache"))
    first = fast_regressor(image=image, max_epochs=2).fit(X, y).predict(X)
    assert any((tmp_path / "cache").rglob("*"))
    second = fast_regressor(image=image, max_epochs=2).fit(X, y).predict(X)
    np.testing.assert_allclose(first, second)


LOAD = """
import sys, joblib, pandas as pd, numpy as np
model = joblib.load(sys.argv[1])
np.save(sys.argv[3], np.asarray(model.predict(pd.read_pickle(sys.argv[2]))))
"""


@pytest.mark.slow
def test_joblib_in_a_fresh_process_and_the_safe_format_round_trip(training, tmp_path):
    X, y = training
    Y = pd.DataFrame({"a": y, "b": 2 * y + 5})
    reg = fast_regressor(max_epochs=3, loss="huber").fit(X, Y)
    expected = reg.predict(X)
    joblib.dump(reg, tmp_path / "reg.joblib")
    X.to_pickle(tmp_path / "X.pkl")
    done = subprocess.run([sys.executable, "-c", LOAD, str(tmp_path / "reg.joblib"), str(tmp_path / "X.pkl"),
                           str(tmp_path / "out.npy")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected.to_numpy(), atol=1e-6)
    loaded = skmm.load(skmm.save(reg, tmp_path / "model"))
    assert isinstance(loaded, FusionRegressor) and loaded.loss == "huber"
    pd.testing.assert_frame_equal(loaded.predict(X), expected, atol=1e-6)
    np.testing.assert_allclose(loaded.target_scale_, reg.target_scale_)


def test_the_command_line_trains_and_predicts_a_regressor_and_refuses_a_multilabel_model(training, tmp_path, capsys):
    from skmm.cli import main

    X, y = training
    data = X.assign(price=y)
    data.to_csv(tmp_path / "data.csv", index=False)
    model, out = tmp_path / "reg.joblib", tmp_path / "out.csv"
    assert main(["fit", str(tmp_path / "data.csv"), "--target", "price", "--regression", "-q", "-o", str(model),
                 "--image-backbone", "pixels", "--text-backbone", "tfidf", "--param", "max_epochs=2"]) == 0
    assert "FusionRegressor(image+text" in capsys.readouterr().out
    reg = joblib.load(model)
    assert isinstance(reg, FusionRegressor)
    assert main(["predict", str(model), str(tmp_path / "data.csv"), "-q", "-o", str(out)]) == 0
    np.testing.assert_allclose(pd.read_csv(out)["prediction"], reg.predict(X), rtol=1e-6)
    capsys.readouterr()
    # what a regressor cannot give is a one-line error, not a traceback
    assert main(["predict", str(model), str(tmp_path / "data.csv"), "--proba", "-q", "-o", str(out)]) == 2
    assert "has no probabilities" in capsys.readouterr().err
    assert main(["evaluate", str(model), str(tmp_path / "data.csv"), "--target", "price", "--no-report", "-q",
                 "-o", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert "(a regressor); the command handles fitted classifiers only" in err and "Traceback" not in err
    labels = pd.DataFrame({"big": (y > y.median()).astype(int), "red": X["caption"].str.contains("red").astype(int)})
    multilabel = skmm.FusionClassifier(image="pixels", text="tfidf", max_epochs=1, device="cpu").fit(X, labels)
    joblib.dump(multilabel, tmp_path / "multilabel.joblib")
    assert main(["predict", str(tmp_path / "multilabel.joblib"), str(tmp_path / "data.csv"), "-q",
                 "-o", str(tmp_path / "ml.csv")]) == 2
    err = capsys.readouterr().err
    assert "holds a multilabel FusionClassifier" in err and "Traceback" not in err
    assert not (tmp_path / "ml.csv").exists()


def test_early_stopping_on_a_regression_scorer(training):
    X, y = training
    reg = fast_regressor(max_epochs=6, validation_fraction=0.3, early_stopping_scoring="r2", n_iter_no_change=2)
    scores = reg.fit(X, y).net_.history[:, "valid_score"]
    assert len(scores) >= 1 and all(s <= 1 for s in scores)


def test_modality_importance_of_a_regressor(training):
    from skmm.inspection import modality_importance

    X, y = training
    reg = fast_regressor().fit(X, y)
    result = modality_importance(reg, X, y, n_repeats=2, random_state=0)
    assert result.baseline_score == pytest.approx(reg.score(X, y))  # R²
    assert np.all(result.importances_mean > 0.1) and np.all(result.removal_importances_mean > 0.1)
