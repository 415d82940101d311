"""Uni-modal auxiliary losses: FusionNet's per-modality outputs and FusionClassifier(unimodal_loss=...).

How modality_dropout hides rows from these losses: tests/test_missing_inputs.py.
"""

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import EpochScoring
from torch import nn

from skmm import FusionClassifier, ImageEncoder
from skmm.fusion.net import FusionNet
from skmm.registry import fusions

from helpers import fast_classifier

N_CLASSES = 3


def net(fusion="concat", unimodal_loss=1.0, modalities=("image", "text"), **kwargs):
    branches = {name: (None, 6) for name in modalities}
    return FusionNet(branches, N_CLASSES, fusion=fusion, dim=8, hidden_dim=8, dropout=0.0,
                     unimodal_loss=unimodal_loss, **kwargs)


def batch(n=7, modalities=("image", "text"), missing=None):
    g = torch.Generator().manual_seed(0)
    inputs = {name: torch.randn(n, 6, generator=g) for name in modalities}
    for name, rows in (missing or {}).items():
        mask = torch.ones(n, dtype=torch.bool)
        mask[rows] = False
        inputs[f"{name}_mask"] = mask
    return inputs


@pytest.mark.parametrize("fusion", ["concat", "gated", "late", "film"])
def test_training_forward_returns_per_modality_logits(fusion):
    module = net(fusion).train()
    logits, per, mask = module(**batch(missing={"text": [1, 4]}))
    assert logits.shape == (7, N_CLASSES)
    assert per.shape == (7, 2, N_CLASSES)
    assert mask.dtype == torch.bool and mask.shape == (7, 2)
    assert mask[:, 0].all()  # every row has its image
    assert mask[:, 1].tolist() == [True, False, True, True, False, True, True]  # the missing texts are left out
    # evaluation mode: the fused logits alone, equal to the training-mode ones (no dropout here)
    out = module.eval()(**batch(missing={"text": [1, 4]}))
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out, logits)


def test_late_fusion_supervises_its_own_heads():
    module = net("late").train()
    assert module.unimodal_heads is None  # no extra heads: late's per-modality heads are the ones supervised
    inputs = batch()
    logits, per, _ = module(**inputs)
    zs = module.embed(**inputs)
    torch.testing.assert_close(per[:, 1], module.fusion.heads[1](zs[1]))
    torch.testing.assert_close(logits, module.fusion.combine(per))


def test_other_fusions_get_auxiliary_heads_on_the_projected_embeddings():
    module = net("concat").train()
    assert len(module.unimodal_heads) == 2
    inputs = batch()
    _, per, _ = module(**inputs)
    zs = module.embed(**inputs)
    torch.testing.assert_close(per[:, 0], module.unimodal_heads[0](zs[0]))


@pytest.mark.parametrize("fusion, unimodal_loss", [("concat", 0.0), ("image", 1.0), ("text", 1.0)])
def test_no_auxiliary_outputs_without_weight_or_for_ablations(fusion, unimodal_loss):
    module = net(fusion, unimodal_loss).train()
    assert module.unimodal == [] and module.unimodal_heads is None
    assert isinstance(module(**batch()), torch.Tensor)


@pytest.fixture(scope="module")
def fitted(shapes_df):
    first = sorted(shapes_df["label"].unique())[0]
    return fast_classifier(fusion="concat", unimodal_loss=0.5, class_weight={first: 3.0}, max_epochs=2).fit(
        shapes_df, shapes_df["label"]
    )


def test_loss_adds_the_weighted_mean_of_the_per_modality_losses(fitted):
    net_ = fitted.net_
    assert net_.module_.unimodal_loss == 0.5
    g = torch.Generator().manual_seed(1)
    n, c = 10, len(fitted.classes_)
    logits, per = torch.randn(n, c, generator=g), torch.randn(n, 2, c, generator=g)
    y = torch.arange(n) % c
    mask = torch.ones(n, 2, dtype=torch.bool)
    mask[[0, 3, 5], 1] = False
    weight = net_.criterion_.weight
    assert weight is not None and weight.tolist() == [3.0, 1.0, 1.0, 1.0]

    def weighted_ce(z, t):
        return -(weight[t] * F.log_softmax(z, 1)[torch.arange(len(t)), t]).sum() / weight[t].sum()

    expected = weighted_ce(logits, y) + 0.5 * (weighted_ce(per[:, 0], y) + weighted_ce(per[mask[:, 1], 1], y[mask[:, 1]])) / 2
    got = net_.get_loss((logits, per, mask), y, training=True)
    torch.testing.assert_close(got, expected)
    # a modality missing from every row of the batch adds nothing
    mask[:, 1] = False
    expected = weighted_ce(logits, y) + 0.5 * weighted_ce(per[:, 0], y)
    torch.testing.assert_close(net_.get_loss((logits, per, mask), y, training=True), expected)
    # a plain tensor (validation batches) is the fused loss alone
    torch.testing.assert_close(net_.get_loss(logits, y), weighted_ce(logits, y))


