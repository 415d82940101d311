"""Multilabel FusionClassifier: several labels per row, sigmoid outputs, thresholds."""

import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, cross_val_score

import skmm
from helpers import fast_classifier


def label_frame(df):
    """Two labels per row: "red" (said by the caption) and "circle" (seen in the image), plus "both"."""
    red = df["label"].str.startswith("red")
    circle = df["label"].str.endswith("circle")
    return pd.DataFrame({"red": red, "circle": circle, "both": red & circle}, index=df.index).astype(int)


@pytest.fixture
def training(shapes_df):
    return shapes_df.drop(columns="label"), label_frame(shapes_df)


@pytest.mark.slow
def test_multilabel_learns_labels_from_both_modalities(shapes640):
    train, test = shapes640
    clf = fast_classifier(max_epochs=30).fit(train.drop(columns="label"), label_frame(train))
    assert clf.multilabel_ and list(clf.classes_) == ["red", "circle", "both"]
    pred = clf.predict(test.drop(columns="label"))
    truth = label_frame(test)
    # "red" needs the caption, "circle" the image, "both" the two together
    assert f1_score(truth, pred, average="micro") > 0.9
    assert f1_score(truth, pred, average="samples", zero_division=1.0) > 0.9
    assert type(clf.net_.criterion_).__name__ == "BCEWithLogitsLoss"


def test_predictions_come_back_in_the_form_y_came_in(training):
    X, Y = training
    clf = fast_classifier(max_epochs=5)
    out = clf.fit(X, Y).predict(X.iloc[:4])
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(Y.columns)
    assert list(out.index) == list(X.index[:4]) and set(np.unique(out)) <= {0, 1}
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and (proba >= 0).all() and (proba <= 1).all()
    assert not np.allclose(proba.sum(axis=1), 1)  # one probability per label, not a distribution
    arr = clf.fit(X, Y.to_numpy().astype(bool)).predict(X)
    assert isinstance(arr, np.ndarray) and arr.dtype == bool and arr.shape == (len(X), 3)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    # label sets: MultiLabelBinarizer semantics, tuples of labels back
    sets = [{c for c in Y.columns if row[c]} for _, row in Y.iterrows()]
    out = clf.fit(X, sets).predict(X)
    assert isinstance(out, list) and all(isinstance(t, tuple) for t in out)
    assert list(clf.classes_) == ["both", "circle", "red"]
    assert all(set(t) <= {"both", "circle", "red"} for t in out)
    # a list of equal-length 0/1 lists is a 2-D array, as in scikit-learn
    assert clf.fit(X, Y.to_numpy().tolist()).predict(X).shape == (len(X), 3)


def test_scikit_learn_scorers_and_cross_validation(training):
    X, Y = training
    scores = cross_val_score(fast_classifier(max_epochs=10), X, Y, cv=2, scoring="f1_samples")
    assert scores.shape == (2,) and np.all((scores > 0) & (scores <= 1))
    search = GridSearchCV(fast_classifier(max_epochs=5), {"fusion": ["concat", "gated"]}, cv=2,
                          scoring="f1_micro").fit(X, Y)
    assert search.best_estimator_.multilabel_


def test_threshold_number_and_tuned(training):
    X, Y = training
    low = fast_classifier(max_epochs=5, threshold=0.05).fit(X, Y)
    high = fast_classifier(max_epochs=5, threshold=0.95).fit(X, Y)
    np.testing.assert_allclose(low.predict_proba(X), high.predict_proba(X))  # the same net
    assert low.predict(X).to_numpy().sum() > high.predict(X).to_numpy().sum()
    tuned = fast_classifier(max_epochs=5, threshold="tune", validation_fraction=0.3).fit(X, Y)
    assert tuned.thresholds_.shape == (3,) and np.all((tuned.thresholds_ > 0) & (tuned.thresholds_ < 1))
    assert not np.allclose(tuned.thresholds_, 0.5)
    expected = (tuned.predict_proba(X) >= tuned.thresholds_).astype(int)
    np.testing.assert_array_equal(tuned.predict(X).to_numpy(), expected)


def test_class_weights_per_label(training):
    X, Y = training
    clf = fast_classifier(max_epochs=1, class_weight="balanced").fit(X, Y)
    positives = Y.sum().to_numpy()
    expected = (len(Y) - positives) / positives
    np.testing.assert_allclose(clf.net_.criterion_.pos_weight.numpy(), expected, rtol=1e-6)
    clf = fast_classifier(max_epochs=1, class_weight={"both": 4.0}).fit(X, Y)
    np.testing.assert_allclose(clf.net_.criterion_.pos_weight.numpy(), [1, 1, 4])
    with pytest.raises(ValueError, match=r"class_weight has keys that are not labels of y: \['blue'\]"):
        fast_classifier(class_weight={"blue": 2.0}).fit(X, Y)


