"""Labels in FusionClassifier: every kind of y given back as it came, label errors, class_weight.

A bad y or class_weight raises before any training starts; "training started"
is seen through the ``no_training`` fixture (conftest.py).
"""

import numpy as np
import pandas as pd
import pytest

from skmm import ImageEncoder

from helpers import three_epochs as fast


def _labels(kind, y):
    """The shapes labels as a user might hold them."""
    codes = pd.Series(pd.Categorical(y).codes, index=y.index)
    return {
        "object": y.astype(object),
        "numpy-str": y.to_numpy(dtype=str),
        "pandas-string": y.astype("string"),
        "int64": codes.astype(np.int64),
        "int32": codes.astype(np.int32).to_numpy(),
        "uint8": codes.astype(np.uint8),
        "bool": y.str.startswith("red"),
        "categorical": pd.Categorical(y, categories=["unused", *sorted(set(y))]),
        "ordered-series": y.astype(
            pd.CategoricalDtype(["red-square", "red-circle", "blue-square", "blue-circle"], ordered=True)
        ),
    }[kind]


# -- kinds of labels -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["object", "numpy-str", "pandas-string", "int64", "int32", "uint8", "bool", "categorical", "ordered-series"]
)
def test_predict_gives_labels_back_as_they_came(frame, kind):
    X, y = frame
    labels = _labels(kind, y)
    clf = fast(max_epochs=25).fit(X, labels)
    pred = clf.predict(X)
    seen = np.unique(np.asarray(labels))
    np.testing.assert_array_equal(clf.classes_, seen)  # sorted labels seen in y, as in scikit-learn
    assert clf.predict_proba(X).shape == (len(X), len(seen))
    if isinstance(labels.dtype, pd.CategoricalDtype):
        # A Categorical comes back a Categorical with y's categories (unused included) and order.
        assert isinstance(pred, pd.Categorical)
        assert pred.dtype == labels.dtype
        assert "unused" not in clf.classes_
    elif kind in ("object", "pandas-string"):
        assert pred.dtype == object and all(type(p) is str for p in pred)
    else:
        assert isinstance(pred, np.ndarray) and pred.dtype == labels.dtype
    assert clf.score(X, labels) > 0.8


# -- label errors --------------------------------------------------------------------------


def test_label_errors(shapes_df, no_training):
    df = shapes_df
    with pytest.raises(ValueError, match="1 class"):
        fast().fit(df, ["a"] * len(df))
    with pytest.raises(ValueError, match="requires y"):
        fast().fit(df, None)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        fast().fit(df, df["label"][:-1])
    with pytest.raises(ValueError, match="Unknown label type"):
        fast().fit(df, np.linspace(0, 1, len(df)))
    assert no_training == []


def test_labels_with_missing_values_raise_naming_the_row(frame, no_training):
    X, y = frame
    for labels in (y.where(y.index != "p5", None), y.where(y.index != "p5", np.nan).astype("string")):
        with pytest.raises(ValueError, match=r"1 missing label.*row 'p5' \(position 5\)"):
            fast().fit(X, labels)
    codes = pd.Series(np.arange(len(X)) % 4, index=X.index, dtype="float").where(y.index != "p8")
    with pytest.raises(ValueError, match=r"missing label.*row 'p8'"):
        fast().fit(X, codes)
    assert no_training == []


# -- class_weight --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, class_weight, expected",
    [
        ("object", {"red-square": 4.0, "blue-circle": 0.5}, [0.5, 1, 1, 4]),
        ("int32", {3: 4.0, np.int64(0): 0.5}, [0.5, 1, 1, 4]),
        ("bool", {True: 3.0}, [1, 3]),
        ("categorical", {"red-square": 4.0}, [1, 1, 1, 4]),
    ],
)
def test_class_weight_dict_is_keyed_by_the_labels_of_y(frame, kind, class_weight, expected):
    X, y = frame
    clf = fast(max_epochs=1, class_weight=class_weight).fit(X, _labels(kind, y))
    np.testing.assert_allclose(clf.net_.criterion_.weight.numpy(), expected)


@pytest.mark.parametrize(
    "class_weight, match",
    [
        ({"red-square": 2.0, "purple-blob": 3.0}, r"not classes of y: \['purple-blob'\]; the classes are \['blue-c"),
        ({0: 2.0}, r"not classes of y: \[0\]"),
        ({"red-square": -1.0}, r"class_weight\['red-square'\] must be a finite number >= 0"),
    ],
)
def test_bad_class_weight_raises_before_training(frame, class_weight, match, no_training):
    # A class_weight that is neither None, "balanced" nor a dict: tests/test_params.py.
    X, y = frame
    with pytest.raises(ValueError, match=match):
        fast(class_weight=class_weight).fit(X, y)
    assert no_training == []


def test_class_weight_on_imbalanced_classes(shapes640):
    """One class is rare (about 7% of training rows); weights reach the loss and the rare class is learned."""
    train, test = shapes640
    rare = "red-circle"
    train = train[(train["label"] != rare) | (np.arange(len(train)) % 4 == 0)].reset_index(drop=True)
    assert 0.05 < (train["label"] == rare).mean() < 0.1
    X_train, X_test, y_test = train.drop(columns="label"), test.drop(columns="label"), test["label"].to_numpy()

    for class_weight in ("balanced", {rare: 4.0}):
        clf = fast(image=ImageEncoder("pixels", image_size=16), max_epochs=40, class_weight=class_weight)
        pred = clf.fit(X_train, train["label"]).predict(X_test)
        weight = clf.net_.criterion_.weight.numpy()
        if class_weight == "balanced":
            # n_samples / (n_classes * count of the class), as in scikit-learn
            counts = train["label"].value_counts().reindex(clf.classes_).to_numpy()
            np.testing.assert_allclose(weight, len(train) / (len(counts) * counts), rtol=1e-6)
        else:
            np.testing.assert_allclose(weight, np.where(clf.classes_ == rare, 4.0, 1.0))
        assert (pred[y_test == rare] == rare).mean() >= 0.6
        assert (pred == y_test).mean() >= 0.8
