"""FusionClassifier(stacking=...): out-of-fold linear text models as extra modalities."""

import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import make_column_transformer

import skmm
from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.estimators.stacked import fit_stackers, stack_inputs
from skmm.io.frame import Modality

FAST = dict(max_epochs=2, dim=8, hidden_dim=8, batch_size=16, random_state=0,
            image=ImageEncoder("pixels", image_size=8), text=TextEncoder("tfidf"))


class SeenText(ClassifierMixin, BaseEstimator):
    """predict_proba: column 0 is 1 for a text this model was fitted on, column 1 otherwise."""

    def fit(self, X, y):
        self.seen_ = set(np.asarray(X).tolist())
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        seen = np.array([x in self.seen_ for x in np.asarray(X).tolist()], dtype=float)
        out = np.zeros((len(seen), len(self.classes_)))
        out[:, 0], out[:, 1] = seen, 1 - seen
        return out

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def _texts(n=40):
    y = np.arange(n) % 2
    texts = np.array([f"row {i} {'red' if c else 'blue'}" for i, c in enumerate(y)], dtype=object)
    return texts, y


def test_training_inputs_are_out_of_fold_and_predict_uses_the_refitted_model():
    texts, y = _texts()
    stackers, data = fit_stackers(SeenText(), {"text": Modality("text", texts, "title")}, y, 2, multilabel=False)
    assert list(stackers) == ["text_stack"]
    # every row's training input comes from a model that never saw that row ...
    np.testing.assert_allclose(np.exp(data["text_stack"][:, 1]), 1.0, rtol=1e-6)
    # ... and predict reads the model refitted on every row, which saw them all
    refit, mask = stack_inputs(stackers["text_stack"], texts)
    np.testing.assert_allclose(np.exp(refit[:, 0]), 1.0, rtol=1e-6)
    assert mask.all() and stackers["text_stack"]["model"].seen_ == set(texts.tolist())


def test_missing_texts_are_a_missing_stacked_modality():
    texts, y = _texts()
    texts[[3, 7]] = None
    texts[5] = "  "
    stackers, data = fit_stackers("auto", {"text": Modality("text", texts, "title")}, y, 2, multilabel=False)
    assert not data["text_stack_mask"][[3, 5, 7]].any() and data["text_stack_mask"].sum() == 37
    _, mask = stack_inputs(stackers["text_stack"], texts)
    np.testing.assert_array_equal(mask, data["text_stack_mask"])


def test_a_class_unseen_by_a_fold_gets_the_floor_not_a_shifted_column():
    texts, y = _texts(30)
    y = y.copy()
    y[0] = 2  # one row of class 2: no fold but one trains on it
    _, data = fit_stackers("auto", {"text": Modality("text", texts, "t")}, y, 3, multilabel=False)
    assert data["text_stack"].shape == (30, 3) and np.isfinite(data["text_stack"]).all()


def test_auto_stacks_each_raw_text_column(frame):
    X, y = frame
    clf = FusionClassifier(**FAST).fit(X, y)
    assert clf.modalities_ == ["image", "text", "text_stack"]
    assert clf.modality_kinds_ == ["image", "text", "text"]
    st = clf.stackers_["text_stack"]
    assert st["source"] == "text" and st["n_classes"] == len(clf.classes_)
    inputs = clf.model_inputs(X)
    expected = np.log(np.clip(st["model"].predict_proba(X["caption"].to_numpy()), 1e-4, 1))
    np.testing.assert_allclose(inputs["text_stack"], expected, rtol=1e-5)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(clf.classes_)) and np.allclose(proba.sum(axis=1), 1)


def test_stacking_none_and_what_auto_leaves_alone(frame, shapes_df):
    X, y = frame
    assert FusionClassifier(stacking=None, **FAST).fit(X, y).modalities_ == ["image", "text"]
    # encoded blocks (a ColumnTransformer) carry no raw text to stack
    ct = make_column_transformer((ImageEncoder("pixels", image_size=8), ["image_path"]),
                                 (TextEncoder("tfidf"), ["caption"])).set_output(transform="pandas")
    blocks = ct.fit_transform(shapes_df)
    assert FusionClassifier(**{**FAST, "image": None, "text": None}).fit(blocks, y.to_numpy()).stackers_ == {}
    # a multilabel y: "auto" stacks nothing, an explicit model is an error before training
    Y = np.c_[y.to_numpy() == y.iloc[0], y.to_numpy() != y.iloc[0]].astype(int)
    assert FusionClassifier(**FAST).fit(X, Y).stackers_ == {}
    with pytest.raises(ValueError, match="stacking= stacks a text model on raw text columns of a single-label y"):
        FusionClassifier(stacking=SeenText(), **FAST).fit(X, Y)


def test_ablations_keep_or_drop_the_stacked_text(frame):
    X, y = frame
    image = FusionClassifier(fusion="image", **FAST).fit(X, y)
    assert image.net_.module_.fusion.used_modalities == [0]
    text = FusionClassifier(fusion="text", **FAST).fit(X, y)
    assert text.net_.module_.fusion.used_modalities == [1, 2]


def test_wide_table_stacks_every_text_column(shapes_df):
    X = pd.DataFrame({"photo": shapes_df["image_path"], "title": shapes_df["caption"],
                      "note": shapes_df["caption"].str.split().str[0], "n": np.arange(len(shapes_df)) % 5})
    clf = FusionClassifier(columns={"photo": "image", "title": "text", "note": "text", "n": "numeric"},
                           **FAST).fit(X, shapes_df["label"])
    assert sorted(clf.stackers_) == ["note_stack", "title_stack"]
    assert [clf.stackers_[n]["source"] for n in ("title_stack", "note_stack")] == ["title", "note"]


def test_round_trips_keep_the_stacked_model(frame, tmp_path):
    X, y = frame
    clf = FusionClassifier(**FAST).fit(X, y)
    expected = clf.predict_proba(X)
    joblib.dump(clf, tmp_path / "m.joblib")
    path = tmp_path / "m.skmm"
    skmm.save(clf, path)
    np.testing.assert_allclose(skmm.load(path).predict_proba(X), expected, rtol=1e-5, atol=1e-6)
    X.to_pickle(tmp_path / "X.pkl")
    code = (f"import joblib, numpy as np, pandas as pd; m = joblib.load({str(tmp_path / 'm.joblib')!r}); "
            f"X = pd.read_pickle({str(tmp_path / 'X.pkl')!r}); print(repr(m.predict_proba(X).sum()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert np.isclose(float(out.stdout.strip().removeprefix("np.float64(").rstrip(")")), expected.sum())
