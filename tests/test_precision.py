"""precision="auto" | "float32" | "bfloat16": which forward passes run under bf16 autocast.

CPU bf16 autocast works on every x86 CPU (fast with AMX / AVX512-BF16, emulated
elsewhere), so these checks run here the same code a GPU machine runs.
"""

import joblib
import numpy as np
import pytest
import torch

from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.utils.device import autocast, uses_bf16
from skmm.cache import get_cache

from helpers import fast_classifier


def test_uses_bf16_defaults_to_cuda_only():
    assert uses_bf16("cuda", "auto") and uses_bf16("cuda:1", "auto")
    assert not uses_bf16("cpu", "auto")
    assert uses_bf16("cpu", "bfloat16")
    assert not uses_bf16("cuda", "float32")


def test_float32_switches_off_an_enclosing_autocast():
    layer = torch.nn.Linear(4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(torch.ones(1, 4)).dtype == torch.bfloat16
        with autocast("cpu", "float32"):
            assert layer(torch.ones(1, 4)).dtype == torch.float32


@pytest.mark.parametrize(
    "make",
    [
        lambda: ImageEncoder("pixels", precision="fp16"),
        lambda: TextEncoder("tfidf", precision="half"),
    ],
)
def test_encoders_reject_an_unknown_precision(make, shapes_df):
    with pytest.raises(ValueError, match="precision must be one of"):
        make().fit(shapes_df["image_path"])


def test_classifier_rejects_an_unknown_precision_before_training(shapes_df):
    clf = fast_classifier(precision=None)
    with pytest.raises(ValueError, match="precision must be one of"):
        clf.fit(shapes_df, shapes_df["label"])
    assert not hasattr(clf, "net_")


def test_bf16_image_embeddings_are_close_to_float32_and_cached_apart(shapes_df):
    paths = shapes_df["image_path"]
    get_cache(None).clear()
    fp32 = ImageEncoder("cnn", image_size=32, random_state=0).fit(paths)
    bf16 = ImageEncoder("cnn", image_size=32, random_state=0, precision="bfloat16").fit(paths)
    a = fp32.transform(paths)
    b = bf16.transform(paths)  # same backbone and files: a float32 cache entry must not answer it
    assert b.dtype == np.float32
    assert not np.array_equal(a, b)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() > 0.999
    # Each precision is answered from its own entry afterwards.
    np.testing.assert_array_equal(fp32.transform(paths), a)
    np.testing.assert_array_equal(bf16.transform(paths), b)
    assert ImageEncoder("cnn", image_size=32, random_state=0, precision="float32").fit(paths).fingerprint() \
        == fp32.fingerprint()


def test_bf16_runs_conv_backbones_channels_last_on_cpu(shapes_df):
    paths = shapes_df["image_path"][:4]
    bf16 = ImageEncoder("timm:resnet18", image_size=32, precision="bfloat16", random_state=0).fit(paths)
    fp32 = ImageEncoder("timm:resnet18", image_size=32, random_state=0).fit(paths)
    assert bf16.channels_last_ and not fp32.channels_last_
    a, b = fp32.transform(paths), bf16.transform(paths)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() > 0.99


def _linear_output_dtypes(net):
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
             for m in net.module_.modules() if isinstance(m, torch.nn.Linear)]
    return seen, hooks


@pytest.mark.parametrize("precision, dtype", [("auto", torch.float32), ("float32", torch.float32),
                                              ("bfloat16", torch.bfloat16)])
def test_classifier_forward_runs_in_the_requested_precision(shapes_df, precision, dtype):
    clf = fast_classifier(precision=precision, max_epochs=2).fit(shapes_df, shapes_df["label"])
    seen, hooks = _linear_output_dtypes(clf.net_)
    proba = clf.predict_proba(shapes_df)
    for h in hooks:
        h.remove()
    assert seen and set(seen) == {dtype}
    assert np.isfinite(proba).all() and np.allclose(proba.sum(1), 1, atol=1e-5)


def test_classifier_trains_a_cnn_branch_in_bf16(shapes_df, tmp_path):
    # bf16 is emulated on CPUs without AVX512-BF16/AMX (9x float32's time here): small pictures, no augmentation
    kw = dict(image=ImageEncoder("cnn", image_size=16, augment="none"), text="tfidf", max_epochs=8, lr=3e-3,
              random_state=0, device="cpu")
    fp32 = FusionClassifier(**kw).fit(shapes_df, shapes_df["label"])
    bf16 = FusionClassifier(precision="bfloat16", **kw).fit(shapes_df, shapes_df["label"])
    # The classifier's precision reaches encoders left at "auto"; an encoder's own choice wins.
    assert bf16.encoders_["image"].precision == "bfloat16"
    pinned = FusionClassifier(**{**kw, "image": ImageEncoder("cnn", image_size=16, precision="float32"),
                                 "max_epochs": 1}, precision="bfloat16").fit(shapes_df, shapes_df["label"])
    assert pinned.encoders_["image"].precision == "float32"
    # bf16 training takes other steps than float32 but learns as well on this data.
    assert not np.allclose(fp32.predict_proba(shapes_df), bf16.predict_proba(shapes_df))
    assert bf16.score(shapes_df, shapes_df["label"]) >= fp32.score(shapes_df, shapes_df["label"]) - 0.1
    # The setting travels with the saved model.
    joblib.dump(bf16, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    assert loaded.net_.precision == "bfloat16"
    np.testing.assert_allclose(loaded.predict_proba(shapes_df), bf16.predict_proba(shapes_df), atol=1e-6)
