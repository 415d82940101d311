"""Missing inputs, end to end: missing cells, a whole modality missing, image files that cannot be
loaded (and the on_error policies), and modality_dropout, which hides modalities on purpose in training.

A row without an image or a text is not an error: the network uses that modality's
learned "missing" embedding. Every bad input must give a clear ValueError/TypeError
naming the column, the row or the parameter before any training starts ("training
started" is seen through the ``no_training`` fixture, conftest.py).
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.fusion.net import FusionNet

from helpers import messages
from helpers import three_epochs as fast

# -- 1. missing cells and missing modalities -----------------------------------------------


def test_missing_inputs_encode_as_zero_rows(shapes_df):
    out = ImageEncoder("pixels", image_size=4).fit_transform([shapes_df["image_path"][0], None, ""])
    assert out[0].any() and not out[1].any() and not out[2].any()
    out = TextEncoder("tfidf").fit_transform(["red ball", None, np.nan])
    assert out[0].any() and not out[1:].any()


def _hide(df, seed, fraction=0.3):
    """Hide ``fraction`` of the images and, independently, of the texts, spelled every way a table spells it."""
    rng = np.random.RandomState(seed)
    df = df.astype(object)
    no_image = rng.rand(len(df)) < fraction
    no_text = rng.rand(len(df)) < fraction
    df.loc[no_image, "image_path"] = rng.choice(np.array([None, np.nan, "", "  ", pd.NA], dtype=object), no_image.sum())
    df.loc[no_text, "caption"] = rng.choice(np.array([None, np.nan, "", " \t", pd.NA], dtype=object), no_text.sum())
    return df, no_image, no_text


def test_missing_images_and_texts_at_fit_and_predict(shapes640):
    """30% of images and 30% of texts missing, independently, in training and in test rows.

    The shapes label is "<colour>-<shape>": the colour is only in the caption and
    the shape only in the picture.  A row with one modality can therefore narrow
    the 4 classes to 2 and reach about 1/2 accuracy (chance is 1/4), never more;
    what it must get right is the half it can see: text-only rows the colour,
    image-only rows the shape.  Rows with both reach near 1, and rows with
    neither get the class prior, exactly.
    """
    train, test = shapes640
    train, _, _ = _hide(train, seed=1)
    test, no_image, no_text = _hide(test, seed=2)
    clf = FusionClassifier(
        image=ImageEncoder("pixels", image_size=16), text="tfidf", modality_dropout=0.2, max_epochs=40,
        lr=3e-3, dim=32, hidden_dim=32, random_state=0, device="cpu",
    ).fit(train.drop(columns="label"), train["label"])
    y = test["label"].to_numpy()
    pred = clf.predict(test.drop(columns="label"))
    assert pred.dtype == object

    # Every spelling of "missing" was read as missing, in each modality.
    np.testing.assert_array_equal(clf.encoders_["image"].encode(test["image_path"])[1], ~no_image)
    np.testing.assert_array_equal(clf.encoders_["text"].encode(test["caption"])[1], ~no_text)

    colour = np.array([label.split("-")[0] for label in y]), np.array([label.split("-")[0] for label in pred])
    shape = np.array([label.split("-")[1] for label in y]), np.array([label.split("-")[1] for label in pred])
    both, neither = ~no_image & ~no_text, no_image & no_text
    text_only, image_only = no_image & ~no_text, ~no_image & no_text
    assert min(both.sum(), text_only.sum(), image_only.sum(), neither.sum()) >= 20
    assert (pred[both] == y[both]).mean() >= 0.85
    assert (pred[text_only] == y[text_only]).mean() > 0.4
    assert (pred[image_only] == y[image_only]).mean() > 0.4
    assert (colour[0] == colour[1])[text_only].mean() >= 0.9
    assert (shape[0] == shape[1])[image_only].mean() >= 0.9

    proba = clf.predict_proba(test.drop(columns="label"))
    expected_prior = train["label"].value_counts(normalize=True).reindex(clf.classes_).to_numpy()
    np.testing.assert_allclose(clf.class_prior_, expected_prior)
    np.testing.assert_array_equal(proba[neither], np.tile(clf.class_prior_, (neither.sum(), 1)))
    assert not np.isclose(proba[~neither], clf.class_prior_).all(axis=1).any()


def test_a_whole_modality_missing_at_predict(shapes_df):
    df = shapes_df
    clf = fast(max_epochs=5).fit(df, df["label"])
    no_text = df.assign(caption=None)
    proba = clf.predict_proba(no_text)
    assert np.isfinite(proba).all() and not np.allclose(proba, clf.class_prior_)
    nothing = df.assign(caption=np.nan, image_path="")
    np.testing.assert_array_equal(clf.predict_proba(nothing), np.tile(clf.class_prior_, (len(df), 1)))


def test_an_ablation_without_its_modality_fails_early(shapes_df, no_training):
    df = shapes_df[["caption", "label"]]
    with pytest.raises(ValueError, match=r"fusion='image'.*needs an image modality"):
        fast(fusion="image").fit(df, df["label"])
    assert no_training == []


# -- 2. image files that cannot be loaded, and the on_error policies -------------------------


KINDS = ["missing", "not an image", "empty", "truncated", "unreadable", "too many pixels"]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_image_file_raises_before_training_naming_row_column_path(frame, bad_files, kind, no_training):
    X, y = frame
    path, options = bad_files[kind]
    X = X.copy()
    X.loc["p7", "image_path"] = path
    clf = fast(image=ImageEncoder("pixels", image_size=12, **options))  # on_error "raise" is the default
    with pytest.raises(ValueError, match=rf"row 'p7', column 'image_path': '{path}'"):
        clf.fit(X, y)
    assert no_training == []


@pytest.mark.parametrize("kind", KINDS)
def test_bad_image_file_under_warn_is_a_missing_image(frame, bad_files, kind):
    X, y = frame
    path, options = bad_files[kind]
    broken = X.copy()
    broken.loc["p7", "image_path"] = path
    # "1 of N": N counts the rows actually read; rows another test already cached are not.
    warned = rf"1 image in column 'image_path' could not be loaded.*row 'p7': '{path}'"
    with pytest.warns(UserWarning, match=warned):
        clf = fast(image=ImageEncoder("pixels", image_size=12, **options), on_error="warn").fit(broken, y)
    # That row's image counts as missing: its mask is False, so the network uses the learned
    # "missing" embedding, exactly as for a row whose path is None.
    with pytest.warns(UserWarning, match="could not be loaded"):
        _, present = clf.encoders_["image"].encode(broken["image_path"])
    assert present.tolist() == [i != 7 for i in range(len(X))]
    without = X.copy()
    without.loc["p7", "image_path"] = None
    with pytest.warns(UserWarning, match=r"1 image in column 'image_path'.*row 'p7'"):
        proba = clf.predict_proba(broken)
    np.testing.assert_allclose(proba, clf.predict_proba(without), atol=1e-6)
    assert not np.allclose(proba[7], clf.predict_proba(X)[7])  # and it does differ from the real picture


def test_on_error_policies_end_to_end(frame, bad_files):
    X, y = frame
    broken = X.copy()
    broken.loc["p3", "image_path"] = bad_files["truncated"][0]
    broken.loc["p9", "image_path"] = bad_files["missing"][0]

    # "ignore": silent, both rows treated as missing, at fit and at predict.
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        clf = fast(on_error="ignore").fit(broken, y)
        clf.predict(broken)
    assert not [m for m in messages(record) if "could not be loaded" in m]
    assert clf.encoders_["image"].on_error == "ignore"

    # One rule for every setting passed down: the encoder's own value wins; its None
    # takes the classifier's (and None on both means "raise").
    with pytest.warns(UserWarning, match=r"2 images.*row 'p3'.*row 'p9'"):
        fast(image=ImageEncoder("pixels", image_size=12, on_error="warn"), on_error=None).fit(broken, y)
    with pytest.warns(UserWarning, match=r"2 images.*row 'p3'.*row 'p9'"):
        fast(image=ImageEncoder("pixels", image_size=12, on_error="warn"), on_error="raise").fit(broken, y)
    with pytest.warns(UserWarning, match=r"2 images.*row 'p3'.*row 'p9'"):
        fast(image=ImageEncoder("pixels", image_size=12), on_error="warn").fit(broken, y)
    with pytest.raises(ValueError, match="row 'p3', column 'image_path'"):
        fast(image=ImageEncoder("pixels", image_size=12), on_error=None).fit(broken, y)

    # The default raises at predict time too, naming the row of the new X.
    clf = fast(max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"row 'p9', column 'image_path': '.*gone.png': file not found"):
        clf.predict(broken.drop(index="p3"))


def test_non_path_cells_raise_before_training(frame, no_training):
    # A bad on_error value itself: tests/test_params.py.
    X, y = frame
    numbers = X.assign(image_path=range(len(X)))
    with pytest.raises(TypeError, match=r"column 'image_path'.*row 'p0'.*int"):
        fast(image_col="image_path").fit(numbers, y)
    assert no_training == []


def test_warned_row_in_a_trainable_branch_uses_the_missing_embedding(frame, bad_files):
    """Trainable encoders feed the network prepared inputs; a failed file must still be masked out."""
    X, y = frame
    broken = X.copy()
    broken.loc["p7", "image_path"] = bad_files["not an image"][0]
    clf = fast(image=ImageEncoder("cnn", image_size=12, backbone_kwargs={"channels": (4, 8)}), on_error="warn")
    with pytest.warns(UserWarning, match="could not be loaded"):
        clf.fit(broken, y)
    assert clf.encoders_["image"].is_trainable_
    without = X.copy()
    without.loc["p7", "image_path"] = np.nan
    with pytest.warns(UserWarning, match="could not be loaded"):
        proba = clf.predict_proba(broken)
    np.testing.assert_allclose(proba, clf.predict_proba(without), atol=1e-6)


def test_image_encoder_alone_follows_the_same_policy(frame, bad_files):
    X, _ = frame
    column = X["image_path"].copy()
    column["p2"] = bad_files["empty"][0]
    with pytest.raises(ValueError, match=r"row 'p2', column 'image_path'.*empty.jpg"):
        ImageEncoder("pixels", image_size=8).fit(column).transform(column)
    with pytest.warns(UserWarning, match=r"1 image.*row 'p2'"):
        features = ImageEncoder("pixels", image_size=8, on_error="warn").fit_transform(column)
    assert not features[2].any() and features[[1, 3]].all(axis=1).any()  # the failed row is all zeros


# -- 3. modality_dropout: modalities hidden on purpose, in training only ---------------------


def _replaced(module, inputs):
    """Per modality, which rows embed() replaced by the modality's "missing" embedding."""
    zs = module.embed(**inputs)
    return {
        name: (z == module.missing[name]).all(dim=1).numpy() for name, z in zip(module.modalities, zs)
    }