def test_rows_without_labels_are_allowed_and_rows_without_inputs_get_the_prior(training):
    X, Y = training
    Y = Y.copy()
    Y.iloc[:10] = 0  # rows with no label at all
    clf = fast_classifier(max_epochs=3, unimodal_loss=1.0, fusion="late").fit(X, Y)
    np.testing.assert_allclose(clf.class_prior_, Y.mean().to_numpy())
    empty = X.iloc[:2].copy()
    empty["image_path"], empty["caption"] = None, ""
    np.testing.assert_allclose(clf.predict_proba(empty), [clf.class_prior_] * 2)


@pytest.mark.parametrize("y, match", [
    (np.tile([[0, 2], [1, 0]], (48, 1)), "column 1 holds 2 at row 0; several columns of class labels"),
    (pd.DataFrame({"a": [0, 1] * 48, "b": [1.0, np.nan] * 48}), r"missing value \(None or NaN\) at row 1 .* column 'b'"),
    ([{"a"}, "b"] * 48, "y mixes label sets and single labels: row 1 is 'b'"),
    ([{"a", None}] * 96, "missing label .* label set of row 0"),
])
def test_bad_multilabel_targets_fail_before_training(training, no_training, monkeypatch, y, match):
    X, _ = training
    monkeypatch.setattr("skorch.NeuralNetRegressor.fit", lambda self, *a, **k: no_training.append(1))
    with pytest.raises(ValueError, match=match):
        fast_classifier().fit(X, y)
    assert no_training == []


def test_options_that_do_not_fit_the_target_kind_are_errors(training, frame, no_training, monkeypatch):
    X, Y = training
    monkeypatch.setattr("skorch.NeuralNetRegressor.fit", lambda self, *a, **k: no_training.append(1))
    with pytest.raises(ValueError, match="label_smoothing=0.1 applies to one label per row"):
        fast_classifier(label_smoothing=0.1).fit(X, Y)
    with pytest.raises(ValueError, match="threshold=0.3 applies to a multilabel y"):
        fast_classifier(threshold=0.3).fit(*frame)
    with pytest.raises(ValueError, match="threshold='tune' is fitted on validation rows"):
        fast_classifier(threshold="tune").fit(X, Y)
    assert no_training == []


def test_a_refit_with_another_kind_of_y_starts_over(training):
    X, Y = training
    clf = fast_classifier(max_epochs=2).fit(X, Y)
    single = clf.fit(X, Y["red"].map({1: "red", 0: "other"}))
    assert not single.multilabel_ and list(single.classes_) == ["other", "red"]
    assert single.predict(X).dtype.kind in "UO"
    assert clf.fit(X, Y).predict(X).shape == (len(X), 3)


LOAD = """
import sys, joblib, pandas as pd, numpy as np
model = joblib.load(sys.argv[1])
X = pd.read_pickle(sys.argv[2])
np.save(sys.argv[3], np.hstack([model.predict_proba(X), np.asarray(model.predict(X))]))
"""


@pytest.mark.slow
def test_persistence_keeps_thresholds_temperature_and_form(training, tmp_path):
    X, Y = training
    clf = fast_classifier(max_epochs=4, threshold="tune", calibration="temperature",
                          validation_fraction=0.3).fit(X, Y)
    expected = np.hstack([clf.predict_proba(X), clf.predict(X).to_numpy()])
    joblib.dump(clf, tmp_path / "clf.joblib")
    X.to_pickle(tmp_path / "X.pkl")
    done = subprocess.run([sys.executable, "-c", LOAD, str(tmp_path / "clf.joblib"), str(tmp_path / "X.pkl"),
                           str(tmp_path / "out.npy")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-6)
    loaded = skmm.load(skmm.save(clf, tmp_path / "model"))
    assert loaded.temperature_ == clf.temperature_ != 1.0
    np.testing.assert_array_equal(loaded.thresholds_, clf.thresholds_)
    pd.testing.assert_frame_equal(loaded.predict(X), clf.predict(X))
    sets = [tuple(c for c in Y.columns if row[c]) for _, row in Y.iterrows()]
    clf = fast_classifier(max_epochs=2).fit(X, sets)
    assert skmm.load(skmm.save(clf, tmp_path / "sets")).predict(X) == clf.predict(X)


def test_every_fusion_and_early_stopping_on_a_multilabel_scorer(training):
    from skmm.registry import fusions

    X, Y = training
    for name in fusions.names():
        clf = fast_classifier(fusion=name, max_epochs=1, unimodal_loss=1.0).fit(X, Y)
        assert clf.predict_proba(X).shape == (len(X), 3), name
    clf = fast_classifier(max_epochs=6, validation_fraction=0.3, early_stopping_scoring="f1_samples",
                          n_iter_no_change=2).fit(X, Y)
    scores = clf.net_.history[:, "valid_score"]
    assert all(0 <= s <= 1 for s in scores)
