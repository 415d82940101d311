"""TextEncoder(backend="onnxruntime" / "onnxruntime-int8"): a frozen text model run by ONNX Runtime."""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")

import skmm  # noqa: E402
from skmm import TextEncoder  # noqa: E402
from skmm.testing import save_tiny_bert  # noqa: E402

from helpers import cosines, three_epochs  # noqa: E402

TEXTS = ["the red cat", "a big blue dog shoe", "photo", "the small red shirt of a big dog", "", "cat cat cat"]


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("bert"))


def _encoder(bert, **params):
    return TextEncoder(f"hf:{bert}", max_length=12, cache=False, **params)


def test_onnxruntime_text_features_match_torch_on_texts_of_every_length(bert, exports):
    reference = _encoder(bert).fit_transform(TEXTS)
    encoder = _encoder(bert, backend="onnxruntime").fit(TEXTS)
    assert exports == [(1, 2, 12)]  # exported in fit: a pretrained model is frozen
    batch = encoder.transform(TEXTS)
    one_by_one = np.vstack([encoder.transform([t]) for t in TEXTS])  # each cut to its own length
    present = np.array([bool(t) for t in TEXTS])
    for features in (batch, one_by_one):
        assert features.dtype == np.float32 and features.shape == reference.shape
        assert cosines(features[present], reference[present]).min() > 0.9999
        np.testing.assert_allclose(features, reference, atol=1e-4, rtol=1e-3)
    assert exports == [(1, 2, 12)]


def test_int8_text_features_stay_close_and_are_cached_apart(bert, exports):
    reference = TextEncoder(f"hf:{bert}", max_length=12).fit(TEXTS)
    float32 = reference.transform(TEXTS)
    int8 = TextEncoder(f"hf:{bert}", max_length=12, backend="onnxruntime-int8").fit(TEXTS)
    assert int8.fingerprint() == reference.fingerprint() + "|int8"
    features = int8.transform(TEXTS)  # the cache holds float32's features: not answered from it
    present = np.array([bool(t) for t in TEXTS])
    cos = cosines(features[present], float32[present])
    assert cos.min() > 0.98
    assert not np.allclose(features, float32, atol=1e-6)  # int8 weights, not the float32 model
    assert len(exports) == 1


def test_a_classifier_with_onnx_text_saves_and_loads(frame, bert, exports, tmp_path):
    X, y = frame
    text = TextEncoder(f"hf:{bert}", max_length=12, backend="onnxruntime")
    clf = three_epochs(text=text).fit(X, y)
    proba = clf.predict_proba(X.iloc[:5])
    skmm.save(clf, tmp_path / "model")
    loaded = skmm.load(tmp_path / "model")
    np.testing.assert_allclose(loaded.predict_proba(X.iloc[:5]), proba, atol=1e-6)
    assert loaded.branches_["text"].encoder.backend == "onnxruntime"


def test_the_image_encoder_refuses_int8():
    with pytest.raises(ValueError, match=r"backend must be one of \['torch', 'onnxruntime'\]"):
        skmm.ImageEncoder("cnn", backend="onnxruntime-int8").validate_params()


def test_a_module_onnx_cannot_export_is_a_clear_error_in_fit():
    # skmm's GRU runs over packed sequences, which torch.onnx's TorchScript exporter does not take
    encoder = TextEncoder("gru", dim=8, max_length=6, trainable=False, random_state=0, backend="onnxruntime")
    with pytest.raises(ValueError, match=r"backend='onnxruntime': TextEncoder\(backbone='gru'\) could not be exported"):
        encoder.fit(TEXTS)


def test_a_sentence_transformer_and_an_embedding_bag_export(tmp_path, exports):
    from skmm.testing import save_tiny_sentence_transformer

    st = save_tiny_sentence_transformer(tmp_path / "st")
    for backbone, params in ((f"st:{st}", {}), ("embedding-bag", dict(dim=8, max_length=6, trainable=False))):
        reference = TextEncoder(backbone, cache=False, random_state=0, **params).fit_transform(TEXTS)
        encoder = TextEncoder(backbone, cache=False, random_state=0, backend="onnxruntime", **params).fit(TEXTS)
        np.testing.assert_allclose(encoder.transform(TEXTS), reference, atol=1e-5)
        np.testing.assert_allclose(np.vstack([encoder.transform([t]) for t in TEXTS]), reference, atol=1e-5)
    assert len(exports) == 2
