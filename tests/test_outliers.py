"""Screening of broken modalities (FusionClassifier(outlier_factor=...), skmm.fusion.outliers)."""

import numpy as np
import torch

from skmm.fusion.net import FusionNet
from skmm.fusion.outliers import OutlierScreen

from helpers import fast_classifier


def test_screen_keeps_training_like_rows_and_drops_far_ones():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(500, 6, generator=g) * 3 + 1
    screen = OutlierScreen(6)
    assert screen.keep(z * 100).all()  # uncalibrated: screens nothing
    screen.calibrate(z, factor=2.0)
    assert screen.keep(z).float().mean() > 0.99
    assert not screen.keep(z * 10 + 50).any()
    assert torch.allclose(screen.mean, z.mean(0)) and torch.allclose(screen.scale, z.std(0))


def test_net_treats_an_outlying_modality_as_missing_in_eval_only():
    net = FusionNet({"image": (None, 5), "text": (None, 5)}, 3, dim=8, hidden_dim=8).eval()
    g = torch.Generator().manual_seed(0)
    x = {"image": torch.randn(300, 5, generator=g), "text": torch.randn(300, 5, generator=g)}
    missing = {**x, "image_mask": torch.zeros(300, dtype=torch.bool)}
    with torch.no_grad():
        net.calibrate_outliers({n: z for n, (z, _) in net.project(**x).items()}, factor=2.0)
        assert all(torch.isfinite(s.threshold) for s in net.outliers.values())
        assert not torch.allclose(net(**x), net(**missing))
        net.outliers["image"].threshold.fill_(-1.0)  # every image an outlier
        torch.testing.assert_close(net(**x), net(**missing))  # = no image at all
        net.train()
        torch.manual_seed(0)
        trained_on = net(**x)
        torch.manual_seed(0)
        assert not torch.allclose(trained_on, net(**missing))  # training mode: no screening


def test_single_modality_nets_are_not_screened():
    net = FusionNet({"image": (None, 5), "text": (None, 5)}, 3, fusion="text", dim=8, hidden_dim=8).eval()
    x = {"image": torch.randn(50, 5), "text": torch.randn(50, 5)}
    net.calibrate_outliers({n: z for n, (z, _) in net.project(**x).items()}, factor=2.0)
    assert all(torch.isinf(s.threshold) for s in net.outliers.values())


def test_classifier_calibrates_screens_and_discounts_a_broken_modality(shapes_df):
    df = shapes_df
    clf = fast_classifier(outlier_factor=2.0, modality_dropout=0.2, max_epochs=5).fit(df, df["label"])
    module = clf.net_.module_
    inputs = clf.model_inputs(df)
    with torch.no_grad():
        projected = module.project(**{k: torch.as_tensor(v) for k, v in inputs.items()})
    for name, screen in module.outliers.items():
        assert torch.isfinite(screen.threshold)
        assert screen.keep(projected[name][0]).float().mean() >= 0.95  # training rows pass
    missing = {**inputs, "text_mask": np.zeros(len(df), dtype=bool)}
    assert not np.allclose(clf.proba_from_inputs(inputs), clf.proba_from_inputs(missing), atol=1e-4)
    module.outliers["text"].threshold.fill_(-1.0)  # every text now out of distribution
    np.testing.assert_allclose(clf.proba_from_inputs(inputs), clf.proba_from_inputs(missing), atol=1e-6)
    off = fast_classifier(outlier_factor=None, max_epochs=2).fit(df, df["label"])
    assert all(torch.isinf(s.threshold) for s in off.net_.module_.outliers.values())
