"""What real tables throw at FusionClassifier: bad image files, missing modalities, odd text cells, labels.

Every bad input must give a clear ValueError/TypeError naming the column, the row
or the parameter before any training starts; "training started" is seen by
replacing ``skorch.NeuralNetClassifier.fit``.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.datasets import make_shapes
from skmm.fusion.net import FusionNet

from helpers import fast_classifier


def fast(**params):
    return fast_classifier(**{"max_epochs": 3, **params})


@pytest.fixture
def no_training(monkeypatch):
    """A list that gets an entry whenever the network's training starts."""
    calls = []
    monkeypatch.setattr("skorch.NeuralNetClassifier.fit", lambda self, *a, **k: calls.append(1))
    return calls


@pytest.fixture
def frame(shapes_df):
    """96 shapes rows, label kept out of X, with string row labels (errors must name labels, not positions)."""
    X = shapes_df.drop(columns="label").astype(object)
    X.index = [f"p{i}" for i in range(len(X))]
    y = pd.Series(shapes_df["label"].to_numpy(), index=X.index)
    return X, y


def _messages(record):
    return [str(w.message) for w in record]


# -- 1. image files that cannot be loaded --------------------------------------------------


@pytest.fixture
def bad_files(tmp_path):
    """kind -> (path, the ImageEncoder options under which it fails)."""
    Image.new("RGB", (40, 40), "red").save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.png").write_text("this is not a picture")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()  # a path that exists but cannot be read as a file
    Image.new("RGB", (200, 200), "blue").save(tmp_path / "huge.png")
    return {
        "missing": (str(tmp_path / "gone.png"), {}),
        "not an image": (str(tmp_path / "notes.png"), {}),
        "empty": (str(tmp_path / "empty.jpg"), {}),
        "truncated": (str(tmp_path / "truncated.png"), {}),
        "unreadable": (str(tmp_path / "folder.png"), {}),
        "too many pixels": (str(tmp_path / "huge.png"), {"max_image_pixels": 100 * 100}),
    }


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
    assert not [m for m in _messages(record) if "could not be loaded" in m]
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


def test_bad_policy_or_non_path_cells_raise_before_training(frame, no_training):
    X, y = frame
    with pytest.raises(ValueError, match="on_error must be"):
        fast(on_error="skip").fit(X, y)
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


# -- 2. missing modalities -----------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes640(tmp_path_factory):
    df = make_shapes(640, random_state=0, directory=tmp_path_factory.mktemp("shapes640"), image_size=32)
    return df.iloc[:320].reset_index(drop=True), df.iloc[320:].reset_index(drop=True)


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


# -- 3. text cells that are not plain strings ---------------------------------------------


def test_numbers_bytes_and_lists_are_read_as_text(frame):
    X, y = frame
    odd = X.copy()
    odd.loc["p0", "caption"] = 12345
    odd.loc["p1", "caption"] = 2.5
    odd.loc["p2", "caption"] = "a red ball".encode("utf-8")
    odd.loc["p3", "caption"] = ["a", "blue", "box"]
    odd.loc["p4", "caption"] = np.array(["green", "thing"])
    odd.loc["p5", "caption"] = True
    plain = X.copy()
    plain.loc[["p0", "p1", "p2", "p3", "p4", "p5"], "caption"] = [
        "12345", "2.5", "a red ball", "a blue box", "green thing", "True",
    ]

    encoder = TextEncoder("tfidf").fit(plain["caption"])
    np.testing.assert_array_equal(encoder.transform(odd["caption"]), encoder.transform(plain["caption"]))
    clf = fast(text_col="caption", image_col="image_path").fit(odd, y)
    np.testing.assert_allclose(clf.predict_proba(odd), clf.predict_proba(plain), atol=1e-6)

    # A column that holds only numbers is text too when named as the text column.
    codes = X.assign(caption=np.arange(len(X)) % 7)
    assert fast(max_epochs=1, text_col="caption").fit(codes, y).predict(codes).shape == (len(X),)


