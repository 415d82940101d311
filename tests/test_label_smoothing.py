"""FusionClassifier(label_smoothing=...): the criterion and the uni-modal auxiliary losses are smoothed."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import three_epochs


def _loss_of_a_fixed_batch(clf, X, y):
    """The fitted net's training loss on the first 16 rows (dropout off), and its parts."""
    net = clf.net_
    inputs = {k: torch.as_tensor(v[:16]) for k, v in clf.model_inputs(X).items()}
    target = torch.as_tensor(np.searchsorted(clf.classes_, np.asarray(y)[:16]))
    net.module_.train()
    for m in net.module_.modules():  # training-mode outputs, without randomness
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    with torch.no_grad():
        out = net.infer(inputs)
        loss = net.get_loss(out, target, training=True)
    return loss, out, target


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_the_loss_is_torch_cross_entropy_with_label_smoothing(frame, smoothing):
    X, y = frame
    clf = three_epochs(label_smoothing=smoothing, unimodal_loss=0.0).fit(X, y)
    assert clf.net_.criterion_.label_smoothing == smoothing
    loss, logits, target = _loss_of_a_fixed_batch(clf, X, y)
    torch.testing.assert_close(loss, F.cross_entropy(logits, target, label_smoothing=smoothing))


def test_smoothing_changes_the_loss(frame):
    X, y = frame
    clf = three_epochs(unimodal_loss=0.0, modality_dropout=0.0).fit(X, y)
    loss, logits, target = _loss_of_a_fixed_batch(clf, X, y)
    clf.net_.criterion_.label_smoothing = 0.3
    smoothed, _, _ = _loss_of_a_fixed_batch(clf, X, y)
    assert not torch.allclose(loss, smoothed)
    torch.testing.assert_close(smoothed, F.cross_entropy(logits, target, label_smoothing=0.3))


def test_auxiliary_losses_use_the_same_smoothing_and_class_weights(frame):
    X, y = frame
    weights = {"red-circle": 2.0, "blue-square": 0.5}
    clf = three_epochs(label_smoothing=0.1, unimodal_loss=0.7, modality_dropout=0.0, class_weight=weights).fit(X, y)
    loss, (logits, per, mask), target = _loss_of_a_fixed_batch(clf, X, y)
    w = torch.tensor([weights.get(c, 1.0) for c in clf.classes_], dtype=torch.float32)
    fused = F.cross_entropy(logits, target, weight=w, label_smoothing=0.1)
    aux = [F.cross_entropy(per[:, m], target, weight=w, label_smoothing=0.1) for m in range(per.shape[1])]
    assert mask.all()
    torch.testing.assert_close(loss, fused + 0.7 * torch.stack(aux).mean())


def test_label_smoothing_is_a_searchable_parameter(frame):
    X, y = frame
    clf = three_epochs(label_smoothing=0.1)
    assert clf.get_params()["label_smoothing"] == 0.1
    assert clf.set_params(label_smoothing=0.05).fit(X, y).net_.criterion_.label_smoothing == 0.05
