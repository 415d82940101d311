"""OutOfFoldTransformer: out-of-fold predictions in fit_transform, the refitted model in transform."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import make_column_transformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from skmm import FusionClassifier, ImageEncoder, OutOfFoldTransformer


class Spy(ClassifierMixin, BaseEstimator):
    """Column 0 of X is a row id; predict_proba says, per row, whether this model was fitted on that row."""

    def fit(self, X, y):
        self.seen_ = set(np.asarray(X)[:, 0].tolist())
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        seen = np.array([i in self.seen_ for i in np.asarray(X)[:, 0].tolist()], dtype=float)
        return np.c_[seen, 1 - seen]

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def _blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(["a", "b", "c"], n // 3)
    X = rng.normal(size=(n, 4)) + (y[:, None] == "a") * 1.5
    return X, y


def test_fit_transform_equals_cross_val_predict():
    X, y = _blobs()
    cv = StratifiedKFold(4, shuffle=True, random_state=0)
    out = OutOfFoldTransformer(LogisticRegression(), cv=cv).fit_transform(X, y)
    np.testing.assert_allclose(out, cross_val_predict(LogisticRegression(), X, y, cv=cv, method="predict_proba"))


def test_an_int_cv_is_stratified_for_classifiers_and_plain_kfold_for_regressors():
    X, y = _blobs()
    np.testing.assert_allclose(
        OutOfFoldTransformer(LogisticRegression(), cv=3).fit_transform(X, y),
        cross_val_predict(LogisticRegression(), X, y, cv=StratifiedKFold(3), method="predict_proba"),
    )
    target = X @ np.arange(4.0)
    np.testing.assert_allclose(
        OutOfFoldTransformer(Ridge(), cv=3).fit_transform(X, target),
        cross_val_predict(Ridge(), X, target, cv=KFold(3)).reshape(-1, 1),
    )


def test_transform_uses_the_model_refitted_on_all_rows():
    X, y = _blobs()
    oof = OutOfFoldTransformer(LogisticRegression(C=0.5)).fit(X, y)
    full = LogisticRegression(C=0.5).fit(X, y)
    np.testing.assert_allclose(oof.transform(X[:7]), full.predict_proba(X[:7]))
    np.testing.assert_allclose(oof.estimator_.coef_, full.coef_)
    # fit_transform fits the same model, besides returning out-of-fold predictions
    oof2 = OutOfFoldTransformer(LogisticRegression(C=0.5))
    oof2.fit_transform(X, y)
    np.testing.assert_allclose(oof2.estimator_.coef_, full.coef_)


def test_no_row_is_predicted_by_a_model_fitted_on_it():
    X = np.c_[np.arange(30), np.zeros(30)]
    y = np.tile(["x", "y"], 15)
    oof = OutOfFoldTransformer(Spy(), cv=5)
    seen = oof.fit_transform(X, y)[:, 0]
    assert not seen.any()  # out of fold: no row's own label shaped its own feature
    assert oof.transform(X)[:, 0].all()  # transform: the model fitted on every row


@pytest.mark.parametrize(
    "method, n_columns, names",
    [
        ("auto", 3, ["logisticregression_a", "logisticregression_b", "logisticregression_c"]),
        ("decision_function", 3, ["logisticregression_a", "logisticregression_b", "logisticregression_c"]),
        ("predict", 1, ["logisticregression"]),
    ],
)
def test_methods_and_feature_names(method, n_columns, names):
    X, y = _blobs()
    oof = OutOfFoldTransformer(LogisticRegression(), method=method)
    out = oof.fit_transform(X, y)
    assert out.shape == (len(X), n_columns) and oof.transform(X).shape == out.shape
    assert list(oof.get_feature_names_out()) == names
    if method == "predict":
        assert set(np.unique(out)) <= {0.0, 1.0, 2.0}  # class positions in classes_


def test_binary_decision_function_is_one_column():
    X, y = _blobs()
    y = np.where(y == "a", "a", "rest")
    oof = OutOfFoldTransformer(LogisticRegression(), method="decision_function")
    assert oof.fit_transform(X, y).shape == (len(X), 1)
    assert list(oof.get_feature_names_out()) == ["logisticregression"]


def test_set_output_pandas():
    X, y = _blobs()
    oof = OutOfFoldTransformer(LogisticRegression()).set_output(transform="pandas")
    out = oof.fit_transform(pd.DataFrame(X, columns=list("pqrs")), y)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(oof.get_feature_names_out())
    assert list(oof.feature_names_in_) == list("pqrs")


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"method": "proba"}, ValueError, "method must be one of"),
        ({"method": "predict_proba", "estimator": Ridge()}, ValueError, "Ridge has no predict_proba"),
    ],
)
def test_bad_parameters_fail_in_fit(params, error, match):
    X, y = _blobs()
    with pytest.raises(error, match=match):
        OutOfFoldTransformer(**{"estimator": LogisticRegression(), **params}).fit(X, y)


def test_y_is_required():
    with pytest.raises(ValueError, match="requires y"):
        OutOfFoldTransformer(LogisticRegression()).fit(np.zeros((4, 2)), None)


@pytest.mark.slow
def test_a_text_block_of_out_of_fold_probabilities_feeds_fusion_classifier(shapes_df):
    df = shapes_df
    features = make_column_transformer(
        (ImageEncoder("pixels", image_size=8), "image_path"),
        # the whole text model inside: its vocabulary, too, is fitted out of fold
        (OutOfFoldTransformer(make_pipeline(TfidfVectorizer(), LogisticRegression(C=10)), cv=3), "caption"),
    ).set_output(transform="pandas")
    model = make_pipeline(features, FusionClassifier(max_epochs=3, dim=8, hidden_dim=8, random_state=0, device="cpu"))
    model.fit(df, df["label"])
    clf = model[-1]
    assert clf.modalities_ == ["image", "outoffoldtransformer"]
    names = [f"outoffoldtransformer__pipeline_{c}" for c in clf.classes_]
    assert list(clf.input_layout_.blocks_["outoffoldtransformer"]) == names
    assert model.predict(df).shape == (len(df),)
