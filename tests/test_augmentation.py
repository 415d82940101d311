"""ImageEncoder(augment=...): train-time augmentation of trainable image branches.

What is checked is the mechanism: which batches are transformed (training only, new
transforms every epoch), the seeding, and when augmentation is off.
"""

import sys
import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skmm import FusionClassifier, ImageEncoder
from skmm.encoders.augmentation import ImageAugmentation, check_augment
from skmm.fusion.training import AugmentingCollate

pytest.importorskip("torchvision")


class BatchRecorder(Callback):
    """The image inputs of every batch the net sees in fit: one set per epoch, and the validation ones."""

    def __init__(self):
        self.train, self.valid = [], set()

    def on_epoch_begin(self, net, **kwargs):
        self.train.append(set())

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        images = {np.asarray(img).tobytes() for img in batch[0]["image"]}
        (self.train[-1] if training else self.valid).update(images)


def _clf(augment="auto", callbacks=None, num_workers=0, **params):
    image = ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (4, 8)}, augment=augment,
                         num_workers=num_workers)
    # blend=None: every row is in the training batches (blend="auto" would keep a fifth of them out of the net)
    defaults = dict(image=image, text="tfidf", max_epochs=2, dim=8, hidden_dim=8, batch_size=32,
                    random_state=0, device="cpu", callbacks=callbacks, blend=None)
    return FusionClassifier(**{**defaults, **params})


def _prepared(clf, X):
    return {img.tobytes() for img in clf.model_inputs(X)["image"]}


def test_training_batches_are_new_every_epoch_while_validation_and_predict_inputs_are_not(frame):
    X, y = frame
    recorder = BatchRecorder()
    clf = _clf("light", callbacks=[recorder], validation_fraction=0.25).fit(X, y)
    prepared = _prepared(clf, X)
    first, second = recorder.train
    # training pictures: transformed (almost none equal a prepared picture), differently each epoch
    assert len(first & prepared) < len(first) / 4
    assert len(first & second) < len(first) / 4
    # held-out rows are scored on the pictures as prepared, every epoch
    assert recorder.valid and recorder.valid <= prepared
    # predictions: the prepared pictures, the same on every call
    seen = []
    hook = clf.net_.module_.encoders["image"].register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    proba = clf.predict_proba(X)
    hook.remove()
    assert {np.asarray(img).tobytes() for batch in seen for img in batch} == prepared
    np.testing.assert_array_equal(proba, clf.predict_proba(X))


def test_without_augmentation_training_batches_are_the_prepared_pictures(frame):
    X, y = frame
    recorder = BatchRecorder()
    clf = _clf("none", callbacks=[recorder]).fit(X, y)
    assert "iterator_train__collate_fn" not in clf.net_.get_params()
    assert recorder.train[0] == recorder.train[1] == _prepared(clf, X)


@pytest.mark.parametrize("num_workers", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_equal_seeds_give_equal_models(frame, num_workers):
    X, y = frame
    fits = [_clf("strong", num_workers=num_workers, random_state=seed).fit(X, y) for seed in (3, 3, 4)]
    states = [f.net_.module_.state_dict() for f in fits]
    for key in states[0]:
        torch.testing.assert_close(states[0][key], states[1][key])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))


def test_auto_augments_trainable_from_scratch_branches_only(frame):
    X, y = frame
    cnn = ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (4, 8)}).fit(X["image_path"])
    branch = cnn.as_branch()
    assert isinstance(branch.augment, ImageAugmentation) and branch.augment.transform == "light+photometric"
    frozen = ImageEncoder("cnn", image_size=16, trainable=False, backbone_kwargs={"channels": (4, 8)})
    assert frozen.fit(X["image_path"]).as_branch().augment is None  # it gets views instead (test_views.py)
    assert ImageEncoder("pixels", image_size=8).fit(X["image_path"]).as_branch().augment is None
    clf = _clf(image=ImageEncoder("pixels", image_size=8)).fit(X, y)
    assert "iterator_train__collate_fn" not in clf.net_.get_params()


def test_frozen_encoders_never_augment_in_the_loader_but_train_on_views(frame):
    X, y = frame
    clf = _clf(image=ImageEncoder("cnn", image_size=16, trainable=False, augment="strong",
                                  backbone_kwargs={"channels": (4, 8)}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.fit(X, y)
    assert "iterator_train__collate_fn" not in clf.net_.get_params()
    assert clf.branches_["image"].views.transform == "strong"  # encoded once (tests/test_views.py)


def test_standalone_transform_never_augments(frame):
    X, _ = frame
    paths = X["image_path"]
    plain = ImageEncoder("cnn", image_size=16, augment="none", random_state=0, cache=False).fit_transform(paths)
    asked = ImageEncoder("cnn", image_size=16, augment="strong", random_state=0, cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(asked.fit_transform(paths), plain)
        np.testing.assert_array_equal(asked.transform(paths), plain)


def test_a_transform_object_is_applied_to_each_training_picture(frame):
    X, y = frame
    recorder = BatchRecorder()
    clf = _clf(lambda img: img.flip(-1), callbacks=[recorder], max_epochs=1).fit(X, y)
    flipped = {img[..., ::-1].tobytes() for img in clf.model_inputs(X)["image"]}
    assert recorder.train[0] == flipped


def test_a_transform_that_changes_the_picture_shape_is_an_error_naming_augment(frame):
    X, y = frame
    with pytest.raises(ValueError, match="augment must map a torch.uint8 image tensor"):
        _clf(lambda img: img[:, :8], max_epochs=1).fit(X, y)


def test_missing_pictures_are_left_alone():
    images = torch.zeros(3, 3, 4, 4, dtype=torch.uint8)
    out = ImageAugmentation(lambda img: img + 1)(images, torch.tensor([True, False, True]))
    assert out[:, 0, 0, 0].tolist() == [1, 0, 1]
    assert images.sum() == 0  # the batch given is not changed in place


def test_the_collate_function_augments_only_the_named_inputs():
    rows = [({"image": np.zeros((3, 2, 2), np.uint8), "text": np.zeros(2, np.float32)}, 0) for _ in range(2)]
    X, y = AugmentingCollate({"image": ImageAugmentation(lambda img: img + 7)})(rows)
    assert X["image"].unique().tolist() == [7] and X["text"].unique().tolist() == [0.0]
    assert y.tolist() == [0, 0]


def test_augmented_models_pickle_without_their_torchvision_transform(frame):
    import pickle

    X, y = frame
    clf = _clf("light").fit(X, y)
    augment = clf.net_.get_params()["iterator_train__collate_fn"].augment["image"]
    assert augment._built is not None
    assert pickle.loads(pickle.dumps(augment))._built is None
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X), clf.predict_proba(X))


def test_without_torchvision_auto_is_off_and_a_preset_is_an_import_error(frame, monkeypatch):
    X, y = frame
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.delitem(sys.modules, "torchvision.transforms.v2", raising=False)
    monkeypatch.delitem(sys.modules, "torchvision.transforms", raising=False)
    assert check_augment("auto") == "auto" and check_augment("light") == "light"  # a saved model still loads
    cnn = ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (4, 8)}).fit(X["image_path"])
    assert cnn.as_branch().augment is None
    work = []
    monkeypatch.setattr("skmm.encoders.image.load_images_parallel", lambda *a, **k: work.append("load"))
    with pytest.raises(ImportError, match=r'augment=\'light\' requires torchvision: pip install "skmm\[vision\]"'):
        _clf("light").fit(X, y)
    assert work == []  # before any picture is decoded
