"""ImageEncoder(backend="onnxruntime"): the frozen module exported once, run by ONNX Runtime."""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import skmm  # noqa: E402
from skmm import ImageEncoder  # noqa: E402
from skmm.backbones import onnx as onnx_backend  # noqa: E402

from helpers import cosines, three_epochs  # noqa: E402


def _cnn(**params):
    params = {"random_state": 0, **params}
    return ImageEncoder("cnn", image_size=16, trainable=False, cache=False, backbone_kwargs={"channels": (4, 8)},
                        **params)


def test_onnxruntime_features_match_torch_within_a_cosine(frame, exports):
    X, _ = frame
    paths = X[["image_path"]]
    torch_features = _cnn().fit_transform(paths)
    encoder = _cnn(backend="onnxruntime").fit(paths)
    features = encoder.transform(paths)
    assert exports == [(1, 3, 16, 16)]
    assert features.dtype == np.float32 and features.shape == torch_features.shape
    assert cosines(features, torch_features).min() > 0.9999
    np.testing.assert_allclose(features, torch_features, atol=1e-4, rtol=1e-3)


def test_the_export_is_made_once_per_fingerprint_and_kept_on_disk(frame, exports, tmp_path):
    X, _ = frame
    paths = X[["image_path"]].iloc[:4]
    first = _cnn(backend="onnxruntime", cache_dir=tmp_path).fit(paths).transform(paths)
    _cnn(backend="onnxruntime", cache_dir=tmp_path).fit(paths)  # same weights: the process's copy
    assert len(exports) == 1
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 1
    onnx_backend._EXPORTED.clear()  # a new process: the file on disk
    again = _cnn(backend="onnxruntime", cache_dir=tmp_path).fit(paths).transform(paths)
    assert len(exports) == 1
    np.testing.assert_array_equal(first, again)
    _cnn(backend="onnxruntime", cache_dir=tmp_path, random_state=1).fit(paths)  # other weights: a new export
    assert len(exports) == 2


def test_a_trainable_branch_is_never_exported(frame, exports):
    X, y = frame
    image = ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (4, 8)}, augment="none",
                         backend="onnxruntime")
    three_epochs(image=image, max_epochs=1).fit(X, y)
    assert exports == []


def test_a_classifier_with_an_onnx_encoder_saves_and_loads(frame, exports, tmp_path):
    X, y = frame
    clf = three_epochs(image=_cnn(backend="onnxruntime")).fit(X, y)
    proba = clf.predict_proba(X.iloc[:5])
    skmm.save(clf, tmp_path / "model")
    loaded = skmm.load(tmp_path / "model")
    np.testing.assert_allclose(loaded.predict_proba(X.iloc[:5]), proba, atol=1e-6)
    assert loaded.branches_["image"].encoder.backend == "onnxruntime"


@pytest.mark.parametrize("params", [dict(device="cuda"), dict(precision="bfloat16")])
def test_onnxruntime_refuses_what_it_does_not_run(frame, params, monkeypatch):
    X, _ = frame
    monkeypatch.setattr("skmm.encoders.base.resolve_device", lambda device: "cuda" if device == "cuda" else "cpu")
    with pytest.raises(ValueError, match="backend='onnxruntime' runs float32 on the CPU"):
        _cnn(backend="onnxruntime", **params).fit(X[["image_path"]].iloc[:4])


def test_a_missing_onnxruntime_names_the_extra(monkeypatch):
    def missing(name, extra, *, what):
        raise ImportError(f'{what} requires {name}: pip install "skmm[{extra}]"')

    monkeypatch.setattr("skmm.encoders.image.import_optional", missing)
    with pytest.raises(ImportError, match=r"skmm\[onnx\]"):
        _cnn(backend="onnxruntime").validate_params()


def test_a_random_backbone_is_exported_on_its_first_frozen_transform(frame, exports):
    X, _ = frame
    paths = X[["image_path"]].iloc[:4]
    encoder = ImageEncoder("cnn", image_size=16, random_state=0, cache=False, backbone_kwargs={"channels": (4, 8)},
                           backend="onnxruntime").fit(paths)
    assert exports == []  # trainable inside a classifier: not exported in fit
    features = encoder.transform(paths)
    encoder.transform(paths)
    assert exports == [(1, 3, 16, 16)]
    reference = ImageEncoder("cnn", image_size=16, random_state=0, cache=False,
                             backbone_kwargs={"channels": (4, 8)}).fit(paths).transform(paths)
    assert cosines(features, reference).min() > 0.9999