def test_modality_dropout_hides_modalities_in_training_only():
    torch.manual_seed(0)
    n = 4000
    module = FusionNet({"image": (None, 6), "text": (None, 5)}, 3, dim=8, hidden_dim=8, modality_dropout=0.3)
    with torch.no_grad():
        for p in module.missing.values():
            p.fill_(7.0)  # a value no projected row can take, so replaced rows are recognisable
    mask = torch.rand(n) >= 0.1  # 10% genuinely missing
    inputs = {
        "image": torch.randn(n, 6), "text": torch.randn(n, 5),
        "image_mask": mask, "text_mask": torch.ones(n, dtype=torch.bool),
    }

    module.train()
    replaced = _replaced(module, inputs)
    assert replaced["image"][~mask.numpy()].all()  # missing rows always use the missing embedding
    assert abs(replaced["text"].mean() - 0.3) < 0.03  # present rows are hidden with probability p
    assert abs(replaced["image"][mask.numpy()].mean() - 0.3) < 0.03
    again = _replaced(module, inputs)
    assert (again["text"] != replaced["text"]).any()  # drawn afresh each batch

    module.eval()
    replaced = _replaced(module, inputs)
    np.testing.assert_array_equal(replaced["image"], ~mask.numpy())  # only the genuinely missing ones
    assert not replaced["text"].any()

    module.modality_dropout = 0.0
    module.train()
    assert not _replaced(module, inputs)["text"].any()


