"""Frozen training features past SKMM_SPILL_BYTES go to a file read per batch (skmm.encoders.spill)."""

import gc
import pickle

import numpy as np
import pytest

import skmm.encoders.spill as spill
from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.cache import get_cache


def _classifier():
    image = ImageEncoder("cnn", image_size=16, augment="none", decode="per_batch",
                         backbone_kwargs={"channels": (4, 8)})
    return FusionClassifier(image=image, text=TextEncoder("tfidf"), dim=8, max_epochs=2, batch_size=8,
                            random_state=0, validation_fraction=0.25, calibration="temperature")


@pytest.fixture
def small(shapes_df):
    df = shapes_df.iloc[:40].reset_index(drop=True)
    return df[["image_path", "caption"]], df["label"]


@pytest.fixture
def files(tmp_path, monkeypatch):
    """The feature files fits make, in their own temporary directory."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(spill.tempfile, "tempdir", str(directory))
    made = []
    original = spill.FeatureFile.__init__

    def init(self, path, *args, **kwargs):
        made.append(path)
        original(self, path, *args, **kwargs)

    monkeypatch.setattr(spill.FeatureFile, "__init__", init)
    return directory, made


@pytest.mark.slow  # two fits
def test_features_read_from_a_file_train_the_same_model(small, files, monkeypatch):
    X, y = small
    directory, made = files
    in_memory = _classifier().fit(X, y)
    assert made == []  # 40 rows of tfidf are far below the default 64 MiB
    memory = get_cache(None)
    monkeypatch.setenv("SKMM_SPILL_BYTES", "0")
    memory.reset_stats()
    spilled = _classifier().fit(X, y)
    assert memory.misses == 0  # the spilled text rows did not go through the memory cache
    assert len(made) == 1 and made[0].startswith(str(directory))
    np.testing.assert_allclose(spilled.net_.history[:, "valid_loss"], in_memory.net_.history[:, "valid_loss"],
                               rtol=1e-5)
    np.testing.assert_allclose(spilled.predict_proba(X), in_memory.predict_proba(X), atol=1e-6)
    assert spilled.temperature_ == pytest.approx(in_memory.temperature_)  # calibrated on rows read from the file
    gc.collect()
    assert list(directory.glob("skmm-features-*")) == []  # the file is gone with the fit


def test_a_bad_spill_setting_is_an_error_naming_it_before_training(small, monkeypatch, no_training):
    X, y = small
    monkeypatch.setenv("SKMM_SPILL_BYTES", "lots")
    with pytest.raises(ValueError, match="SKMM_SPILL_BYTES"):
        _classifier().fit(X, y)
    assert no_training == []


def test_feature_file_indexes_like_an_array(tmp_path):
    rows = np.arange(30, dtype=np.float32).reshape(10, 3)
    path = tmp_path / "f.f32"
    path.write_bytes(rows.tobytes())
    features = spill.FeatureFile(str(path), 10, 3, owner=True)
    assert features.shape == (10, 3) and len(features) == 10
    np.testing.assert_array_equal(features[4], rows[4])
    assert features[4].flags.writeable
    part = features[np.array([7, 2, 5])]
    np.testing.assert_array_equal(np.asarray(part), rows[[7, 2, 5]])
    np.testing.assert_array_equal(part[1:][1], rows[5])
    copy = pickle.loads(pickle.dumps(part))  # a loader worker started by spawn
    np.testing.assert_array_equal(np.asarray(copy), rows[[7, 2, 5]])
    del features, copy
    gc.collect()
    assert path.exists()  # a view keeps the owner's file
    del part
    gc.collect()
    assert not path.exists()
