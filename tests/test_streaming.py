"""ImageEncoder(decode="per_batch"): a trainable image branch decodes each batch in the loaders, not all upfront."""

import numpy as np
import pytest

from skmm import FusionClassifier, ImageEncoder
from skmm.encoders.image import ImageEncoder as _ImageEncoderClass
from skmm.encoders.streaming import LazyImages


def _classifier(decode, **image):
    image = ImageEncoder("cnn", image_size=16, augment="none", decode=decode, backbone_kwargs={"channels": (4, 8)},
                         **image)
    return FusionClassifier(image=image, text="tfidf", dim=8, max_epochs=2, batch_size=8, random_state=0,
                            validation_fraction=0.25)


@pytest.fixture
def small(shapes_df):
    df = shapes_df.iloc[:40].reset_index(drop=True)
    return df[["image_path", "caption"]], df["label"]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_per_batch_decoding_trains_the_same_model_without_decoding_upfront(small, monkeypatch, num_workers):
    X, y = small
    upfront = _classifier("upfront").fit(X, y)
    prepared = []
    original = _ImageEncoderClass._prepare_batch
    monkeypatch.setattr(_ImageEncoderClass, "_prepare_batch",
                        lambda self, batch: prepared.append(batch.n) or original(self, batch))
    lazy = _classifier("per_batch", num_workers=num_workers).fit(X, y)
    assert prepared == []  # no picture was decoded before or for training
    np.testing.assert_allclose(lazy.net_.history[:, "valid_loss"], upfront.net_.history[:, "valid_loss"], rtol=1e-5)
    np.testing.assert_allclose(lazy.predict_proba(X), upfront.predict_proba(X), atol=1e-6)
    assert vars(lazy.net_).get("iterator_valid__num_workers", 0) == 0  # predictions start no loader workers


def test_lazy_images_index_like_an_array(small):
    paths = list(small[0]["image_path"][:6]) + [None]
    images = LazyImages(paths, 8, index=[f"r{i}" for i in range(7)], column="image_path")
    assert images.shape == (7, 3, 8, 8) and len(images) == 7
    pixels, ok = images[2]
    assert ok and pixels.shape == (3, 8, 8) and pixels.dtype.is_floating_point is False
    subset = images[np.array([6, 1])]
    assert len(subset) == 2 and subset[0][1] is False and subset[1][1] is True
    assert list(subset.index) == ["r6", "r1"]


def test_a_missing_file_fails_before_training(small, tmp_path, no_training):
    X, y = small
    X = X.copy()
    X.loc[7, "image_path"] = str(tmp_path / "gone.png")
    with pytest.raises(ValueError, match=r"row 7, column 'image_path'.*gone\.png.*file not found"):
        _classifier("per_batch").fit(X, y)
    assert no_training == []


def test_a_file_damaged_past_its_header(small, bad_files):
    X, y = small
    X = X.copy()
    X.loc[5, "image_path"] = bad_files["truncated"][0]
    with pytest.raises(ValueError, match=r"row 5, column 'image_path'.*truncated\.png"):
        _classifier("per_batch").fit(X, y)  # found by the loader, during training
    clf = _classifier("per_batch", on_error="ignore").fit(X, y)  # that row's picture counts as missing
    assert clf.predict(X).shape == (40,)
