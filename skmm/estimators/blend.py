"""The final prediction of a stacked FusionClassifier as a blend with its linear text models (``blend=``).

A network whose branches are trained from scratch on a few hundred rows learns
them by heart: on its training rows it is sure of every class, so it learns to
trust its own branches over the out-of-fold probabilities of the stacked linear
text models (:mod:`skmm.estimators.stacked`), and on new rows it can fall below
the linear model it was given as an input (BENCHMARKS.md, accuracy summary).

``blend="auto"`` keeps a stratified share of the training rows out of the
network's training (:data:`HOLDOUT`, or the ``validation_fraction`` rows when
there are some) and fits, on those rows, the log-linear blend (a weighted
product of experts)

    ``p ∝ (p_net ** w * p_linear ** (1 - w)) ** s``

``p_linear`` being the stacked text models' probabilities (the normalised
geometric mean over text columns): out-of-fold on those rows, so the choice is
honest for both sides.  ``w`` (``blend_weight_``) is the network's share, ``s``
(``blend_scale_``) a sharpness, an inverse temperature of the blend.  For each
``w`` of :data:`BLEND_GRID` the ``s`` with the lowest held-out log-loss is
found; the ``w`` kept is the smallest whose log-loss is within one standard
error of the lowest (:data:`SE_RULE`, Breiman's one-standard-error rule).
``predict_proba`` then blends the same way, ``p_linear`` coming from the text
models refitted on every row.  ``w = 0`` is the linear model itself, ``w = 1``
the network alone: the network is kept exactly as far as it does better than
the linear model on rows it never saw (the weighted ensemble AutoGluon fits on
its validation rows is the precedent).  Only ``w`` decides the predicted class.

Why a sharpness: out-of-fold, the stacked TF-IDF + LogisticRegression can be
under-confident (on tabler a free coefficient on its log-probabilities came
out at 1.1-1.3), and with ``s`` fixed at 1 the log-loss moved weight to the
sure-of-itself network only to sharpen the blend.  With ``s`` free the weight
is left to say which side ranks the classes better: on the from-scratch
defaults of benchmarks/accuracy.py it came out at 0.1 on tabler's 3 seeds,
where ``s = 1`` gave 0.25-0.40, and within 0.1 of the old weight on clipart
and mdi (BENCHMARKS.md, accuracy-blend; ``benchmarks/blend_rules.py``).  On
the same fitted networks the log-linear blend scored 0.01-0.05 macro-F1 above
the arithmetic mean ``w * p_net + (1 - w) * p_linear``.  A limit: the held-out
rows are a random share of the training rows, so rows that nearly repeat a
training row (style variants of one icon) make them kinder to the network
than new data is; the one-standard-error rule leans the other way.
"""

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.model_selection import StratifiedShuffleSplit
from skorch.helper import SliceDict

__all__ = [
    "BLEND_GRID", "HOLDOUT", "SCALE_BOUNDS", "SE_RULE", "blend_probabilities", "blended", "blends", "check_blend", "fit_blend", "fit_blend_weight",
    "holdout_rows", "kept_weight_index", "linear_probabilities", "training_holdout",
]

#: the share of the training rows held out to choose the blend weight when ``validation_fraction`` is None
HOLDOUT = 0.2
#: the blend weights tried (the network's share)
BLEND_GRID = np.linspace(0.0, 1.0, 21)
#: the weight kept is the smallest within this many standard errors of the best held-out log-loss (0: the best)
SE_RULE = 1.0
#: the range of the blend's sharpness ``s`` (an inverse temperature)
SCALE_BOUNDS = (0.1, 10.0)
#: the network's probabilities are floored here before their logarithm, so one sure mistake stays finite
_FLOOR = 1e-6


def check_blend(value):
    """Validate the ``blend`` parameter: "auto" or None."""
    if value is None or (isinstance(value, str) and value == "auto"):
        return
    raise ValueError(f"blend must be 'auto' or None, got {value!r}")


