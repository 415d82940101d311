"""The input layout (skmm/io/frame.py): which columns are which modality, decided at fit."""

import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

from skmm import FusionClassifier
from skmm.io.frame import InputLayout, modality_role

from helpers import messages
from helpers import three_epochs as fast


def _layout(X, y=None, **params):
    layout = InputLayout(**params)
    return layout, layout.fit_read(X, y, estimator=BaseEstimator())


def test_raw_columns_are_detected_and_remembered(shapes_df):
    layout, mods = _layout(shapes_df, shapes_df["label"])
    assert (layout.kind_, layout.image_col_, layout.text_col_) == ("columns", "image_path", "caption")
    assert layout.ignored_columns_ == ["label"]
    assert [m.kind for m in mods.values()] == ["image", "text"]
    assert mods["image"].column == "image_path"
    again = layout.read(shapes_df[["caption", "image_path"]], estimator=BaseEstimator())  # column order free
    assert list(again["text"].values) == list(shapes_df["caption"])
    with pytest.raises(ValueError, match=r"column 'caption' \(text_col in fit\) is missing from X"):
        layout.read(shapes_df[["image_path"]], estimator=BaseEstimator())


def test_encoded_blocks_and_plain_numbers():
    blocks = pd.DataFrame(np.ones((3, 4)), columns=["imageencoder__a", "imageencoder__b", "textencoder__a", "x__b"])
    layout, mods = _layout(blocks)
    assert layout.kind_ == "blocks" and list(mods) == ["image", "text", "x"]
    assert mods["image"].values.shape == (3, 2)
    layout, mods = _layout(np.ones((3, 2)))
    assert layout.kind_ == "dense" and mods["numeric"].values.dtype == np.float32
    with pytest.raises(TypeError, match="DataFrame like the one seen in fit"):
        _layout(blocks)[0].read(np.ones((3, 4)), estimator=BaseEstimator())


def test_a_column_of_pathlib_paths_is_the_image_column(shapes_df):
    df = shapes_df.assign(image_path=[pathlib.Path(p) for p in shapes_df["image_path"]])
    layout, mods = _layout(df, df["label"])
    assert layout.image_col_ == "image_path" and layout.text_col_ == "caption"
    clf = FusionClassifier(image="pixels", text="tfidf", max_epochs=1, dim=8, hidden_dim=8, device="cpu")
    assert clf.fit(df, df["label"]).predict(df).shape == (len(df),)


def test_zero_rows_say_so(shapes_df):
    with pytest.raises(ValueError, match="X has 0 rows"):
        _layout(shapes_df.iloc[:0])
    with pytest.raises(ValueError, match="0 rows"):
        FusionClassifier().fit(shapes_df.iloc[:0], shapes_df["label"].iloc[:0])


def test_modality_role_reads_block_names():
    assert [modality_role(n) for n in ("image", "ImageEncoder", "textencoder-2", "price")] == [
        "image", "image", "text", "price"]


# -- through FusionClassifier: detection, ambiguity, named columns, ignored columns ----------


def test_detects_columns_by_content(shapes_df):
    df = shapes_df.rename(columns={"image_path": "photo", "caption": "words"}).assign(
        sku=[f"A{i}" for i in range(len(shapes_df))]
    )
    with pytest.warns(UserWarning, match=r"'sku' \(identifier"):  # one-word strings, all distinct
        clf = fast(max_epochs=1).fit(df, df["label"])
    assert (clf.image_col_, clf.text_col_) == ("photo", "words")
    assert sorted(clf.ignored_columns_) == ["label", "sku"]