def test_very_long_text_is_truncated_to_max_length(frame):
    X, y = frame
    words = [f"w{i % 500}" for i in range(10_000)]
    long = X.copy()
    long.loc["p4", "caption"] = " ".join(words)

    encoder = TextEncoder("gru", max_length=16, dim=8, random_state=0).fit(long["caption"])
    ids = encoder.prepare(long["caption"])[0]
    assert ids.shape == (len(X), 16)
    np.testing.assert_array_equal(ids[4], encoder.prepare([" ".join(words[:16])])[0][0])  # the first 16 tokens
    np.testing.assert_array_equal(ids[4], encoder.prepare([" ".join(words[:16] + ["zzz"] * 50)])[0][0])

    # Vectorizers count words rather than read a sequence: nothing to truncate, and it works.
    assert np.isfinite(TextEncoder("tfidf").fit_transform(long["caption"])).all()

    clf = fast(text=TextEncoder("gru", max_length=16, dim=8), max_epochs=2).fit(long, y)
    assert clf.predict(long).shape == (len(X),)


@pytest.mark.parametrize(
    "cell, what",
    [({"title": "red"}, "dict"), ({"red"}, "set"), (object(), "object"), ([["red"]], "list holding a list"),
     (b"\xff\xfe red", "bytes are not UTF-8"), (["red", 3], "list holding a int")],
    ids=["dict", "set", "object", "nested-list", "bad-bytes", "mixed-list"],
)
def test_text_cells_that_are_not_text_raise_before_training(frame, cell, what, no_training):
    X, y = frame
    bad = X.copy()
    bad.at["p6", "caption"] = cell
    with pytest.raises(TypeError, match=rf"row 'p6' \(position 6\) in column 'caption': .*{what}"):
        fast(text_col="caption").fit(bad, y)
    assert no_training == []
    # and at predict time, from a model fitted on clean data
    clf = fast(max_epochs=1).fit(X, y)
    with pytest.raises(TypeError, match=r"row 'p6' \(position 6\) in column 'caption'"):
        clf.predict(bad)


# -- 4. labels ----------------------------------------------------------------------------


def _labels(kind, y):
    """The shapes labels as a user might hold them."""
    codes = pd.Series(pd.Categorical(y).codes, index=y.index)
    return {
        "object": y.astype(object),
        "numpy-str": y.to_numpy(dtype=str),
        "pandas-string": y.astype("string"),
        "int64": codes.astype(np.int64),
        "int32": codes.astype(np.int32).to_numpy(),
        "uint8": codes.astype(np.uint8),
        "bool": y.str.startswith("red"),
        "categorical": pd.Categorical(y, categories=["unused", *sorted(set(y))]),
        "ordered-series": y.astype(
            pd.CategoricalDtype(["red-square", "red-circle", "blue-square", "blue-circle"], ordered=True)
        ),
    }[kind]


@pytest.mark.parametrize(
    "kind", ["object", "numpy-str", "pandas-string", "int64", "int32", "uint8", "bool", "categorical", "ordered-series"]
)
def test_predict_gives_labels_back_as_they_came(frame, kind):
    X, y = frame
    labels = _labels(kind, y)
    clf = fast(max_epochs=25).fit(X, labels)
    pred = clf.predict(X)
    seen = np.unique(np.asarray(labels))
    np.testing.assert_array_equal(clf.classes_, seen)  # sorted labels seen in y, as in scikit-learn
    assert clf.predict_proba(X).shape == (len(X), len(seen))
    if isinstance(labels.dtype, pd.CategoricalDtype):
        # A Categorical comes back a Categorical with y's categories (unused included) and order.
        assert isinstance(pred, pd.Categorical)
        assert pred.dtype == labels.dtype
        assert "unused" not in clf.classes_
    elif kind in ("object", "pandas-string"):
        assert pred.dtype == object and all(type(p) is str for p in pred)
    else:
        assert isinstance(pred, np.ndarray) and pred.dtype == labels.dtype
    assert clf.score(X, labels) > 0.8


def test_labels_with_missing_values_raise_naming_the_row(frame, no_training):
    X, y = frame
    for labels in (y.where(y.index != "p5", None), y.where(y.index != "p5", np.nan).astype("string")):
        with pytest.raises(ValueError, match=r"1 missing label.*row 'p5' \(position 5\)"):
            fast().fit(X, labels)
    codes = pd.Series(np.arange(len(X)) % 4, index=X.index, dtype="float").where(y.index != "p8")
    with pytest.raises(ValueError, match=r"missing label.*row 'p8'"):
        fast().fit(X, codes)
    assert no_training == []


