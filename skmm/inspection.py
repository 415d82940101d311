"""Which modality did the work: permutation and removal importance per modality.

Like :func:`sklearn.inspection.permutation_importance`, but a "feature" is a whole
modality (every column, or block of encoded features, that feeds one branch of
the fusion network), and besides permuting it across rows the model is also
scored with the modality removed: every row treated as missing it, which the
network answers with its learned "missing" embedding.
"""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import check_scoring
from sklearn.utils import Bunch, check_random_state
from sklearn.utils.validation import check_is_fitted

from .utils.validation import check_int

__all__ = ["modality_importance"]


class _OnInputs(ClassifierMixin, BaseEstimator):
    """The fitted classifier seen through its model inputs, so a scorer can score altered inputs."""

    def __init__(self, model):
        self.model = model
        self.classes_ = model.classes_

    def fit(self, inputs, y=None):
        return self  # a view of a fitted model: nothing to learn (scorers want the method to exist)

    def predict_proba(self, inputs):
        return self.model.proba_from_inputs(inputs)

    def predict(self, inputs):
        if getattr(self.model, "multilabel_", False):  # 0/1 per label, at the model's thresholds
            return (self.predict_proba(inputs) >= self.model.thresholds_).astype(np.int64)
        return self.classes_[np.argmax(self.predict_proba(inputs), axis=1)]


class _RegressorOnInputs(RegressorMixin, BaseEstimator):
    """The fitted regressor seen through its model inputs (predictions (n, n_targets); scorers take them)."""

    def __init__(self, model):
        self.model = model

    def fit(self, inputs, y=None):
        return self

    def predict(self, inputs):
        return self.model.predict_from_inputs(inputs)


def _permuted(inputs, name, order):
    out = dict(inputs)
    for key in (name, f"{name}_mask", f"{name}_items"):  # _items: which pictures of a multi-picture cell exist
        if key in out:
            out[key] = np.asarray(out[key])[order]
    return out


def _removed(inputs, name):
    out = dict(inputs)
    out[f"{name}_mask"] = np.zeros(len(np.asarray(inputs[name])), dtype=bool)
    return out


def modality_importance(model, X, y, *, scoring=None, n_repeats=5, random_state=None):
    """Score drop when each modality is permuted across rows, and when it is removed.

    Parameters
    ----------
    model : fitted FusionClassifier or FusionRegressor
        The model to explain (a multilabel classifier is scored on its 0/1
        predictions; give ``y`` as a 0/1 array or DataFrame then).
    X : DataFrame or array-like
        Data the model can predict on (usually held-out rows).
    y : array-like of shape (n_samples,)
        The true labels of ``X``.
    scoring : str, callable or None, default=None
        A scikit-learn scorer (None: the model's ``score``: accuracy, R²).
    n_repeats : int, default=5
        Permutations per modality.
    random_state : int, RandomState or None, default=None
        Seeds the permutations.

    Returns
    -------
    Bunch
        ``modalities`` (names, in ``model.modalities_`` order), ``baseline_score``,
        ``importances_mean`` / ``importances_std`` / ``importances`` (shape
        ``(n_modalities, n_repeats)``): the score drop under permutation;
        ``removal_importances_mean`` / ``removal_importances_std`` /
        ``removal_importances``: the score drop with the modality removed (the
        same every repeat: the network is deterministic in evaluation).

    Examples
    --------
    >>> from skmm import FusionClassifier
    >>> from skmm.datasets import make_shapes
    >>> from skmm.inspection import modality_importance
    >>> df = make_shapes(60, random_state=0)
    >>> clf = FusionClassifier(image="pixels", text="tfidf", max_epochs=5, random_state=0).fit(df, df["label"])
    >>> result = modality_importance(clf, df, df["label"], n_repeats=2, random_state=0)
    >>> result.modalities
    ['image', 'text']
    """
    check_is_fitted(model)
    n_repeats = check_int("n_repeats", n_repeats)
    rng = check_random_state(random_state)
    view = _RegressorOnInputs(model) if hasattr(model, "predict_from_inputs") else _OnInputs(model)
    scorer = check_scoring(view, scoring=scoring)
    y = np.asarray(y)
    inputs = model.model_inputs(X)
    n = len(y)
    baseline = scorer(view, inputs, y)
    permuted = np.empty((len(model.modalities_), n_repeats))
    removed = np.empty((len(model.modalities_), n_repeats))
    for i, name in enumerate(model.modalities_):
        for r in range(n_repeats):
            permuted[i, r] = baseline - scorer(view, _permuted(inputs, name, rng.permutation(n)), y)
        removed[i, :] = baseline - scorer(view, _removed(inputs, name), y)
    return Bunch(
        modalities=list(model.modalities_),
        baseline_score=baseline,
        importances=permuted,
        importances_mean=permuted.mean(axis=1),
        importances_std=permuted.std(axis=1),
        removal_importances=removed,
        removal_importances_mean=removed.mean(axis=1),
        removal_importances_std=removed.std(axis=1),
    )
