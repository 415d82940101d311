"""Probabilities from logits: temperature scaling, per-label thresholds, calibration error.

Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks",
ICML 2017) divides a trained network's logits by one number ``T`` fitted on
held-out rows to minimise their log-loss; it changes how confident the
probabilities are, never which class ranks first.
"""

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit, log_softmax, softmax

__all__ = ["expected_calibration_error", "fit_temperature", "probabilities", "tune_thresholds"]


def probabilities(logits, *, multilabel, temperature=1.0):
    """Softmax (one class per row) or sigmoid (multilabel) of ``logits / temperature``, float64."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    return expit(z) if multilabel else softmax(z, axis=1)


def _nll(logits, y, multilabel):
    if multilabel:
        return -np.mean(y * log_expit(logits) + (1 - y) * log_expit(-logits))
    return -np.mean(log_softmax(logits, axis=1)[np.arange(len(y)), y])


def fit_temperature(logits, y, *, multilabel):
    """The temperature that minimises the log-loss of ``logits / T`` on the rows ``(logits, y)``.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_outputs)
        The network's outputs on held-out rows.
    y : ndarray
        Class indices (n_samples,), or the 0/1 indicator matrix when ``multilabel``.
    multilabel : bool
        Sigmoid outputs and binary cross-entropy instead of softmax and cross-entropy.

    Returns
    -------
    float
        ``T`` in [0.05, 20]; 1 when the rows are too few to say (fewer than two).
    """
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y)
    if len(y) < 2:
        return 1.0
    # one parameter, a smooth convex-enough objective in log T: a bounded scalar search is exact enough
    result = minimize_scalar(
        lambda log_t: _nll(logits / np.exp(log_t), y, multilabel), bounds=(np.log(0.05), np.log(20.0)),
        method="bounded", options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))


def tune_thresholds(proba, indicator):
    """Per label, the probability threshold that maximises F1 on the rows given.

    A row is predicted to have a label when its probability is at least the
    threshold.  A label without positive rows keeps 0.5.

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_labels)
        Probabilities of held-out rows.
    indicator : ndarray of shape (n_samples, n_labels)
        Their true 0/1 labels.

    Returns
    -------
    ndarray of shape (n_labels,)
        Thresholds in (0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> tune_thresholds(np.array([[0.9], [0.3], [0.2]]), np.array([[1], [1], [0]])).round(2)
    array([0.3])
    """
    proba = np.asarray(proba, dtype=np.float64)
    indicator = np.asarray(indicator)
    thresholds = np.full(proba.shape[1], 0.5)
    for j in range(proba.shape[1]):
        positives = indicator[:, j].sum()
        if positives == 0:
            continue
        order = np.argsort(-proba[:, j], kind="stable")
        p, t = proba[order, j], indicator[order, j]
        tp = np.cumsum(t)
        predicted = np.arange(1, len(p) + 1)
        f1 = 2 * tp / (predicted + positives)
        last_of_tie = np.append(p[1:] != p[:-1], True)  # a threshold keeps or drops tied rows together
        best = int(np.argmax(np.where(last_of_tie, f1, -1)))
        thresholds[j] = float(np.clip(p[best], 1e-6, 1 - 1e-6))
    return thresholds


def expected_calibration_error(y_true, proba, *, n_bins=15):
    """Expected calibration error of the top class: confidence against accuracy, in equal-width bins.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Class indices (positions in ``proba``'s columns).
    proba : ndarray of shape (n_samples, n_classes)
        Predicted probabilities.
    n_bins : int, default=15
        Bins of the top-class confidence in [0, 1].

    Returns
    -------
    float
        The rows-weighted mean over bins of ``|accuracy - mean confidence|``
        (0 for perfectly calibrated probabilities).

    Examples
    --------
    >>> import numpy as np
    >>> expected_calibration_error([0, 1], np.array([[0.9, 0.1], [0.4, 0.6]]))
    0.25
    """
    proba = np.asarray(proba, dtype=np.float64)
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == np.asarray(y_true)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    error = 0.0
    for b in np.unique(bins):
        rows = bins == b
        error += rows.sum() / len(proba) * abs(correct[rows].mean() - confidence[rows].mean())
    return float(round(error, 12))