def holdout_rows(y, fraction, seed):
    """Stratified (when every class has 2 rows) indices of ``fraction`` of the rows, or None when too few."""
    y = np.asarray(y)
    n_hold = int(round(fraction * len(y)))
    n_classes = len(np.unique(y))
    if n_hold < 1 or len(y) - n_hold < 1:
        return None
    counts = np.bincount(np.unique(y, return_inverse=True)[1])
    if counts.min() >= 2 and n_hold >= n_classes and len(y) - n_hold >= n_classes:
        split = StratifiedShuffleSplit(n_splits=1, test_size=n_hold, random_state=seed)
        return np.sort(next(split.split(np.zeros(len(y)), y))[1])
    return np.sort(np.random.default_rng(seed).choice(len(y), n_hold, replace=False))


def linear_probabilities(inputs, stack_names):
    """The stacked text models' class probabilities: the normalised geometric mean over ``stack_names``.

    Each stacked input holds a text model's (floored) log-probabilities; a row
    whose text is missing in a column gets that column's uniform probabilities
    (as its stacked input says), which leave the others' unchanged.
    """
    logs = np.mean([np.asarray(inputs[name], dtype=np.float64) for name in stack_names], axis=0)
    return softmax(logs, axis=1)


def blend_probabilities(p_net, p_linear, weight, scale=1.0):
    """The log-linear blend ``(p_net ** weight * p_linear ** (1 - weight)) ** scale``, normalised per row, float64."""
    return softmax(scale * _blend_logits(p_net, p_linear, weight), axis=1)


def _blend_logits(p_net, p_linear, weight):
    z = weight * np.log(np.clip(np.asarray(p_net, dtype=np.float64), _FLOOR, None))
    z += (1.0 - weight) * np.log(np.clip(np.asarray(p_linear, dtype=np.float64), _FLOOR, None))
    return z


