"""The input layout (skmm/io/frame.py): which columns are which modality, decided at fit."""

import pathlib

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

from skmm import FusionClassifier
from skmm.io.frame import InputLayout, modality_role


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
