"""FusionClassifier on DataFrames: fitting, column detection, pipelines, grid search, errors."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.compose import make_column_transformer
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.datasets import make_shapes
from skmm.registry import fusions

from helpers import fast_classifier

ALL_FUSIONS = ["concat", "sum", "gated", "attention", "bilinear", "tensor", "film", "late", "image", "text"]


fast = fast_classifier


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    df = make_shapes(240, random_state=1, directory=tmp_path_factory.mktemp("shapes240"), image_size=32)
    return df.iloc[:160].reset_index(drop=True), df.iloc[160:].reset_index(drop=True)


def test_fit_predict_api(shapes_df):
    df = shapes_df
    clf = fast(max_epochs=3).fit(df, df["label"])
    assert list(clf.classes_) == sorted(df["label"].unique())
    proba = clf.predict_proba(df)
    assert proba.shape == (len(df), len(clf.classes_))
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)  # float64 rows, as scikit-learn's metrics check
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # log_loss warns when rows do not sum to 1
        assert log_loss(df["label"], proba, labels=clf.classes_) > 0
    pred = clf.predict(df)
    assert set(pred) <= set(clf.classes_)
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(1)])
    assert 0 <= clf.score(df, df["label"]) <= 1
    assert clf.image_col_ == "image_path" and clf.text_col_ == "caption"
    assert clf.ignored_columns_ == ["label"]  # the target in X is recognised, never used as a feature
    assert clf.modalities_ == ["image", "text"]


def test_fusion_beats_each_single_modality(shapes):
    """The shapes label needs both modalities: trained end to end (CNN + GRU), fusion wins."""
    train, test = shapes
    scores = {}
    for fusion in ["concat", "image", "text"]:
        clf = FusionClassifier(
            image=ImageEncoder("cnn", image_size=32, backbone_kwargs={"channels": (16, 32, 32)}),
            text=TextEncoder("gru", dim=32), fusion=fusion, max_epochs=25, lr=3e-3, dim=32, hidden_dim=32,
            random_state=0, device="cpu",
        )
        scores[fusion] = clf.fit(train, train["label"]).score(test, test["label"])
    assert scores["concat"] >= 0.9, scores
    assert scores["image"] <= 0.7 and scores["text"] <= 0.7, scores


def test_same_seed_same_model(shapes_df):
    df = shapes_df
    a = fast(max_epochs=3, fusion="gated").fit(df, df["label"]).predict_proba(df)
    b = fast(max_epochs=3, fusion="gated").fit(df, df["label"]).predict_proba(df)
    np.testing.assert_allclose(a, b, atol=1e-6)
    c = fast(max_epochs=3, fusion="gated", random_state=1).fit(df, df["label"]).predict_proba(df)
    assert not np.allclose(a, c)


def test_fit_leaves_global_torch_rng_alone(shapes_df):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fast(max_epochs=1).fit(shapes_df, shapes_df["label"])
    np.testing.assert_array_equal(torch.rand(3), expected)


@pytest.mark.parametrize("fusion", ALL_FUSIONS)
def test_every_fusion_trains_and_predicts(shapes_df, fusion):
    df = shapes_df
    clf = fast(fusion=fusion, max_epochs=2).fit(df, df["label"])
    assert clf.predict_proba(df).shape == (len(df), 4)
    assert type(clf.net_.module_.fusion) is type(fusions.get(fusion)(["image", "text"], 8, 4))


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search_over_fusions(shapes_df, n_jobs):
    df = shapes_df
    grid = {"fusion": ALL_FUSIONS}
    search = GridSearchCV(fast(max_epochs=2), grid, cv=2, n_jobs=n_jobs).fit(df, df["label"])
    assert len(search.cv_results_["mean_test_score"]) == len(grid["fusion"])
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_estimator_.fusion in grid["fusion"]
    assert search.predict(df).shape == (len(df),)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_pipeline_of_column_transformer_and_fusion(shapes_df, n_jobs):
    df = shapes_df
    features = make_column_transformer(
        (ImageEncoder("pixels", image_size=8), "image_path"),
        (TextEncoder("tfidf"), "caption"),
    )
    logreg = make_pipeline(features, LogisticRegression(max_iter=500)).fit(df, df["label"])
    assert logreg.predict(df).shape == (len(df),)

    pipe = make_pipeline(clone(features).set_output(transform="pandas"), fast(fusion="attention", max_epochs=3))
    pipe.fit(df, df["label"])
    clf = pipe[-1]
    assert clf.layout_ == "blocks"
    assert clf.modalities_ == ["image", "text"]  # block prefixes imageencoder__/textencoder__ -> roles
    assert pipe.predict_proba(df).shape == (len(df), 4)
    search = GridSearchCV(pipe, {"fusionclassifier__fusion": ["concat", "film"]}, cv=2, n_jobs=n_jobs)
    search.fit(df, df["label"])
    assert search.best_params_["fusionclassifier__fusion"] in {"concat", "film"}


def test_numeric_input_is_one_modality():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    clf = fast(max_epochs=40).fit(X, y)
    assert clf.modalities_ == ["numeric"]
    assert clf.score(X, y) > 0.9


def test_detects_columns_by_content(shapes_df):
    df = shapes_df.rename(columns={"image_path": "photo", "caption": "words"}).assign(
        sku=[f"A{i}" for i in range(len(shapes_df))]
    )
    clf = fast(max_epochs=1).fit(df, df["label"])
    assert (clf.image_col_, clf.text_col_) == ("photo", "words")
    assert sorted(clf.ignored_columns_) == ["label", "sku"]


def test_ambiguous_columns_raise_naming_candidates(shapes_df):
    df = shapes_df.assign(thumb=shapes_df["image_path"])
    with pytest.raises(ValueError, match=r"image paths.*'image_path'.*'thumb'.*image_col"):
        fast().fit(df, df["label"])
    df = shapes_df.assign(caption2=shapes_df["caption"].str.upper())
    with pytest.raises(ValueError, match=r"text.*'caption'.*'caption2'.*text_col"):
        fast().fit(df, df["label"])
    # naming them settles it
    fast(max_epochs=1, image_col="image_path", text_col="caption2").fit(df, df["label"])


@pytest.mark.parametrize(
    "params, X_kind, error, match",
    [
        ({"image_col": "image_path"}, "array", TypeError, "must be a pandas DataFrame.*image_col"),
        ({"image_col": "nope"}, "frame", ValueError, r"image_col='nope' is not a column.*columns are"),
        ({"text_col": "nope"}, "frame", ValueError, r"text_col='nope' is not a column"),
        ({"fusion": "nope"}, "frame", ValueError, r"unknown fusion 'nope'; known: .*'concat'"),
        ({"image": "no-such-backbone"}, "frame", ValueError, r"unknown image backbone 'no-such-backbone'; known: .*'cnn'"),
        ({"text": "nope:x"}, "frame", ValueError, r"unknown text backbone 'nope:x'"),
        ({"max_epochs": 0}, "frame", ValueError, "max_epochs must be a positive integer"),
        ({"dropout": 1.5}, "frame", ValueError, r"dropout must be in \[0, 1\)"),
        ({"unimodal_loss": -1.0}, "frame", ValueError, "unimodal_loss must be a finite number >= 0"),
        ({"unimodal_loss": True}, "frame", ValueError, "unimodal_loss must be a finite number >= 0"),
        ({"device": "tpu"}, "frame", ValueError, "device must be"),
        ({"image": 3}, "frame", TypeError, "image must be a ImageEncoder"),
    ],
)
def test_bad_parameters_and_input_fail_before_training(shapes_df, params, X_kind, error, match, monkeypatch):
    df = shapes_df
    X = df.to_numpy() if X_kind == "array" else df
    trained = []
    monkeypatch.setattr("skorch.NeuralNetClassifier.fit", lambda self, *a, **k: trained.append(1))
    with pytest.raises(error, match=match):
        fast(**params).fit(X, df["label"])
    assert trained == []


def test_label_errors(shapes_df):
    df = shapes_df
    with pytest.raises(ValueError, match="1 class"):
        fast().fit(df, ["a"] * len(df))
    with pytest.raises(ValueError, match="requires y"):
        fast().fit(df, None)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        fast().fit(df, df["label"][:-1])
    with pytest.raises(ValueError, match="Unknown label type"):
        fast().fit(df, np.linspace(0, 1, len(df)))


def test_missing_file_names_row_column_and_path(shapes_df, monkeypatch):
    df = shapes_df.copy()
    df.loc[5, "image_path"] = "/no/such/picture.png"
    trained = []
    monkeypatch.setattr("skorch.NeuralNetClassifier.fit", lambda self, *a, **k: trained.append(1))
    with pytest.raises(ValueError, match=r"row 5.*image_path.*/no/such/picture.png"):
        fast().fit(df, df["label"])
    assert trained == []


def test_predict_before_fit_and_missing_column(shapes_df):
    df = shapes_df
    with pytest.raises(NotFittedError):
        fast().predict(df)
    clf = fast(max_epochs=1).fit(df, df["label"])
    with pytest.raises(ValueError, match=r"column 'caption'.*missing from X"):
        clf.predict(df.drop(columns="caption"))
    with pytest.raises(TypeError, match="DataFrame like the one seen in fit"):
        clf.predict(np.zeros((3, 3)))
    # predicting without the label column is fine
    assert clf.predict(df.drop(columns="label")).shape == (len(df),)


def test_ablation_without_its_modality_fails_early(shapes_df):
    df = shapes_df[["caption", "label"]]
    with pytest.raises(ValueError, match=r"fusion='image'.*needs an image modality"):
        fast(fusion="image").fit(df, df["label"])


def test_device_auto_resolves_and_cuda_request_without_cuda(shapes_df):
    df = shapes_df
    clf = fast(device="auto", max_epochs=1).fit(df, df["label"])
    assert clf.device_ == ("cuda" if torch.cuda.is_available() else "cpu")
    assert str(next(clf.net_.module_.parameters()).device).startswith(clf.device_)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' but CUDA is not available"):
            fast(device="cuda").fit(df, df["label"])


def test_class_weight_balanced_reaches_the_loss(shapes_df):
    df = shapes_df.iloc[: 60 + 12]
    y = np.where(np.arange(len(df)) < 60, "common", "rare")
    clf = fast(class_weight="balanced", max_epochs=1).fit(df, y)
    weight = clf.net_.criterion_.weight.cpu().numpy()
    np.testing.assert_allclose(weight, [len(y) / (2 * 60), len(y) / (2 * 12)], rtol=1e-6)


def test_validation_fraction_stops_early(shapes_df):
    df = shapes_df
    clf = fast(max_epochs=200, validation_fraction=0.25, n_iter_no_change=2, lr=0.05).fit(df, df["label"])
    assert len(clf.net_.history) < 200
    assert "valid_loss" in clf.net_.history[-1]


def test_trainable_backbone_learns_end_to_end(shapes_df):
    df = shapes_df
    clf = FusionClassifier(
        image=ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (4, 8)}), text="gru",
        max_epochs=2, dim=16, hidden_dim=16, random_state=0, device="cpu",
    ).fit(df, df["label"])
    enc = clf.encoders_["image"]
    assert enc.is_trainable_
    names = [n for n, _ in clf.net_.module_.named_parameters()]
    assert any(n.startswith("encoders.image.") for n in names) and any(n.startswith("encoders.text.") for n in names)
    # the encoder the classifier keeps is the trained one: its features moved away from the seed's
    fresh = clone(enc).set_params(random_state=enc.random_state).fit(df["image_path"])
    assert not np.allclose(fresh.transform(df["image_path"]), enc.transform(df["image_path"]))


def test_last_n_blocks_trainable(shapes_df):
    df = shapes_df
    clf = FusionClassifier(
        image=ImageEncoder("cnn", image_size=16, trainable="last:1", backbone_kwargs={"channels": (4, 8, 8)}),
        text="tfidf", max_epochs=1, dim=16, hidden_dim=16, random_state=0, device="cpu",
    ).fit(df, df["label"])
    cnn = clf.encoders_["image"].backbone_.module
    flags = [all(p.requires_grad for p in block.parameters()) for block in cnn.blocks]
    assert flags == [False, False, True]


def test_modality_dropout_and_fusion_kwargs(shapes_df):
    df = shapes_df
    clf = fast(fusion="attention", fusion_kwargs={"n_heads": 2}, modality_dropout=0.3, max_epochs=2).fit(df, df["label"])
    assert clf.net_.module_.modality_dropout == 0.3
    with pytest.raises(TypeError, match="unknown option"):
        fast(fusion="concat", fusion_kwargs={"bogus": 1}).fit(df, df["label"])


def test_early_stopping_on_a_validation_score(shapes_df):
    df = shapes_df
    clf = fast(max_epochs=60, validation_fraction=0.25, n_iter_no_change=3, early_stopping_scoring="f1_macro")
    clf.fit(df, df["label"])
    history = clf.net_.history
    assert len(history) < 60
    scores = history[:, "valid_score"]
    assert all(0 <= s <= 1 for s in scores)
    # the kept weights are those of the best-scoring epoch
    best = int(np.argmax(scores))
    assert history[best, "valid_score_best"]
    with pytest.raises(ValueError, match="needs validation_fraction"):
        fast(early_stopping_scoring="f1_macro").fit(df, df["label"])
    with pytest.raises(ValueError, match="not_a_scorer"):
        fast(validation_fraction=0.2, early_stopping_scoring="not_a_scorer").fit(df, df["label"])