@pytest.mark.parametrize(
    "kind, class_weight, expected",
    [
        ("object", {"red-square": 4.0, "blue-circle": 0.5}, [0.5, 1, 1, 4]),
        ("int32", {3: 4.0, np.int64(0): 0.5}, [0.5, 1, 1, 4]),
        ("bool", {True: 3.0}, [1, 3]),
        ("categorical", {"red-square": 4.0}, [1, 1, 1, 4]),
    ],
)
def test_class_weight_dict_is_keyed_by_the_labels_of_y(frame, kind, class_weight, expected):
    X, y = frame
    clf = fast(max_epochs=1, class_weight=class_weight).fit(X, _labels(kind, y))
    np.testing.assert_allclose(clf.net_.criterion_.weight.numpy(), expected)


@pytest.mark.parametrize(
    "class_weight, match",
    [
        ({"red-square": 2.0, "purple-blob": 3.0}, r"not classes of y: \['purple-blob'\]; the classes are \['blue-c"),
        ({0: 2.0}, r"not classes of y: \[0\]"),
        ({"red-square": -1.0}, r"class_weight\['red-square'\] must be a finite number >= 0"),
        ("auto", "class_weight must be None, 'balanced' or a dict"),
    ],
)
def test_bad_class_weight_raises_before_training(frame, class_weight, match, no_training):
    X, y = frame
    with pytest.raises(ValueError, match=match):
        fast(class_weight=class_weight).fit(X, y)
    assert no_training == []


def test_class_weight_on_imbalanced_classes(shapes640):
    """One class is rare (about 7% of training rows); weights reach the loss and the rare class is learned."""
    train, test = shapes640
    rare = "red-circle"
    train = train[(train["label"] != rare) | (np.arange(len(train)) % 4 == 0)].reset_index(drop=True)
    assert 0.05 < (train["label"] == rare).mean() < 0.1
    X_train, X_test, y_test = train.drop(columns="label"), test.drop(columns="label"), test["label"].to_numpy()

    for class_weight in ("balanced", {rare: 4.0}):
        clf = fast(image=ImageEncoder("pixels", image_size=16), max_epochs=40, class_weight=class_weight)
        pred = clf.fit(X_train, train["label"]).predict(X_test)
        weight = clf.net_.criterion_.weight.numpy()
        if class_weight == "balanced":
            counts = train["label"].value_counts().reindex(clf.classes_).to_numpy()
            np.testing.assert_allclose(weight, len(train) / (len(counts) * counts), rtol=1e-6)
        else:
            np.testing.assert_allclose(weight, np.where(clf.classes_ == rare, 4.0, 1.0))
        assert (pred[y_test == rare] == rare).mean() >= 0.6
        assert (pred == y_test).mean() >= 0.8


# -- nothing a user gave is dropped silently -----------------------------------------------


def test_ignored_columns_warn_except_the_label(shapes_df):
    df = shapes_df
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        clf = fast(max_epochs=1).fit(df, df["label"])  # the label inside X, as in the design example
    assert clf.ignored_columns_ == ["label"]
    assert not [m for m in _messages(record) if "ignores" in m]

    extra = df.assign(sku=[f"A{i}" for i in range(len(df))], price=np.arange(len(df), dtype=float))
    warned = r"ignores the other columns of X: \['sku', 'price'\].*image_col= and text_col="
    with pytest.warns(UserWarning, match=warned) as record:
        clf = fast(max_epochs=1).fit(extra, extra["label"])
    assert sorted(clf.ignored_columns_) == ["label", "price", "sku"]
    assert all("'label'" not in m for m in _messages(record))

    # A label in X that is not this y (here y is derived from it) is a column the model ignores: say so.
    with pytest.warns(UserWarning, match=r"ignores the other columns of X: \['label'\]"):
        fast(max_epochs=1).fit(df, df["label"].str.startswith("red"))

    # Naming both columns is a deliberate choice: no warning.
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        fast(max_epochs=1, image_col="image_path", text_col="caption").fit(extra, extra["label"])
    assert not [m for m in _messages(record) if "ignores" in m]