def test_modality_dropout_hides_rows_from_their_auxiliary_loss():
    """Under unimodal_loss, a row whose modality was hidden is left out of that modality's own loss."""
    module = FusionNet({"image": (None, 6), "text": (None, 6)}, 3, dim=8, hidden_dim=8, dropout=0.0,
                       unimodal_loss=1.0, modality_dropout=0.5).train()
    g = torch.Generator().manual_seed(0)
    inputs = {"image": torch.randn(400, 6, generator=g), "text": torch.randn(400, 6, generator=g)}
    torch.manual_seed(0)
    _, _, mask = module(**inputs)
    assert 0.35 < (~mask).float().mean().item() < 0.65


def test_modality_dropout_inside_a_fitted_classifier(shapes_df):
    df = shapes_df
    clf = fast(modality_dropout=0.5, max_epochs=2).fit(df, df["label"])
    module = clf.net_.module_
    assert module.modality_dropout == 0.5
    # predict runs the network in eval mode: nothing is hidden, nothing random
    np.testing.assert_array_equal(clf.predict_proba(df), clf.predict_proba(df))
    data = {k: torch.as_tensor(v) for k, v in clf.model_inputs(df).items()}
    module.train()
    try:
        with torch.no_grad():
            replaced = _replaced(module, data)
    finally:
        module.eval()
    assert 0 < replaced["image"].mean() < 1 and 0 < replaced["text"].mean() < 1
