"""Out-of-fold linear text models as extra modalities of FusionClassifier (``stacking=``).

For every raw text modality, a scikit-learn text classifier (by default TF-IDF on
words and character n-grams + LogisticRegression, what a practitioner fits first)
gives class probabilities.  In ``fit`` they are out-of-fold: each row's come from
a model fitted on the other folds, so the network learns how far they can be
trusted on rows the linear model never saw (stacked generalisation, Wolpert 1992).
In ``predict`` they come from the model refitted on every training row.  The
network reads their logarithm as one more modality, ``<text>_stack``, of kind
"text", projected and fused like the others, hidden by ``modality_dropout`` and
trained with its own uni-modal head.

Why: a bag of n-grams with a linear model is hard to beat on a few thousand short
texts, and a network trained from scratch on the same rows rarely learns it
(benchmarks/accuracy.py, BENCHMARKS.md).  Given as an input, the network starts
from it and learns what the pictures and the other columns add.
"""

import warnings

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline, make_union
from threadpoolctl import threadpool_limits

from ..utils.validation import is_missing

__all__ = ["check_stacking", "default_text_model", "fit_stackers", "stack_inputs", "stack_name"]

#: log-probabilities are clipped here, so a class the linear model rules out stays a finite input
_FLOOR = 1e-4


def default_text_model():
    """TF-IDF (words 1-2 + char_wb 2-4, sublinear tf) + LogisticRegression(C=10): the ``"auto"`` text model."""
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=1)
    return make_pipeline(make_union(words, chars), LogisticRegression(C=10.0, max_iter=2000))


def check_stacking(value):
    """Validate the ``stacking`` parameter: "auto", None or a scikit-learn classifier with predict_proba."""
    if value is None or (isinstance(value, str) and value == "auto"):
        return
    if isinstance(value, str):
        raise ValueError(f"stacking must be 'auto', None or a scikit-learn classifier, got {value!r}")
    if not (hasattr(value, "get_params") and hasattr(value, "predict_proba") and is_classifier(value)):
        raise TypeError(
            "stacking must be 'auto', None or a scikit-learn classifier with predict_proba (e.g. a Pipeline of "
            f"TfidfVectorizer and LogisticRegression), got {type(value).__name__}"
        )


def stack_name(source, taken):
    """The name of ``source``'s stacked modality: ``<source>_stack``, made unique among ``taken``."""
    name = f"{source}_stack"
    while name in taken:
        name += "_"
    return name


def _texts(values):
    """(texts with missing ones as "", mask of present texts) from a text modality's values."""
    values = np.asarray(values, dtype=object).ravel()
    mask = np.array([not is_missing(v) for v in values], dtype=bool)
    texts = np.array([str(v) if m else "" for v, m in zip(values, mask)], dtype=object)
    return texts, mask


def _folds(y, n_splits=5):
    """Stratified folds for the out-of-fold predictions, or None when ``y`` cannot be split."""
    counts = np.bincount(y)
    counts = counts[counts > 0]
    if counts.max() < 2:
        return None
    return StratifiedKFold(n_splits=int(min(n_splits, counts.max())), shuffle=True, random_state=0)


def fit_stackers(stacking, modalities, y_enc, n_classes, *, multilabel):
    """Fit one linear model per raw text modality; return ``{name: stacker}`` and the training inputs.

    ``stacker`` is ``{"source": text modality, "model": fitted classifier, "classes": its class indices}``;
    the inputs are ``{name: out-of-fold log-probabilities (N, n_classes) float32, name_mask: bool}``.
    ``"auto"`` skips what it cannot stack (multilabel ``y``, no text modality, a ``y`` of one row per class);
    an explicit model raises instead.
    """
    if stacking is None:
        return {}, {}
    explicit = not isinstance(stacking, str)
    sources = [name for name, mod in modalities.items() if mod.kind == "text"]
    if multilabel or not sources:
        if explicit:
            why = "a multilabel y" if multilabel else "no raw text column in X"
            raise ValueError(f"stacking= stacks a text model on raw text columns of a single-label y; got {why}")
        return {}, {}
    y_enc = np.asarray(y_enc)
    if _folds(y_enc) is None:
        if explicit:
            raise ValueError("stacking= needs at least 2 rows in some class of y for its out-of-fold predictions")
        return {}, {}
    stackers, data = {}, {}
    taken = set(modalities)
    for source in sources:
        texts, mask = _texts(modalities[source].values)
        rows = np.flatnonzero(mask)
        cv = _folds(y_enc[rows]) if len(rows) >= 2 else None
        if cv is None:
            if explicit:
                raise ValueError(f"stacking=: text column {modalities[source].column or source!r} has too few texts")
            continue
        model = default_text_model() if not explicit else clone(stacking)
        oof = np.full((len(texts), n_classes), 1.0 / n_classes)
        # one BLAS thread: these sparse problems are too small to share, and on a busy machine more threads
        # made the fits 5x slower (benchmarks/accuracy.py, tabler: 16.6 s against 3.0 s per fit at load 7)
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            # a fold missing a rare class, an lbfgs that stops at max_iter: the probabilities stay usable
            warnings.simplefilter("ignore", category=ConvergenceWarning)
            warnings.filterwarnings("ignore", message=".*least populated class.*")
            warnings.filterwarnings("ignore", message=".*[Nn]umber of classes in training fold.*")
            proba = cross_val_predict(model, texts[rows], y_enc[rows], cv=cv, method="predict_proba")
            model.fit(texts[rows], y_enc[rows])
        # the classes these rows have, sorted: the columns of cross_val_predict's and the refitted model's output
        classes = np.asarray(model.classes_, dtype=np.int64)
        oof[np.ix_(rows, classes)] = proba
        name = stack_name(source, taken)
        taken.add(name)
        stackers[name] = {"source": source, "model": model, "classes": classes, "n_classes": int(n_classes)}
        data[name] = _log(oof)
        data[f"{name}_mask"] = mask
    return stackers, data


def stack_inputs(stacker, values):
    """The stacked modality's inputs for a text modality's ``values``: ``(log-probabilities, mask)``."""
    texts, mask = _texts(values)
    proba = np.full((len(texts), stacker["n_classes"]), 1.0 / stacker["n_classes"])
    if mask.any():
        with threadpool_limits(limits=1):
            proba[np.ix_(np.flatnonzero(mask), stacker["classes"])] = stacker["model"].predict_proba(texts[mask])
    return _log(proba), mask


def _log(proba):
    return np.log(np.clip(proba, _FLOOR, 1.0)).astype(np.float32)
