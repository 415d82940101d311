"""Torch threads while a FusionClassifier trains (skmm.utils.threads; measured in benchmarks/attention.py)."""

import pytest
import torch
from skorch.callbacks import Callback

from skmm import ImageEncoder
from skmm.utils.threads import torch_threads, training_threads

from helpers import three_epochs


class ThreadsSeen(Callback):
    def __init__(self):
        self.seen = set()

    def on_batch_begin(self, net, **kwargs):
        self.seen.add(torch.get_num_threads())


@pytest.fixture
def four_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    yield
    torch.set_num_threads(before)


def test_a_head_on_features_trains_on_one_thread_and_the_setting_comes_back(frame, four_threads):
    X, y = frame
    spy = ThreadsSeen()
    clf = three_epochs(callbacks=[spy], fusion="attention").fit(X, y)
    assert spy.seen == {1}
    assert torch.get_num_threads() == 4
    clf.predict(X)
    assert torch.get_num_threads() == 4


def test_a_trainable_branch_keeps_torch_threads_without_loader_workers(frame, four_threads):
    X, y = frame
    spy = ThreadsSeen()
    image = ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (4, 8)}, augment="none")
    three_epochs(image=image, callbacks=[spy], max_epochs=1).fit(X, y)
    assert spy.seen == {4}


def test_augmentation_workers_leave_the_training_threads_the_other_cores(frame, four_threads, monkeypatch):
    pytest.importorskip("torchvision")
    monkeypatch.setattr("skmm.estimators.base.available_cores", lambda: 3)
    X, y = frame
    spy = ThreadsSeen()
    image = ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (4, 8)}, augment="light", num_workers=2)
    three_epochs(image=image, callbacks=[spy], max_epochs=1).fit(X, y)
    assert spy.seen == {1}
    assert torch.get_num_threads() == 4


def test_the_setting_comes_back_when_training_fails(frame, four_threads, monkeypatch):
    X, y = frame

    def boom(*args, **kwargs):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")

    monkeypatch.setattr("skorch.NeuralNetClassifier.fit", boom)
    with pytest.raises(RuntimeError, match="boom"):
        three_epochs().fit(X, y)
    assert torch.get_num_threads() == 4


@pytest.mark.parametrize(
    "trainable, workers, cores, expected",
    [(False, 0, 16, 1), (False, 4, 16, 1), (True, 0, 16, None), (True, 4, 16, 12), (True, 2, 2, 1), (True, 4, 2, 1)],
)
def test_training_threads_rule(trainable, workers, cores, expected):
    assert training_threads(trainable=trainable, loader_workers=workers, cores=cores) == expected


def test_torch_threads_never_raises_the_count(four_threads):
    with torch_threads(8) as n:
        assert n == 4 == torch.get_num_threads()
    with torch_threads(None):
        assert torch.get_num_threads() == 4
