"""ImageEncoder and TextEncoder as scikit-learn transformers."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.compose import make_column_transformer
from sklearn.exceptions import NotFittedError

from skmm import ImageEncoder, TextEncoder

from helpers import fast_classifier


@pytest.fixture
def image_paths(tmp_path):
    paths = []
    for i, colour in enumerate(["red", "green", "blue", "white", "black"]):
        path = tmp_path / f"im{i}.png"
        Image.new("RGB", (20 + 3 * i, 16), colour).save(path)
        paths.append(str(path))
    return paths


TEXTS = ["a red ball", "a green box", "the blue sky", "white snow", "black cat"]


@pytest.mark.parametrize("make_input", [list, pd.Series, np.array, lambda v: pd.DataFrame({"col": v})])
def test_image_encoder_accepts_column_like_inputs(image_paths, make_input):
    enc = ImageEncoder("pixels", image_size=4, resize="stretch").fit(make_input(image_paths))
    out = enc.transform(make_input(image_paths))
    assert out.dtype == np.float32 and out.shape == (5, 48)
    # pixel values are the colours: red image -> first channel 1, others 0
    red = out[0].reshape(3, 4, 4)
    assert red[0].min() > 0.9 and red[1:].max() < 0.1


def test_pad_letterboxes_on_white(image_paths):
    out = ImageEncoder("pixels", image_size=4).fit_transform(image_paths[:1]).reshape(3, 4, 4)
    assert (out[:, -1, :] == 1).all()  # 20x16 red picture: the bottom row is white padding
    assert out[0].min() == 1 and out[1:, 1, :].max() < 0.1


@pytest.mark.parametrize("make_input", [list, pd.Series, np.array, lambda v: pd.DataFrame({"col": v})])
def test_text_encoder_accepts_column_like_inputs(make_input):
    out = TextEncoder("tfidf").fit_transform(make_input(TEXTS))
    assert out.dtype == np.float32 and out.shape[0] == 5


@pytest.mark.parametrize("backbone", ["cnn", "pixels"])
def test_image_encoder_feature_names_and_pandas_output(image_paths, backbone):
    enc = ImageEncoder(backbone, image_size=8, random_state=0)
    out = enc.fit_transform(image_paths)
    names = enc.get_feature_names_out()
    assert len(names) == out.shape[1] and names[0] == "imageencoder0"
    frame = clone(enc).set_output(transform="pandas").fit_transform(pd.Series(image_paths, name="img"))
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == list(names)


@pytest.mark.parametrize("backbone", ["tfidf", "hashing", "embedding-bag", "gru", "lstm"])
def test_text_encoder_backbones(backbone):
    enc = TextEncoder(backbone, dim=8, random_state=0, backbone_kwargs={"n_features": 64} if backbone == "hashing" else None)
    out = enc.fit_transform(TEXTS)
    assert out.dtype == np.float32 and out.shape[0] == 5
    assert len(enc.get_feature_names_out()) == out.shape[1]
    np.testing.assert_allclose(out, enc.transform(TEXTS), atol=1e-6)


def test_tfidf_svd_components():
    out = TextEncoder("tfidf", n_components=3, random_state=0).fit_transform(TEXTS * 3)
    assert out.shape == (15, 3)


def test_cnn_is_deterministic_under_random_state(image_paths):
    a = ImageEncoder("cnn", image_size=16, random_state=3).fit_transform(image_paths)
    b = ImageEncoder("cnn", image_size=16, random_state=3).fit_transform(image_paths)
    c = ImageEncoder("cnn", image_size=16, random_state=4).fit_transform(image_paths)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_get_set_params_and_clone():
    enc = ImageEncoder("cnn", image_size=32, backbone_kwargs={"channels": (8,)})
    assert enc.get_params()["image_size"] == 32
    enc.set_params(image_size=16, backbone="pixels")
    twin = clone(enc)
    assert twin.get_params() == enc.get_params() and twin is not enc


def test_transform_before_fit_raises(image_paths):
    with pytest.raises(NotFittedError):
        ImageEncoder().transform(image_paths)
    with pytest.raises(NotFittedError):
        TextEncoder().transform(TEXTS)


def test_unknown_backbone_lists_known_names():
    with pytest.raises(ValueError, match=r"unknown image backbone 'resnet'; known: .*'cnn'.*'pixels'"):
        ImageEncoder("resnet").fit(["x.png"])
    with pytest.raises(ValueError, match=r"unknown text backbone 'bert'; known: .*'gru'"):
        TextEncoder("bert").fit(TEXTS)


def test_text_encoder_refuses_a_single_string():
    # Bad parameter values (on_error, trainable, batch_size, ...): tests/test_params.py.
    with pytest.raises(TypeError, match="single string"):
        TextEncoder().fit("just one string")


def test_image_encoder_wants_columns_of_paths(image_paths):
    # several path columns are one feature block each (tests/test_wide.py); a column of numbers among them is an error
    df = pd.DataFrame({"a": image_paths, "b": np.arange(len(image_paths))})
    with pytest.raises(ValueError, match=r"column 'b' of X holds no strings or paths, unlike \['a'\]"):
        ImageEncoder().fit(df)


def test_image_arrays_are_images():
    rng = np.random.RandomState(0)
    digits = rng.randint(0, 16, size=(6, 64)).astype(float)  # like sklearn's 8x8 digits
    out = ImageEncoder("pixels", image_size=8).fit_transform(digits)
    assert out.shape == (6, 192)
    rgb = rng.randint(0, 255, size=(4, 10, 10, 3)).astype(np.uint8)
    assert ImageEncoder("pixels", image_size=10).fit_transform(rgb).shape == (4, 300)
    np.testing.assert_allclose(
        ImageEncoder("pixels", image_size=10).fit_transform(rgb)[0].reshape(3, 10, 10), rgb[0].transpose(2, 0, 1) / 255,
        atol=1e-6,
    )


def test_very_long_text_is_truncated_to_max_length(frame):
    X, y = frame
    words = [f"w{i % 500}" for i in range(10_000)]
    long = X.copy()
    long.loc["p4", "caption"] = " ".join(words)

    encoder = TextEncoder("gru", max_length=16, dim=8, random_state=0).fit(long["caption"])
    ids = encoder.prepare(long["caption"])[0]
    assert ids.shape == (len(X), 16)
    np.testing.assert_array_equal(ids[4], encoder.prepare([" ".join(words[:16])])[0][0])  # the first 16 tokens
    np.testing.assert_array_equal(ids[4], encoder.prepare([" ".join(words[:16] + ["zzz"] * 50)])[0][0])

    # Vectorizers count words rather than read a sequence: nothing to truncate, and it works.
    assert np.isfinite(TextEncoder("tfidf").fit_transform(long["caption"])).all()

    clf = fast_classifier(text=TextEncoder("gru", max_length=16, dim=8), max_epochs=2).fit(long, y)
    assert clf.predict(long).shape == (len(X),)


def test_several_text_columns_make_one_document():
    df = pd.DataFrame({"title": ["red", "blue"], "body": ["ball", None]})
    enc = TextEncoder("tfidf").fit(df)
    assert enc.n_features_in_ == 2 and list(enc.feature_names_in_) == ["title", "body"]
    vocab = enc.backbone_.vectorizer.vocabulary_
    assert set(vocab) == {"red", "ball", "blue"}


def test_column_transformer_with_both_encoders(image_paths):
    df = pd.DataFrame({"img": image_paths, "txt": TEXTS})
    ct = make_column_transformer((ImageEncoder("pixels", image_size=4), "img"), (TextEncoder("tfidf"), "txt"))
    out = ct.set_output(transform="pandas").fit_transform(df)
    assert out.shape[0] == 5
    assert all(c.startswith(("imageencoder__", "textencoder__")) for c in out.columns)


def test_encoder_pickles_and_gives_same_features(image_paths, tmp_path):
    import joblib

    enc = ImageEncoder("cnn", image_size=16, random_state=0).fit(image_paths)
    joblib.dump(enc, tmp_path / "enc.joblib")
    loaded = joblib.load(tmp_path / "enc.joblib")
    np.testing.assert_allclose(loaded.transform(image_paths), enc.transform(image_paths), atol=1e-6)
