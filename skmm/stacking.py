"""Stacking as a transformer: out-of-fold predictions of a model, as features for another.

scikit-learn stacks inside its own ``StackingClassifier``; :class:`OutOfFoldTransformer`
offers the same cross-fitting as a pipeline step, so the predictions of a per-modality
linear model can be one more input block of a :class:`~skmm.FusionClassifier` (in a
ColumnTransformer, next to encoders).
"""

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, TransformerMixin, clone, is_classifier
from sklearn.model_selection import check_cv, cross_val_predict
from sklearn.utils.validation import check_is_fitted

from .utils.validation import check_option

__all__ = ["OutOfFoldTransformer"]

_METHODS = ("auto", "predict_proba", "predict_log_proba", "decision_function", "predict")


class OutOfFoldTransformer(TransformerMixin, MetaEstimatorMixin, BaseEstimator):
    """A model's predictions as features: out-of-fold on the rows it is fitted on.

    ``fit_transform(X, y)`` returns, for each row, the prediction of a clone of
    ``estimator`` fitted on the other folds of ``cv`` (what
    :func:`sklearn.model_selection.cross_val_predict` gives), so no row's own
    label ever shapes its own feature; it also fits ``estimator_`` on all rows,
    which ``transform`` uses on new rows.  A model stacked on these features
    therefore learns how far the predictions can be trusted on unseen rows, not
    on rows the inner model memorised (Wolpert, "Stacked generalization", 1992).

    Parameters
    ----------
    estimator : estimator
        A scikit-learn classifier or regressor (a Pipeline too, e.g. TF-IDF +
        LogisticRegression over a text column).
    cv : int, cross-validation generator or iterable, default=5
        The folds of ``fit_transform`` (see :func:`sklearn.model_selection.check_cv`:
        an int is a StratifiedKFold for classifiers, a KFold otherwise).
    method : {"auto", "predict_proba", "predict_log_proba", "decision_function", "predict"}, default="auto"
        The estimator's method giving the features; "auto" takes the first of
        ``predict_proba``, ``decision_function`` and ``predict`` it has.
    n_jobs : int or None, default=None
        Folds fitted in parallel (joblib).

    Attributes
    ----------
    estimator_ : estimator
        ``estimator`` fitted on all the rows ``fit`` saw; used by ``transform``.
    method_ : str
        The method used.
    classes_ : ndarray
        The classes, for a classifier.
    n_features_in_ : int
        Columns of X, when the estimator records them.

    Examples
    --------
    >>> from sklearn.feature_extraction.text import TfidfVectorizer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from skmm.stacking import OutOfFoldTransformer
    >>> texts = ["red circle", "blue square", "red dot", "blue box"] * 5
    >>> y = ["red", "blue", "red", "blue"] * 5
    >>> oof = OutOfFoldTransformer(make_pipeline(TfidfVectorizer(), LogisticRegression()), cv=5)
    >>> oof.fit_transform(texts, y).shape, list(oof.get_feature_names_out())
    ((20, 2), ['pipeline_blue', 'pipeline_red'])

    Inside a ColumnTransformer before FusionClassifier, the out-of-fold block is
    one more modality::

        features = make_column_transformer(
            (ImageEncoder("timm:tf_efficientnet_lite0", weights=...), "image_path"),
            (OutOfFoldTransformer(make_pipeline(TfidfVectorizer(), LogisticRegression(C=10))), "title"),
        ).set_output(transform="pandas")
        make_pipeline(features, FusionClassifier()).fit(df, df["label"])

    The Pipeline calls ``fit_transform`` on the training rows (out-of-fold
    features) and ``transform`` at predict time (the model refitted on all rows).
    Wrapping the whole text model, vectorizer included, fits the vocabulary out
    of fold too, and keeps ``set_output(transform="pandas")`` working (a
    TfidfVectorizer has no pandas output).
    """

    def __init__(self, estimator, *, cv=5, method="auto", n_jobs=None):
        self.estimator = estimator
        self.cv = cv
        self.method = method
        self.n_jobs = n_jobs

    def _resolve_method(self):
        check_option("method", self.method, _METHODS)
        if self.method != "auto":
            if not hasattr(self.estimator, self.method):
                raise ValueError(f"method={self.method!r}: {type(self.estimator).__name__} has no {self.method}")
            return self.method
        for name in ("predict_proba", "decision_function", "predict"):
            if hasattr(self.estimator, name):
                return name
        raise ValueError(f"estimator {type(self.estimator).__name__} has no predict method")

    def fit(self, X, y):
        """Fit ``estimator_`` on all rows (``transform`` then uses it).

        Parameters
        ----------
        X : array-like or DataFrame
            What ``estimator`` takes.
        y : array-like of shape (n_samples,)
            Targets.

        Returns
        -------
        self
            The fitted transformer.
        """
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        self.method_ = self._resolve_method()
        self.estimator_ = clone(self.estimator).fit(X, y)
        for name in ("classes_", "n_features_in_", "feature_names_in_"):
            if hasattr(self.estimator_, name):
                setattr(self, name, getattr(self.estimator_, name))
        self._n_features_out = self._n_outputs()
        return self

    def fit_transform(self, X, y):
        """Out-of-fold predictions for the rows of ``X``, and ``estimator_`` fitted on all of them.

        Parameters
        ----------
        X : array-like or DataFrame
            What ``estimator`` takes.
        y : array-like of shape (n_samples,)
            Targets.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out)
            Row i is predicted by a model that never saw row i.
        """
        self.fit(X, y)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        out = cross_val_predict(clone(self.estimator), X, y, cv=cv, method=self.method_, n_jobs=self.n_jobs)
        return self._as_2d(out)

    def transform(self, X):
        """Predictions of ``estimator_`` (fitted on all training rows) for new rows.

        Parameters
        ----------
        X : array-like or DataFrame
            What ``estimator`` takes.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out)
            The refitted estimator's outputs for ``X``.
        """
        check_is_fitted(self)
        return self._as_2d(getattr(self.estimator_, self.method_)(X))

    def _as_2d(self, out):
        out = np.asarray(out)
        if out.ndim == 1:
            out = out.reshape(-1, 1)
        if self.method_ == "predict" and hasattr(self, "classes_"):
            # class labels become their positions in classes_: a numeric feature
            out = np.searchsorted(self.classes_, out.ravel()).reshape(-1, 1)
        return out.astype(np.float64, copy=False)

    def _n_outputs(self):
        classes = getattr(self, "classes_", None)
        if classes is None or self.method_ == "predict":
            return 1
        if self.method_ == "decision_function" and len(classes) == 2:
            return 1
        return len(classes)

    def get_feature_names_out(self, input_features=None):
        """Feature names: ``<estimator>_<class>`` per class column, else ``<estimator>``.

        Parameters
        ----------
        input_features : ignored
            There for scikit-learn's API.

        Returns
        -------
        ndarray of str
            One name per output column.
        """
        check_is_fitted(self)
        prefix = type(self.estimator_).__name__.lower()
        if self._n_features_out == 1:
            return np.asarray([prefix], dtype=object)
        return np.asarray([f"{prefix}_{c}" for c in self.classes_], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        inner = self.estimator.__sklearn_tags__()
        tags.input_tags = inner.input_tags
        return tags
