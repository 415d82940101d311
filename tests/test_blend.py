"""FusionClassifier(blend=...): the network's probabilities blended with the stacked text models'."""

import joblib
import numpy as np
import pandas as pd
from scipy.special import softmax
from skorch.helper import SliceDict

import skmm
from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.estimators import blend
from skmm.estimators.blend import BLEND_GRID, HOLDOUT, blend_probabilities, fit_blend_weight, holdout_rows
from skmm.fusion.training import HeldOutRows

# a trained image branch (a small CNN), so blend="auto" blends
TRAINED = dict(max_epochs=2, dim=8, hidden_dim=8, batch_size=16, random_state=0,
               image=ImageEncoder("cnn", image_size=16), text=TextEncoder("tfidf"))


def test_the_weight_follows_whichever_side_is_right_on_the_held_out_rows():
    y = np.array([0, 1, 0, 1, 2, 2])
    right = np.eye(3)[y] * 0.9 + 0.1 / 3
    wrong = np.eye(3)[(y + 1) % 3] * 0.9 + 0.1 / 3
    # (a right side need not have all the weight: every blend that ranks the rows right is as good, once sharpened)
    assert fit_blend_weight(right, wrong, y)[0] > 0.5
    assert fit_blend_weight(wrong, right, y)[0] == 0.0
    # each side right on half the rows: a true blend, better than either alone
    half = np.where((np.arange(6) % 2 == 0)[:, None], right, wrong)
    other = np.where((np.arange(6) % 2 == 0)[:, None], wrong, right)
    w, _ = fit_blend_weight(half, other, y)
    assert 0.0 < w < 1.0 and w in BLEND_GRID.round(6)


def test_a_gain_within_the_noise_keeps_the_weight_near_the_linear_model(monkeypatch):
    # the network knows what the linear model knows, plus noise: on these 60 rows its best weight is 0.45 by
    # chance, but within one standard error of the linear model alone, which is kept
    rng = np.random.default_rng(14)
    y = np.arange(60) % 3
    logits = np.eye(3)[y] + rng.normal(0, 1, (60, 3))
    linear, net = softmax(logits, axis=1), softmax(logits + rng.normal(0, 0.7, (60, 3)), axis=1)
    assert fit_blend_weight(net, linear, y)[0] == 0.0
    monkeypatch.setattr(blend, "SE_RULE", 0.0)
    assert fit_blend_weight(net, linear, y)[0] == 0.45
    monkeypatch.undo()
    # a network right on every row where the linear model is wrong on 6 of 20: no noise, its weight grows
    y = np.arange(20) % 2
    net = np.where(y[:, None] == 0, [0.8, 0.2], [0.2, 0.8])
    linear = np.where((y[:, None] == 0) ^ (np.arange(20)[:, None] < 6), [0.6, 0.4], [0.4, 0.6])
    assert fit_blend_weight(net, linear, y)[0] >= 0.5


def test_the_sharpness_is_fitted_apart_from_the_weight():
    # an under-confident linear model that ranks every row right, and a sure network right on a third of them:
    # the weight stays with the linear model and the sharpness, not the network, makes the blend sure
    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    linear = np.full((30, 3), 0.3)
    linear[np.arange(30), y] = 0.4
    net = np.full((30, 3), 0.1)
    net[np.arange(30), rng.integers(0, 3, 30)] = 0.8
    weight, scale = fit_blend_weight(net, linear, y)
    assert weight == 0.0 and scale > 5.0
    sure = blend_probabilities(net, linear, weight, scale)
    assert np.array_equal(sure.argmax(1), y) and sure.max(1).min() > 0.85  # 0.4 before
    np.testing.assert_allclose(blend_probabilities(net, linear, weight), linear)  # scale 1: the linear model as is


def test_holdout_rows_are_stratified_and_fall_back_to_random_rows():
    y = np.repeat(np.arange(5), 20)
    rows = holdout_rows(y, HOLDOUT, seed=0)
    assert len(rows) == 20 and np.array_equal(np.bincount(y[rows]), [4] * 5)
    assert np.array_equal(rows, holdout_rows(y, HOLDOUT, seed=0))  # the seed fixes them
    y_single = np.r_[np.zeros(9, dtype=int), 1]  # a class with one row: no stratified split
    rows = holdout_rows(y_single, 0.3, seed=0)
    assert len(rows) == 3 and len(np.unique(rows)) == 3
    assert holdout_rows(np.array([0, 1]), 0.2, seed=0) is None  # too few rows to keep any out


