"""FusionClassifier on DataFrames: fitting, fusions, seeds, pipelines, grid search, training options.

Elsewhere: which columns are which modality (test_io_frame.py), labels and class_weight
(test_labels.py), missing inputs, bad files and modality_dropout (test_missing_inputs.py),
trainable branches (test_finetune.py), one bad value per parameter (test_params.py).
"""

import os
import subprocess
import sys
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

from helpers import fast_classifier as fast

ALL_FUSIONS = ["concat", "sum", "gated", "attention", "bilinear", "tensor", "film", "late", "image", "text"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    df = make_shapes(240, random_state=1, directory=tmp_path_factory.mktemp("shapes240"), image_size=32)
    return df.iloc[:160].reset_index(drop=True), df.iloc[160:].reset_index(drop=True)


def test_fit_predict_api(shapes_df):
    df = shapes_df
    with pytest.raises(NotFittedError):
        fast().predict(df)
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


@pytest.mark.slow
def test_fusion_beats_each_single_modality(shapes):
    """The shapes label needs both modalities: trained end to end (CNN + GRU), fusion wins."""
    train, test = shapes
    scores = {}
    for fusion in ["concat", "image", "text"]:
        # augment="none": the shapes need no invariance, and augmenting took most of the time (40 s against 14 s)
        clf = FusionClassifier(
            image=ImageEncoder("cnn", image_size=32, backbone_kwargs={"channels": (16, 32, 32)}, augment="none"),
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


THREADED_FITS = """
import sys
import joblib
import numpy as np
sys.path.insert(0, sys.argv[2])
from helpers import fast_classifier
from skmm.datasets import make_shapes

df = make_shapes(60, random_state=0, directory=sys.argv[1], image_size=16)
# stacking="auto": its LogisticRegression runs a nested joblib Parallel inside fit
settings = [dict(fusion=f, random_state=s, stacking="auto", max_epochs=4) for f in ("concat", "gated") for s in (0, 1)]

def proba(params):
    return fast_classifier(**params).fit(df, df["label"]).predict_proba(df)

alone = [proba(p) for p in settings]
threaded = joblib.Parallel(n_jobs=2, prefer="threads")(joblib.delayed(proba)(p) for p in settings)
for a, b in zip(alone, threaded):
    np.testing.assert_allclose(a, b, atol=1e-6)
print("same")
"""


def test_fits_in_threads_give_the_models_of_fits_one_after_another(tmp_path):
    # torch has one RNG per process: seeded fits in two threads take turns on it (a lock), or each would draw
    # from the other's seeded generator and the models would depend on timing; in a subprocess, under a timeout
    done = subprocess.run([sys.executable, "-c", THREADED_FITS, str(tmp_path), os.path.dirname(__file__)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "same"


FORK_WHILE_HELD = """
import multiprocessing, threading
import torch
from skmm.utils.seeding import seeded

held, release = threading.Event(), threading.Event()

def hold():
    with seeded(0):
        held.set()
        release.wait()

def child(queue):
    with seeded(1):  # a lock inherited held by the other thread would wait here for ever
        queue.put(float(torch.rand(1)))

thread = threading.Thread(target=hold)
thread.start()
held.wait()
ctx = multiprocessing.get_context("fork")
queue = ctx.Queue()
proc = ctx.Process(target=child, args=(queue,))
proc.start()
value = queue.get(timeout=60)
proc.join()
release.set()
thread.join()
with seeded(1):
    assert value == float(torch.rand(1))
print("ok")
"""


def test_a_process_forked_while_another_thread_fits_can_seed():
    done = subprocess.run([sys.executable, "-c", FORK_WHILE_HELD], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"


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


# n_jobs=2 starts joblib's worker processes, each importing torch: slow.
@pytest.mark.parametrize("n_jobs", [1, pytest.param(2, marks=pytest.mark.slow)])
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


# One bad value per parameter is in tests/test_params.py; these add what that table does not say:
# an unknown name lists the known ones, and booleans are not numbers.  Named columns: test_io_frame.py.
@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"fusion": "nope"}, ValueError, r"unknown fusion 'nope'; known: .*'concat'"),
        ({"image": "no-such-backbone"}, ValueError, r"unknown image backbone 'no-such-backbone'; known: .*'cnn'"),
        ({"text": "nope:x"}, ValueError, r"unknown text backbone 'nope:x'"),
        ({"unimodal_loss": -1.0}, ValueError, "unimodal_loss must be a finite number >= 0"),
        ({"unimodal_loss": True}, ValueError, "unimodal_loss must be a finite number >= 0"),
    ],
)
def test_bad_parameters_fail_before_training_naming_what_is_known(shapes_df, params, error, match, no_training):
    with pytest.raises(error, match=match):
        fast(**params).fit(shapes_df, shapes_df["label"])
    assert no_training == []


def test_device_auto_resolves_and_cuda_request_without_cuda(shapes_df):
    df = shapes_df
    clf = fast(device="auto", max_epochs=1).fit(df, df["label"])
    assert clf.device_ == ("cuda" if torch.cuda.is_available() else "cpu")
    assert str(next(clf.net_.module_.parameters()).device).startswith(clf.device_)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' but CUDA is not available"):
            fast(device="cuda").fit(df, df["label"])


def test_validation_fraction_stops_early(shapes_df):
    df = shapes_df
    clf = fast(max_epochs=200, validation_fraction=0.25, n_iter_no_change=2, lr=0.05).fit(df, df["label"])
    assert len(clf.net_.history) < 200
    assert "valid_loss" in clf.net_.history[-1]


def test_fusion_kwargs_reach_the_fusion(shapes_df):
    df = shapes_df
    clf = fast(fusion="attention", fusion_kwargs={"n_heads": 2}, max_epochs=2).fit(df, df["label"])
    assert clf.net_.module_.fusion.n_heads == 2
    assert clf.predict_proba(df).shape == (len(df), 4)
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