def _row_losses_at_best_scale(z, y):
    """Per-row log-losses of ``softmax(s * z)`` at the ``s`` of :data:`SCALE_BOUNDS` with the lowest mean, and that ``s``."""
    rows = np.arange(len(y))

    def loss(log_scale):
        return -log_softmax(np.exp(log_scale) * z, axis=1)[rows, y]

    lo, hi = np.log(SCALE_BOUNDS)
    found = minimize_scalar(lambda t: loss(t).mean(), bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    return loss(found.x), float(np.exp(found.x))


def fit_blend_weight(p_net, p_linear, y):
    """The weight of ``BLEND_GRID`` and the sharpness of the blend with the lowest log-loss on ``(p_net, p_linear, y)``.

    Parameters
    ----------
    p_net : ndarray of shape (n_samples, n_classes)
        The network's probabilities on rows it was not trained on.
    p_linear : ndarray of shape (n_samples, n_classes)
        The linear models' out-of-fold probabilities on the same rows.
    y : ndarray of shape (n_samples,)
        Their class indices.

    Returns
    -------
    weight : float
        The network's share in [0, 1]: the smallest weight whose mean log-loss
        (each weight at its best sharpness) is within ``SE_RULE`` standard
        errors (of the per-row differences) of the lowest.
    scale : float
        The sharpness ``s`` of :func:`blend_probabilities` with the lowest
        log-loss at that weight, within :data:`SCALE_BOUNDS`.

    Examples
    --------
    >>> import numpy as np
    >>> net = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    >>> linear = np.array([[0.4, 0.6], [0.6, 0.4], [0.6, 0.4]])
    >>> weight, scale = fit_blend_weight(net, linear, np.array([0, 1, 1]))  # the network is right, the linear model not
    >>> weight, round(scale)
    (1.0, 10)
    """
    y = np.asarray(y)
    fitted = [_row_losses_at_best_scale(_blend_logits(p_net, p_linear, w), y) for w in BLEND_GRID]
    best = kept_weight_index(np.array([losses for losses, _ in fitted]))
    return float(round(BLEND_GRID[best], 6)), float(fitted[best][1])


def kept_weight_index(per_row):
    """The index of the weight kept, from the per-row log-losses ``per_row`` (weights x rows) of ``BLEND_GRID``.

    The lowest mean (the largest weight among ties), then, with :data:`SE_RULE`,
    the smallest weight within that many standard errors of it (paired, per row).
    """
    means = np.round(per_row.mean(axis=1), 12)
    best = int(np.flatnonzero(means == means.min())[-1])
    if SE_RULE and per_row.shape[1] > 1:
        # the held-out rows favour the network (near-repeats of its training rows), so among weights they cannot
        # tell apart the one closest to the linear model is kept
        diff = per_row[: best + 1] - per_row[best]
        se = diff.std(axis=1, ddof=1) / np.sqrt(per_row.shape[1])
        best = int(np.flatnonzero(diff.mean(axis=1) <= SE_RULE * se + 1e-12)[0])
    return best


# -- the estimator's side (FusionClassifier calls these, keeping its own module short) --------------------------
def blends(estimator):
    """Whether a FusionClassifier being fitted blends: ``blend="auto"``, stacked text models, a trained branch.

    Frozen encoders (every input a feature) are left alone: their network does not
    learn its rows by heart, and every row is worth more to it than the blend.
    Neither does a multilabel ``y`` (nothing is stacked) nor a net trained by an
    ``accelerator`` (its split is not kept).
    """
    return (
        getattr(estimator, "blend", None) == "auto"
        and bool(getattr(estimator, "stackers_", None))
        and not getattr(estimator, "multilabel_", False)
        and getattr(estimator, "accelerator", None) is None
        and any(getattr(branch, "trainable", False) for branch in getattr(estimator, "branches_", {}).values())
        and _fusion_reads_stack(estimator)
    )


def _fusion_reads_stack(estimator):
    """Whether the fusion's output depends on a stacked text model (not so in the ``image`` ablation)."""
    names = list(getattr(estimator, "modalities_", []))
    if not names:
        return False
    fusion = estimator._check_fusion_fits(names, estimator._net_kinds())  # the kinds the FusionNet's fusion gets
    return any(names[i] in estimator.stackers_ for i in fusion.used_modalities)


def training_holdout(estimator, y_enc, seed):
    """The rows the network is not trained on, for choosing the blend.

    None when it does not blend, or when ``validation_fraction``'s rows are reused.
    """
    if not blends(estimator) or estimator.validation_fraction is not None:
        return None
    return holdout_rows(y_enc, HOLDOUT, seed)


def fit_blend(estimator, data, y_enc):
    """The fitted ``(blend_weight_, blend_scale_)``, chosen on the rows the network was not trained on.

    ``(1.0, 1.0)`` (the network alone) when :func:`blends` says the estimator does not blend.
    """
    if not blends(estimator):
        return 1.0, 1.0
    _, valid = estimator.net_.get_split_datasets(SliceDict(**data), y_enc)
    if valid is None or len(valid) == 0:
        return 1.0, 1.0
    rows = np.asarray(valid.indices)
    logits = estimator.net_.forward(valid, training=False).float().cpu().numpy().astype(np.float64)
    p_net = softmax(logits / estimator.temperature_, axis=1)
    p_linear = linear_probabilities({n: np.asarray(data[n])[rows] for n in estimator.stackers_}, list(estimator.stackers_))
    return fit_blend_weight(p_net, p_linear, np.asarray(y_enc)[rows])


def blended(estimator, proba, inputs):
    """``proba`` (the network's) blended with the stacked models' by ``blend_weight_`` and ``blend_scale_``.

    Unchanged when the estimator does not blend (``blend_weight_`` 1 and ``blend_scale_`` 1).
    """
    weight = getattr(estimator, "blend_weight_", 1.0)
    scale = getattr(estimator, "blend_scale_", 1.0)
    if (weight >= 1.0 and scale == 1.0) or not getattr(estimator, "stackers_", None):
        return proba
    return blend_probabilities(proba, linear_probabilities(inputs, list(estimator.stackers_)), weight, scale)