def test_a_trained_branch_holds_out_rows_and_predict_blends(frame):
    X, y = frame
    clf = FusionClassifier(**TRAINED).fit(X, y)
    split = clf.net_.train_split
    assert isinstance(split, HeldOutRows) and len(split.indices) == round(HOLDOUT * len(X))
    assert 0.0 <= clf.blend_weight_ <= 1.0
    # the net trained on the other rows only
    seen = sum(b["train_batch_size"] for b in clf.net_.history[-1]["batches"] if "train_batch_size" in b)
    assert seen == len(X) - len(split.indices)
    inputs = clf.model_inputs(X)
    p_net = clf.net_.predict_proba(SliceDict(**inputs))
    p_text = softmax(inputs["text_stack"].astype(np.float64), axis=1)
    w, scale = clf.blend_weight_, clf.blend_scale_
    expected = softmax(scale * (w * np.log(np.clip(p_net, 1e-6, None)) + (1 - w) * np.log(np.clip(p_text, 1e-6, None))),
                       axis=1)
    np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-5, atol=1e-6)


def test_an_honest_text_model_wins_over_an_untrained_net(shapes_df):
    # the label is a word of the text; the pictures say nothing of it: on held-out rows the
    # stacked TF-IDF model is right, a net trained one epoch is not sure of anything
    rng = np.random.default_rng(0)
    y = np.array(["alpha", "beta", "gamma"])[np.arange(len(shapes_df)) % 3]
    X = pd.DataFrame({"image_path": shapes_df["image_path"].to_numpy()[rng.permutation(len(y))],
                      "text": [f"{w} item {i}" for i, w in enumerate(y)]})
    clf = FusionClassifier(**{**TRAINED, "max_epochs": 1, "lr": 1e-5}).fit(X, y)
    assert clf.blend_weight_ <= 0.3
    assert (clf.predict(X) == y).mean() == 1.0
    off = FusionClassifier(**{**TRAINED, "max_epochs": 1, "lr": 1e-5, "blend": None}).fit(X, y)
    assert (off.blend_weight_, off.blend_scale_) == (1.0, 1.0) and off.net_.train_split is None
    assert (off.predict(X) == y).mean() < 1.0  # the net alone had not learned it


def test_frozen_encoders_and_no_stacking_do_not_blend(frame):
    X, y = frame
    frozen = FusionClassifier(**{**TRAINED, "image": ImageEncoder("pixels", image_size=8)}).fit(X, y)
    assert frozen.blend_weight_ == 1.0 and frozen.net_.train_split is None
    plain = FusionClassifier(**{**TRAINED, "stacking": None}).fit(X, y)
    assert plain.blend_weight_ == 1.0 and plain.net_.train_split is None


def test_the_image_ablation_is_never_blended_with_the_text_model(frame):
    # fusion="image" drops the stacked text models from the network: blending them back in would make the
    # ablation read the texts (it scored 1.0 on shapes, whose label needs both modalities)
    X, y = frame
    image_only = FusionClassifier(**dict(TRAINED, fusion="image")).fit(X, y)
    assert image_only.blend_weight_ == 1.0 and image_only.net_.train_split is None
    text_only = FusionClassifier(**dict(TRAINED, fusion="text")).fit(X, y)
    assert isinstance(text_only.net_.train_split, HeldOutRows)


def test_validation_fraction_rows_choose_the_blend(frame):
    X, y = frame
    clf = FusionClassifier(**{**TRAINED, "validation_fraction": 0.25}).fit(X, y)
    assert not isinstance(clf.net_.train_split, HeldOutRows)  # its own split, early stopping on it
    assert 0.0 <= clf.blend_weight_ <= 1.0


def test_round_trips_keep_the_blend(frame, tmp_path):
    X, y = frame
    clf = FusionClassifier(**{**TRAINED, "max_epochs": 1, "lr": 1e-5}).fit(X, y)
    assert clf.blend_weight_ < 1.0  # a blend, which the loaded models must repeat
    expected = clf.predict_proba(X)
    joblib.dump(clf, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    assert (loaded.blend_weight_, loaded.blend_scale_) == (clf.blend_weight_, clf.blend_scale_)
    np.testing.assert_allclose(loaded.predict_proba(X), expected, rtol=1e-5, atol=1e-6)
    skmm.save(clf, tmp_path / "m.skmm")
    again = skmm.load(tmp_path / "m.skmm")
    assert (again.blend_weight_, again.blend_scale_) == (clf.blend_weight_, clf.blend_scale_)
    np.testing.assert_allclose(again.predict_proba(X), expected, rtol=1e-5, atol=1e-6)
