"""Which modality did the work: skmm.inspection and FusionClassifier.modality_weights."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.preprocessing import StandardScaler

from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.inspection import modality_importance


@pytest.fixture(scope="module")
def with_noise(shapes_df):
    """Image, text and a block of pure noise, encoded as a ColumnTransformer would hand them over."""
    df = shapes_df.assign(noise=np.random.RandomState(0).randn(len(shapes_df)))
    blocks = make_column_transformer(
        (ImageEncoder("pixels", image_size=12), "image_path"),
        (TextEncoder("tfidf"), "caption"),
        (StandardScaler(), ["noise"]),
    ).set_output(transform="pandas")
    X = blocks.fit_transform(df)
    clf = FusionClassifier(fusion="gated", max_epochs=25, lr=3e-3, dim=32, hidden_dim=32, random_state=0, device="cpu")
    return clf.fit(X, df["label"]), X, df["label"]


def test_both_modalities_matter_and_noise_does_not(with_noise):
    clf, X, y = with_noise
    result = modality_importance(clf, X, y, n_repeats=3, random_state=0)
    assert result.modalities == ["image", "text", "standardscaler"]
    assert result.importances.shape == (3, 3) and result.removal_importances.shape == (3, 3)
    image, text, noise = result.importances_mean
    assert image > 0.1 and text > 0.1
    assert abs(noise) < 0.05
    assert abs(result.removal_importances_mean[2]) < 0.05
    assert result.removal_importances_mean[:2].min() > 0.05
    np.testing.assert_allclose(result.removal_importances_std, 0, atol=1e-12)  # removal is deterministic
    assert result.baseline_score == pytest.approx(clf.score(X, y))


def test_repeats_are_seeded_and_scoring_is_a_scorer(with_noise):
    clf, X, y = with_noise
    a = modality_importance(clf, X, y, n_repeats=2, random_state=3, scoring="f1_macro")
    b = modality_importance(clf, X, y, n_repeats=2, random_state=3, scoring="f1_macro")
    np.testing.assert_array_equal(a.importances, b.importances)
    with pytest.raises(ValueError, match="n_repeats must be a positive integer"):
        modality_importance(clf, X, y, n_repeats=0)


def test_removing_a_modality_is_what_missing_inputs_do(shapes_df):
    clf = FusionClassifier(image="pixels", text="tfidf", max_epochs=5, random_state=0, device="cpu", stacking=None)
    df = shapes_df[["image_path", "caption"]]
    clf.fit(df, shapes_df["label"])
    inputs = clf.model_inputs(df)
    inputs["text_mask"] = np.zeros(len(df), dtype=bool)
    np.testing.assert_allclose(clf.proba_from_inputs(inputs), clf.predict_proba(df.assign(caption=None)), atol=1e-6)


@pytest.mark.parametrize("fusion", ["gated", "attention", "late"])
def test_modality_weights_per_row(shapes_df, fusion):
    df = shapes_df[["image_path", "caption"]]
    clf = FusionClassifier(image="pixels", text="tfidf", fusion=fusion, max_epochs=3, random_state=0, device="cpu",
                           stacking=None)
    weights = clf.fit(df, shapes_df["label"]).modality_weights(df)
    assert isinstance(weights, pd.DataFrame) and list(weights.columns) == ["image", "text"]
    assert weights.index.equals(df.index)
    np.testing.assert_allclose(weights.sum(axis=1), 1, atol=1e-5)
    assert ((weights >= 0) & (weights <= 1)).all().all()
    if fusion == "late":  # learned weights, the same for every row
        np.testing.assert_allclose(weights.std(), 0, atol=1e-7)
        assert weights.iloc[0].to_dict() == pytest.approx(clf.net_.module_.fusion.weights_by_modality)


def test_modality_weights_need_a_fusion_that_weighs(shapes_df):
    df = shapes_df[["image_path", "caption"]]
    clf = FusionClassifier(image="pixels", text="tfidf", fusion="concat", max_epochs=1, device="cpu")
    with pytest.raises(ValueError, match="does not weigh modalities.*'gated', 'attention' or 'late'"):
        clf.fit(df, shapes_df["label"]).modality_weights(df)
