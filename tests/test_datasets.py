"""Tests for skmm.datasets.make_shapes."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from skmm.datasets import COLOURS, SHAPES, make_shapes


def _colour_word(caption):
    words = [word for word in caption.replace(",", " ").split() if word in COLOURS]
    assert len(words) == 1, caption
    return words[0]


def _shape_of(label):
    return label.split("-")[1]


@pytest.fixture
def shapes(tmp_path):
    return make_shapes(40, random_state=0, directory=tmp_path, image_size=24)


def test_columns_types_and_files(shapes, tmp_path):
    assert list(shapes.columns) == ["image_path", "caption", "label"]
    assert len(shapes) == 40
    for column in shapes.columns:
        assert all(isinstance(value, str) for value in shapes[column])
    assert shapes["image_path"].is_unique
    for path in shapes["image_path"]:
        assert os.path.isabs(path)
        assert os.path.dirname(path) == str(tmp_path)
        with Image.open(path) as img:
            assert img.format == "PNG"
            assert img.size == (24, 24)


def test_deterministic_under_random_state(tmp_path):
    first = make_shapes(12, random_state=3, directory=tmp_path / "a")
    first_bytes = [open(p, "rb").read() for p in first["image_path"]]
    second = make_shapes(12, random_state=3, directory=tmp_path / "a")
    assert first.equals(second)
    assert first_bytes == [open(p, "rb").read() for p in second["image_path"]]

    other = make_shapes(12, random_state=4, directory=tmp_path / "b")
    assert not first[["caption", "label"]].equals(other[["caption", "label"]])


def test_default_directory_is_a_fresh_temporary_one():
    frame = make_shapes(4, random_state=0)
    directory = os.path.dirname(frame["image_path"][0])
    try:
        assert os.path.basename(directory).startswith("skmm-shapes-")
        assert all(os.path.exists(p) for p in frame["image_path"])
    finally:
        shutil.rmtree(directory)


@pytest.mark.parametrize("n_classes", [2, 4, 6, 9])
def test_classes_balanced(tmp_path, n_classes):
    frame = make_shapes(37, random_state=0, directory=tmp_path, n_classes=n_classes)
    counts = frame["label"].value_counts()
    assert len(counts) == n_classes
    assert counts.max() - counts.min() <= 1


def test_labels_need_both_modalities(shapes):
    # The caption's colour word leaves at least two labels open ...
    colours = shapes["caption"].map(_colour_word)
    assert (shapes.groupby(colours)["label"].nunique() >= 2).all()
    # ... and so does the shape ...
    drawn = shapes["label"].map(_shape_of)
    assert (shapes.groupby(drawn)["label"].nunique() >= 2).all()
    # ... while together they determine it.
    assert (shapes.groupby([colours, drawn])["label"].nunique() == 1).all()
    # Captions are not one fixed sentence per colour.
    assert shapes["caption"].nunique() > 2 * len(set(colours))


def test_xor_labels_are_chance_for_each_modality(tmp_path):
    frame = make_shapes(40, random_state=1, directory=tmp_path, n_classes=2)
    assert set(frame["label"]) == {"yes", "no"}
    colours = frame["caption"].map(_colour_word)
    for colour in set(colours):
        share = (frame["label"][colours == colour] == "yes").mean()
        assert share == pytest.approx(0.5, abs=0.15)


def test_images_hold_the_shape_and_no_colour(shapes):
    by_shape = {}
    for path, label in zip(shapes["image_path"], shapes["label"]):
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
        # Grey: the colour word is only in the caption.
        assert np.abs(pixels[..., 0] - pixels[..., 2]).max() == 0
        dark = pixels[..., 0] < 150
        by_shape.setdefault(_shape_of(label), []).append(dark.mean())
    assert set(by_shape) <= set(SHAPES)
    # A circle fills pi/4 of its bounding square: less ink on average.
    assert np.mean(by_shape["circle"]) < np.mean(by_shape["square"])


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_classes"):
        make_shapes(10, n_classes=3, directory=tmp_path)
    with pytest.raises(ValueError, match="n_samples"):
        make_shapes(3, n_classes=4, directory=tmp_path)
    with pytest.raises(ValueError, match="image_size"):
        make_shapes(10, image_size=4, directory=tmp_path)