def test_several_image_or_text_columns_are_all_read_by_default(shapes_df, no_training):
    # no roles given: every column's role is detected and every usable column read, each its own modality
    df = shapes_df.assign(thumb=shapes_df["image_path"], caption2=shapes_df["caption"].str.upper())
    layout, mods = _layout(df, df["label"])
    assert layout.kind_ == "wide" and list(mods) == ["image_path", "caption", "thumb", "caption2"]
    assert [m.kind for m in mods.values()] == ["image", "text", "image", "text"]
    assert layout.column_roles_["label"] == "ignored: equal to y (the target)"
    # short strings that are neither a text nor a category: an error naming the column and the parameter
    coded = shapes_df.assign(code=[f"k{i % 60}" for i in range(len(shapes_df))])
    with pytest.raises(ValueError, match=r"column 'code' is ambiguous.*columns="):
        fast().fit(coded, coded["label"])
    assert no_training == []
    # naming the columns settles it: those two are read, the others ignored with a warning naming them
    with pytest.warns(UserWarning, match=r"ignores the other columns of X: \['caption', 'thumb'\]"):
        clf = fast(max_epochs=1, image_col="image_path", text_col="caption2").fit(df, df["label"])
    assert clf.modalities_ == ["image", "text"] and clf.text_col_ == "caption2"
    assert clf.column_roles_["thumb"] == "ignored: not image_col or text_col"


@pytest.mark.parametrize(
    "params, X_kind, error, match",
    [
        ({"image_col": "image_path"}, "array", TypeError, "must be a pandas DataFrame.*image_col"),
        ({"image_col": "nope"}, "frame", ValueError, r"image_col='nope' is not a column.*columns are"),
        ({"text_col": "nope"}, "frame", ValueError, r"text_col='nope' is not a column"),
    ],
)
def test_named_columns_are_checked_before_training(shapes_df, params, X_kind, error, match, no_training):
    X = shapes_df.to_numpy() if X_kind == "array" else shapes_df
    with pytest.raises(error, match=match):
        fast(**params).fit(X, shapes_df["label"])
    assert no_training == []


def test_predict_checks_X_against_the_columns_seen_in_fit(shapes_df):
    df = shapes_df
    clf = fast(max_epochs=1).fit(df, df["label"])
    with pytest.raises(ValueError, match=r"column 'caption'.*missing from X"):
        clf.predict(df.drop(columns="caption"))
    with pytest.raises(TypeError, match="DataFrame like the one seen in fit"):
        clf.predict(np.zeros((3, 3)))
    # predicting without the label column is fine
    assert clf.predict(df.drop(columns="label")).shape == (len(df),)


def test_ignored_columns_warn_except_the_label(shapes_df):
    df = shapes_df
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        clf = fast(max_epochs=1).fit(df, df["label"])  # the label inside X, as in the design example
    assert clf.ignored_columns_ == ["label"] and clf.modalities_ == ["image", "text"]
    assert not [m for m in messages(record) if "ignores" in m]

    # detected roles: the price is read, the identifier left out and named in a warning with the reason
    extra = df.assign(sku=[f"A{i}" for i in range(len(df))], price=np.arange(len(df), dtype=float))
    with pytest.warns(UserWarning, match=r"ignores columns of X: 'sku' \(identifier.*columns=") as record:
        clf = fast(max_epochs=1).fit(extra, extra["label"])
    assert sorted(clf.ignored_columns_) == ["label", "sku"]
    assert clf.modalities_ == ["image_path", "caption", "price"] and clf.column_roles_["price"] == "numeric"
    assert all("'label'" not in m for m in messages(record))

    # A label in X that is not this y (here y is derived from it) is a column like any other: read, and said so.
    clf = fast(max_epochs=1).fit(df, df["label"].str.startswith("red"))
    assert clf.column_roles_["label"] == "categorical"

    # Naming both columns reads those two; the others are ignored, and a warning names them.
    with pytest.warns(UserWarning, match=r"ignores the other columns of X: \['sku', 'price'\].*unset"):
        clf = fast(max_epochs=1, image_col="image_path", text_col="caption").fit(extra, extra["label"])
    assert sorted(clf.ignored_columns_) == ["label", "price", "sku"]