def test_fitted_model_predicts_and_the_auxiliary_heads_learned_the_task(shapes_df, tmp_path):
    # Label = the shape, which both the image and a word of the caption give away.
    df = shapes_df.assign(label=shapes_df["label"].str.split("-").str[1])
    df["caption"] = df["label"] + " " + df["caption"]
    clf = fast_classifier(fusion="late", unimodal_loss=2.0, fusion_kwargs={"learn_weights": False}, max_epochs=60)
    clf.fit(df, df["label"])
    proba = clf.predict_proba(df)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert clf.score(df, df["label"]) > 0.9
    # each modality's own head classifies alone
    module = clf.net_.module_.eval()
    data = {k: torch.as_tensor(v) for k, v in clf.model_inputs(df).items()}
    with torch.no_grad():
        per = module.fusion.modality_logits(module.embed(**data))
    y = np.searchsorted(clf.classes_, df["label"])
    for i, name in enumerate(module.modalities):
        accuracy = (per[:, i].argmax(1).numpy() == y).mean()
        assert accuracy > 0.95, f"{name} head alone: {accuracy:.2f}"
    assert clf.net_.module_.fusion.weights_by_modality == {"image": 0.5, "text": 0.5}


def test_unimodal_loss_changes_training_and_is_searchable(shapes_df):
    df = shapes_df
    a = fast_classifier(max_epochs=3, unimodal_loss=0.0).fit(df, df["label"]).predict_proba(df)
    b = fast_classifier(max_epochs=3, unimodal_loss=1.0).fit(df, df["label"]).predict_proba(df)
    assert not np.allclose(a, b)
    search = GridSearchCV(fast_classifier(max_epochs=3), {"unimodal_loss": [0.0, 1.0]}, cv=2).fit(df, df["label"])
    assert set(pd.DataFrame(search.cv_results_)["param_unimodal_loss"]) == {0.0, 1.0}


def test_trainable_branches_under_bf16_and_a_joblib_round_trip(shapes_df, tmp_path):
    df = shapes_df
    clf = FusionClassifier(
        image=ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (4, 8)}), text="gru",
        fusion="gated", unimodal_loss=1.0, precision="bfloat16", max_epochs=2, dim=16, hidden_dim=16,
        random_state=0, device="cpu", stacking=None,
    ).fit(df, df["label"])
    module = clf.net_.module_
    assert module.unimodal == [0, 1] and len(module.unimodal_heads) == 2
    # the auxiliary heads get gradients: AdamW leaves a parameter without one where it started,
    # so one epoch more would leave them unchanged
    shorter = clone(clf).set_params(max_epochs=1).fit(df, df["label"]).net_.module_
    assert not torch.allclose(module.unimodal_heads[0].weight, shorter.unimodal_heads[0].weight)
    path = tmp_path / "model.joblib"
    joblib.dump(clf, path)
    np.testing.assert_allclose(joblib.load(path).predict_proba(df), clf.predict_proba(df), rtol=1e-5, atol=1e-6)


def test_training_scores_and_early_stopping_see_the_fused_logits(shapes_df):
    # skorch callbacks that score the training batches receive the training-mode tuple; skorch
    # takes its first element, the fused logits, as the prediction
    df = shapes_df
    scoring = EpochScoring("accuracy", on_train=True, lower_is_better=False, name="train_acc")
    clf = fast_classifier(unimodal_loss=1.0, fusion="late", callbacks=[("train_acc", scoring)], max_epochs=12,
                          validation_fraction=0.25, n_iter_no_change=20).fit(df, df["label"])
    history = clf.net_.history
    assert all(0 <= a <= 1 for a in history[:, "train_acc"])
    assert history[-1, "train_acc"] > history[0, "train_acc"]
    assert np.isfinite(history[:, "valid_loss"]).all()


class MaxFusion(nn.Module):
    """A plugin fusion that is a plain module: no Fusion base class, hence no used_modalities / modality_logits."""

    def __init__(self, dim):
        super().__init__()
        self.out_dim = dim

    def forward(self, zs):
        return torch.stack(zs).amax(0)


@pytest.fixture
def max_fusion():
    fusions.register("test-max", lambda modalities, dim, n_classes: MaxFusion(dim))
    yield "test-max"
    fusions.unregister("test-max")


def test_a_plugin_fusion_that_is_a_plain_module(max_fusion):
    # every modality gets an auxiliary head
    module = net(max_fusion, modalities=("image", "text", "numeric")).train()
    assert module.unimodal == [0, 1, 2] and len(module.unimodal_heads) == 3
    logits, per, mask = module(**batch(modalities=("image", "text", "numeric")))
    assert logits.shape == (7, N_CLASSES) and per.shape == (7, 3, N_CLASSES) and mask.all()


def test_defaults_train_auxiliary_heads_and_hide_modalities(shapes_df):
    """FusionClassifier's defaults (chosen on benchmarks/accuracy.py): unimodal_loss=1.0, modality_dropout=0.2."""
    df = shapes_df
    module = fast_classifier(max_epochs=1).fit(df, df["label"]).net_.module_
    assert module.unimodal == [0, 1] and len(module.unimodal_heads) == 2
    assert module.modality_dropout == 0.2
