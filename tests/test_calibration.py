"""Calibrated probabilities: temperature scaling on the validation rows, and scikit-learn's calibrators."""

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import log_loss

from helpers import fast_classifier
from skmm.estimators.calibration import expected_calibration_error, fit_temperature, tune_thresholds


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 5))
    y = np.array([rng.choice(5, p=p) for p in softmax(z, axis=1)])
    assert fit_temperature(3 * z, y, multilabel=False) == pytest.approx(3, rel=0.1)
    assert fit_temperature(0.5 * z, y, multilabel=False) == pytest.approx(0.5, rel=0.1)
    labels = (rng.random((4000, 3)) < 1 / (1 + np.exp(-z[:, :3]))).astype(int)
    assert fit_temperature(2 * z[:, :3], labels, multilabel=True) == pytest.approx(2, rel=0.1)


def test_expected_calibration_error_and_thresholds():
    assert expected_calibration_error([0, 0], np.array([[1.0, 0.0], [1.0, 0.0]])) == 0
    assert expected_calibration_error([1, 1], np.array([[0.9, 0.1], [0.9, 0.1]])) == pytest.approx(0.9)
    proba = np.array([[0.9, 0.2], [0.6, 0.1], [0.4, 0.3], [0.1, 0.05]])
    truth = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    # label 0: 0.6 keeps both positives and no negative; label 1 has no positive and keeps 0.5
    np.testing.assert_allclose(tune_thresholds(proba, truth), [0.6, 0.5])


@pytest.mark.slow
def test_temperature_changes_confidence_not_predictions(frame):
    X, y = frame
    X_fit, y_fit, X_new, y_new = X.iloc[:64], y.iloc[:64], X.iloc[64:], y.iloc[64:]
    # long training on few rows: an over-confident network
    plain = fast_classifier(max_epochs=25, validation_fraction=0.3).fit(X_fit, y_fit)
    calibrated = fast_classifier(max_epochs=25, validation_fraction=0.3, calibration="temperature").fit(X_fit, y_fit)
    assert plain.temperature_ == 1.0
    assert calibrated.temperature_ != 1.0
    np.testing.assert_array_equal(calibrated.predict(X_new), plain.predict(X_new))
    p_plain, p_cal = plain.predict_proba(X_new), calibrated.predict_proba(X_new)
    np.testing.assert_allclose(p_cal.sum(axis=1), 1)
    assert not np.allclose(p_plain, p_cal)
    # on the rows it was fitted on, the temperature cannot make log-loss worse than T=1
    data = calibrated.model_inputs(X_fit)
    logits, y_valid = calibrated._validation_outputs(data, np.searchsorted(calibrated.classes_, y_fit))
    assert log_loss(y_valid, softmax(logits / calibrated.temperature_, axis=1), labels=range(4)) <= log_loss(
        y_valid, softmax(logits, axis=1), labels=range(4)) + 1e-9


def test_calibrated_classifier_cv_around_a_fusion_classifier(frame):
    X, y = frame
    calibrated = CalibratedClassifierCV(fast_classifier(max_epochs=5), cv=2, method="sigmoid").fit(X, y)
    proba = calibrated.predict_proba(X)
    assert proba.shape == (len(X), 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert set(calibrated.predict(X)) <= set(y)


def test_a_model_pickled_before_calibration_existed_still_predicts(frame):
    import pickle

    X, y = frame
    clf = fast_classifier(max_epochs=2).fit(X, y)
    expected = clf.predict_proba(X)
    for name in ("multilabel_", "temperature_", "_target_form"):
        del clf.__dict__[name]
    old = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(old.predict_proba(X), expected)
    assert old.temperature_ == 1.0 and not old.multilabel_
