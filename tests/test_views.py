"""Augmented training views of frozen image features (skmm/estimators/views.py).

Checked: the network trains on every row twice (plain picture features and a
transformed view's, the other inputs equal), predicts from plain features only,
the views are seeded and cached, and where they are left out.
"""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skmm import FusionClassifier, ImageEncoder
from skmm.encoders.augmentation import ImageAugmentation, preset_transform

pytest.importorskip("torchvision")


class RowRecorder(Callback):
    """The (image features, text inputs) rows of every training batch of the first epoch."""

    def __init__(self):
        self.rows = []

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training and len(net.history) == 1:
            X = batch[0]
            self.rows += list(zip(np.asarray(X["image"]), np.asarray(X["text"])))


def _frozen(augment="auto", **params):
    return ImageEncoder("cnn", image_size=16, trainable=False, random_state=0, augment=augment,
                        backbone_kwargs={"channels": (4, 8)}, **params)


def _clf(image, **params):
    defaults = dict(image=image, text="tfidf", max_epochs=1, dim=8, hidden_dim=8, batch_size=32,
                    random_state=0, device="cpu", stacking=None)
    return FusionClassifier(**{**defaults, **params})


def test_auto_gives_frozen_image_branches_photometric_views_and_trainable_ones_none(frame):
    X, _ = frame
    frozen = _frozen().fit(X["image_path"]).as_branch()
    assert isinstance(frozen.views, ImageAugmentation) and frozen.views.transform == "photometric"
    assert frozen.augment is None  # no loader augmentation: the features are computed once
    trainable = ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (4, 8)}).fit(X["image_path"])
    assert trainable.as_branch().views is None
    assert _frozen(None).fit(X["image_path"]).as_branch().views is None
    assert _frozen("none").fit(X["image_path"]).as_branch().views is None
    assert ImageEncoder("pixels", image_size=8).fit(X["image_path"]).as_branch().views is None  # raw pixels: off


def test_the_network_trains_on_a_mix_of_plain_and_augmented_features_and_predicts_from_plain_ones(frame):
    X, y = frame
    recorder = RowRecorder()
    clf = _clf(_frozen(), callbacks=[recorder]).fit(X, y)
    plain = clf.model_inputs(X)
    np.testing.assert_array_equal(plain["image"], clf.encoders_["image"].transform(X["image_path"]))
    plain_rows = {(img.tobytes(), txt.tobytes()) for img, txt in zip(plain["image"], plain["text"])}
    seen = [(img.tobytes(), txt.tobytes()) for img, txt in recorder.rows]
    # as many rows as without views, each text once; about half read their picture through a transformed view
    assert len(seen) == len(X)
    assert sorted(t for _, t in seen) == sorted(t for _, t in plain_rows)
    views = [row for row in seen if row not in plain_rows]
    assert len(X) / 4 < len(views) < 3 * len(X) / 4
    assert not {i for i, _ in views} & {i for i, _ in plain_rows}
    # and the trained net is the one the plain rows alone would not give
    alone = _clf(_frozen(None)).fit(X, y)
    assert not np.allclose(alone.predict_proba(X), clf.predict_proba(X))


def test_views_are_seeded_and_cached(frame, tmp_path, monkeypatch):
    X, _ = frame
    enc = _frozen(cache_dir=tmp_path).fit(X[["image_path"]])
    views = enc.as_branch().views
    first, present = enc.augmented_features(X[["image_path"]], views, seed=3)
    assert present.all() and first.shape == (len(X), enc.transform(X[["image_path"]]).shape[1])
    assert not np.allclose(first, enc.transform(X[["image_path"]]))
    calls = []
    monkeypatch.setattr(type(enc), "_forward", lambda self, x: calls.append(1) or np.zeros((len(x), first.shape[1])))
    again, _ = enc.augmented_features(X[["image_path"]], views, seed=3)
    np.testing.assert_array_equal(again, first)
    assert calls == []  # read from the cache
    other, _ = enc.augmented_features(X[["image_path"]], views, seed=4)
    assert calls  # another seed is another set of views


def test_missing_pictures_stay_missing_in_the_views(frame):
    X, y = frame
    X = X.copy()
    X.iloc[:3, X.columns.get_loc("image_path")] = None
    enc = _frozen(on_error="warn").fit(X[["image_path"]])
    feats, present = enc.augmented_features(X[["image_path"]], enc.as_branch().views)
    assert present.tolist() == [False] * 3 + [True] * (len(X) - 3)
    assert not feats[:3].any()


def test_views_are_left_out_with_a_validation_split_with_a_warning_when_asked_for(frame):
    X, y = frame
    recorder = RowRecorder()
    with pytest.warns(UserWarning, match=r"augmented views of image column\(s\) \['image'\] are not used: "
                                         "validation_fraction"):
        _clf(_frozen("photometric"), callbacks=[recorder], validation_fraction=0.25).fit(X, y)
    assert len(recorder.rows) == len(X) - len(X) // 4


@pytest.mark.parametrize("preset", ["photometric", "light+photometric", "strong+photometric"])
def test_the_photometric_presets_keep_shape_and_dtype_and_change_pictures(preset):
    torch.manual_seed(0)
    transform = preset_transform(preset, 16)
    img = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
    outs = [transform(img) for _ in range(20)]
    assert all(o.shape == img.shape and o.dtype == torch.uint8 for o in outs)
    assert sum(not torch.equal(o, img) for o in outs) >= 10


def test_a_text_only_ablation_trains_as_without_views(frame):
    X, y = frame
    recorder = RowRecorder()
    clf = _clf(_frozen(), fusion="text", callbacks=[recorder]).fit(X, y)
    plain = {img.tobytes() for img in clf.model_inputs(X)["image"]}
    assert len(recorder.rows) == len(X) and {img.tobytes() for img, _ in recorder.rows} <= plain
