"""Wide tables: several image and text columns, numbers and categories, roles, image_root."""

import os
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from skmm import FusionClassifier, ImageEncoder
from skmm.datasets import make_wide_shapes
from skmm.io.roles import detect_roles
from skmm.io.tabular import CategoricalColumn, NumericColumn
from skmm.registry import fusions

COLUMNS = {"front": "image", "back": "image", "title": "text", "price": "numeric", "brand": "categorical"}


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    return make_wide_shapes(48, random_state=0, directory=tmp_path_factory.mktemp("wide"), image_size=16)


def _clf(**params):
    defaults = dict(columns=COLUMNS, image=ImageEncoder("pixels", image_size=8), text="tfidf", max_epochs=2,
                    dim=8, hidden_dim=8, random_state=0, device="cpu", stacking=None)
    defaults.update(params)
    return FusionClassifier(**defaults)


# -- 1. one modality per column; one encoder per kind, shared ------------------------------


def test_each_column_is_a_modality_named_after_it(wide):
    clf = _clf().fit(wide, wide["label"])
    assert clf.modalities_ == ["front", "back", "title", "price", "brand"]
    assert clf.modality_kinds_ == ["image", "image", "text", "numeric", "categorical"]
    assert clf.column_roles_ == {**COLUMNS, "label": "ignored: not in columns"}
    assert clf.predict_proba(wide).shape == (len(wide), len(clf.classes_))
    # frozen encoder shared by the image columns: one fitted object, one cache
    assert clf.encoder_groups_ == {"front": "front", "back": "front", "title": "title"}
    assert clf.encoders_["front"] is clf.encoders_["back"]


def test_a_shared_trainable_encoder_is_one_set_of_weights(wide):
    image = ImageEncoder("cnn", image_size=16, augment="none", backbone_kwargs={"channels": (4, 8)})
    clf = _clf(image=image, text="gru", max_epochs=1).fit(wide, wide["label"])
    net = clf.net_.module_
    assert net.encoder_of("front") is net.encoder_of("back")
    assert sorted(net.encoders) == ["brand", "front", "price", "title"]  # "back" stores nothing of its own
    n_cnn = sum(p.numel() for p in net.encoder_of("front").parameters())
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in set(net.parameters()))
    assert n_cnn > 0 and not any(k.startswith("encoders.back.") for k in net.state_dict())
    # the trained, shared module encodes both columns through encoders_
    front = clf.encoders_["front"].transform(wide["front"])
    back_as_front = clf.encoders_["back"].transform(wide["front"])
    np.testing.assert_allclose(front, back_as_front, atol=1e-6)


def test_encoders_gives_a_column_its_own_encoder(wide):
    clf = _clf(encoders={"back": ImageEncoder("pixels", image_size=4)}).fit(wide, wide["label"])
    assert clf.encoder_groups_["back"] == "back"
    assert (clf.branches_["front"].width, clf.branches_["back"].width) == (3 * 8 * 8, 3 * 4 * 4)
    with pytest.raises(ValueError, match=r"encoders names \['nope'\].*not image or text columns"):
        _clf(encoders={"nope": "pixels"}).fit(wide, wide["label"])
    with pytest.raises(TypeError, match=r"encoders\['title'\] is a ImageEncoder.*read as text"):
        _clf(encoders={"title": ImageEncoder("pixels")}).fit(wide, wide["label"])


def test_image_col_and_text_col_still_work_and_exclude_columns(wide):
    clf = _clf(columns=None, image_col="front", text_col="title", max_epochs=1)
    with pytest.warns(UserWarning, match=r"ignores the other columns of X: \['back', 'price', 'brand'\]"):
        assert clf.fit(wide, wide["label"]).modalities_ == ["image", "text"]
    assert clf.column_roles_["front"] == "image" and clf.column_roles_["brand"].startswith("ignored")
    with pytest.raises(ValueError, match="either columns= or image_col="):
        _clf(image_col="front").fit(wide, wide["label"])


# -- 2. numbers and categories -------------------------------------------------------------


def test_numeric_columns_are_standardised_with_a_missing_indicator():
    col = NumericColumn("price").fit(pd.Series([1.0, np.nan, 3.0, 5.0]))
    out = col.transform(pd.Series([1.0, np.nan, 3.0, 5.0]))
    assert out.shape == (4, 2)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-6)
    assert out[1, 0] == pytest.approx(0.0, abs=1e-6)  # imputed with the mean
    assert out[1, 1] > 0 > out[0, 1]  # the indicator says which row was missing
    assert NumericColumn("n").fit(pd.Series([1, 2, 3])).width == 1  # no missing value in fit: no indicator


def test_unseen_categories_map_to_the_unknown_embedding(wide):
    col = CategoricalColumn("brand").fit(pd.Series(["a", "b", True, None]))
    codes, present = col.transform(pd.Series(["b", "zzz", "True", np.nan]))
    assert list(col.categories_) == ["True", "a", "b"]  # compared as strings, sorted
    assert codes.tolist() == [3, 0, 1, 0] and present.tolist() == [True, True, True, False]
    clf = _clf().fit(wide, wide["label"])
    novel = wide.assign(brand="never-seen")
    proba = clf.predict_proba(novel)
    assert np.isfinite(proba).all() and proba.shape == (len(wide), len(clf.classes_))
    inputs = clf.model_inputs(novel)
    assert (inputs["brand"] == 0).all() and inputs["brand_mask"].all()  # "unknown", not "missing"
    assert clf.net_.module_.encoder_of("brand").embedding.num_embeddings == 4 + 1


def test_a_purely_tabular_frame_is_a_tabular_classifier():
    rng = np.random.default_rng(0)
    n = 60
    X = pd.DataFrame({
        "size": rng.normal(size=n),
        "colour": pd.Categorical(rng.choice(["red", "blue"], n)),
        "big": rng.choice([True, False], n),
    })
    y = np.where((X["size"] > 0) ^ (X["colour"] == "red"), "a", "b")
    clf = FusionClassifier(columns="auto", max_epochs=40, lr=0.01, dim=16, hidden_dim=16, random_state=0,
                           device="cpu").fit(X, y)
    assert clf.column_roles_ == {"size": "numeric", "colour": "categorical", "big": "categorical"}
    assert clf.score(X, y) > 0.85  # an interaction of a number and a category, learned


@pytest.mark.parametrize(
    "columns, X_change, error, match",
    [
        ({**COLUMNS, "weight": "numeric"}, None, ValueError, r"columns names \['weight'\], which X does not have"),
        ({**COLUMNS, "price": "number"}, None, ValueError, r"columns\['price'\] = 'number' is not a role"),
        (COLUMNS, {"price": "cheap"}, TypeError, r"column 'price' is numeric but row 0 holds 'cheap'"),
        (COLUMNS, {"title": [["a", "b"]]}, TypeError, r"column 'title' is read as text but row 0.*holds a list"),
        (COLUMNS, {"price": np.nan}, ValueError, r"column 'price' has no value in any row"),
        (COLUMNS, {"brand": None}, ValueError, r"column 'brand' has no value in any row"),
        (COLUMNS, {"title": None}, ValueError, r"column 'title' \(text\) has no value in any row"),
        (COLUMNS, {"back": ""}, ValueError, r"column 'back' \(image\) has no value in any row"),
    ],
)
def test_bad_wide_input_names_the_column_before_training(wide, no_training, columns, X_change, error, match):
    X = wide.copy()
    for column, value in (X_change or {}).items():
        if isinstance(value, list):
            X[column] = X[column].astype(object)
            X.at[0, column] = value[0]
        elif value == "cheap":
            X[column] = X[column].astype(object)
            X.at[0, column] = value
        else:
            X[column] = value
    with pytest.raises(error, match=match):
        _clf(columns=columns).fit(X, wide["label"])
    assert no_training == []


def test_predict_checks_the_columns_read_in_fit(wide):
    clf = _clf(max_epochs=1).fit(wide, wide["label"])
    with pytest.raises(ValueError, match=r"\['price'\] \(read in fit, see column_roles_\) missing from X"):
        clf.predict(wide.drop(columns="price"))
    assert clf.predict(wide.drop(columns="label")).shape == (len(wide),)


# -- 5. roles detected ---------------------------------------------------------------------


def test_roles_are_detected_with_reasons(wide, capsys):
    X = wide.assign(sku=[f"SKU{i}" for i in range(len(wide))], row=np.arange(len(wide)),
                    on_sale=np.arange(len(wide)) % 2 == 0, empty=np.nan)
    roles, ignored = detect_roles(X, wide["label"])
    assert roles == {**COLUMNS, "on_sale": "categorical"}
    assert ignored == {"label": "equal to y (the target)", "sku": "identifier (every value distinct)",
                       "row": "identifier (distinct consecutive integers)", "empty": "no values (all missing)"}
    dated = X.assign(listed=pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(X)) % 3, unit="D"))
    assert detect_roles(dated, wide["label"])[1]["listed"].startswith("dates or durations")  # left out, said why
    with pytest.warns(UserWarning, match=r"ignores columns of X: 'sku' \(identifier"):
        clf = _clf(columns="auto", verbose=1, max_epochs=1).fit(X, wide["label"])
    assert clf.column_roles_["sku"] == "ignored: identifier (every value distinct)"
    assert clf.column_roles_["front"] == "image" and clf.modalities_[:2] == ["front", "back"]
    out = capsys.readouterr().out
    assert "FusionClassifier reads front=image, back=image, title=text" in out and "ignores label" in out


def test_detection_is_the_default_when_no_roles_are_given(wide, capsys):
    from skmm import FusionRegressor

    X = wide.assign(sku=[f"SKU{i}" for i in range(len(wide))])
    with pytest.warns(UserWarning, match=r"ignores columns of X: 'sku' \(identifier"):
        clf = _clf(columns=None, verbose=1, max_epochs=1).fit(X, wide["label"])
    assert clf.layout_ == "wide" and clf.modalities_ == list(COLUMNS)
    assert clf.column_roles_ == {**COLUMNS, "label": "ignored: equal to y (the target)",
                                 "sku": "ignored: identifier (every value distinct)"}
    assert clf.encoder_groups_ == {"front": "front", "back": "front", "title": "title"}  # one encoder per kind
    assert "FusionClassifier reads front=image, back=image, title=text, price=numeric, brand=categorical" in (
        capsys.readouterr().out)
    with pytest.warns(UserWarning, match="'sku'"):
        auto = _clf(columns="auto", max_epochs=1).fit(X, wide["label"])
    np.testing.assert_allclose(clf.predict_proba(X), auto.predict_proba(X), atol=1e-6)  # the same model as "auto"
    with pytest.raises(ValueError, match=r"\['price'\].*missing from X"):
        clf.predict(X.drop(columns="price"))
    # a regressor reads the table the same way; its target column is left out
    reg = FusionRegressor(image=ImageEncoder("pixels", image_size=8), text="tfidf", max_epochs=1, dim=8,
                          hidden_dim=8, random_state=0, device="cpu").fit(wide, wide["price"])
    assert reg.column_roles_["price"] == "ignored: equal to y (the target)"
    assert reg.modalities_ == ["front", "back", "title", "brand", "label"]
    # one image column of several pictures per cell (and a text) is a wide table too: its pictures pooled
    gallery = _gallery(wide)[["gallery", "title", "label"]]
    clf = _clf(columns=None, max_epochs=1).fit(gallery, wide["label"])
    assert clf.modalities_ == ["gallery", "title"] and clf.pictures_ == {"gallery": "mean"}


def test_ambiguous_short_strings_raise_naming_the_column_and_the_parameter(wide, no_training):
    X = wide.assign(code=[f"c{i % 30}" for i in range(len(wide))])  # one word, mostly distinct
    with pytest.raises(ValueError, match=r"column 'code' is ambiguous.*columns="):
        _clf(columns="auto").fit(X, wide["label"])
    assert no_training == []


# -- 4. every fusion over N modalities ----------------------------------------------------


@pytest.mark.parametrize("name", ["concat", "sum", "gated", "attention", "late", "bilinear", "tensor", "film",
                                  "image", "text"])
def test_every_fusion_takes_n_modalities_and_their_kinds(name):
    names = ["front", "back", "title", "price", "brand"]
    kinds = ["image", "image", "text", "numeric", "categorical"]
    fusion = fusions.get(name)(names, 8, 3, kinds=kinds)
    out = fusion([torch.randn(4, 8) for _ in names])
    assert out.shape == (4, fusion.out_dim)
    assert fusion.kinds == kinds
    if name in ("image", "text"):
        assert fusion.used_modalities == ([0, 1] if name == "image" else [2])


def test_film_and_tensor_rules_for_many_modalities():
    film = fusions.get("film")(["a", "b", "c"], 8, 2, kinds=["image", "image", "numeric"])
    assert film.targets == [0, 1] and len(film.film) == 2  # each image modulated by the non-image tokens
    zs = [torch.randn(3, 8) for _ in range(3)]
    changed = [zs[0], zs[1], zs[2] + 1]
    assert not torch.allclose(film(zs)[:, :8], film(changed)[:, :8])  # the condition moves the image part
    with pytest.raises(ValueError, match=r"fusion 'tensor': 13 modalities.*bilinear"):
        fusions.get("tensor")([f"m{i}" for i in range(13)], 8, 2)


def test_plugin_fusions_old_and_new_get_what_they_take(wide):
    seen = {}

    def old_style(modalities, dim, n_classes):
        seen["old"] = list(modalities)
        return fusions.get("sum")(modalities, dim, n_classes)

    def new_style(modalities, dim, n_classes, kinds=None):
        seen["new"] = (list(modalities), list(kinds))
        return fusions.get("sum")(modalities, dim, n_classes, kinds=kinds)

    fusions.register("test-old-style", old_style)
    fusions.register("test-new-style", new_style)
    try:
        _clf(fusion="test-old-style", max_epochs=1).fit(wide, wide["label"])
        _clf(fusion="test-new-style", max_epochs=1).fit(wide, wide["label"])
    finally:
        fusions.unregister("test-old-style")
        fusions.unregister("test-new-style")
    assert seen["old"] == list(COLUMNS)
    assert seen["new"] == (list(COLUMNS), list(COLUMNS.values()))


# -- 6. image_root -------------------------------------------------------------------------


def test_image_root_resolves_relative_paths_and_moves_with_the_data(wide, tmp_path):
    first = tmp_path / "first"
    shutil.copytree(os.path.dirname(wide["front"][0]), first)
    relative = wide.assign(front=[os.path.basename(p) for p in wide["front"]],
                           back=[os.path.basename(p) for p in wide["back"]])
    clf = _clf(image_root=str(first)).fit(relative, wide["label"])
    expected = clf.predict_proba(relative)
    np.testing.assert_allclose(clf.predict_proba(wide), expected, atol=1e-6)  # absolute paths as they are
    moved = tmp_path / "moved"
    shutil.move(first, moved)
    with pytest.raises(Exception, match="front"):  # the old root is gone: a missing file, naming the column
        clf.predict_proba(relative)
    np.testing.assert_allclose(clf.set_params(image_root=str(moved)).predict_proba(relative), expected, atol=1e-6)


# -- 3. several pictures in one cell --------------------------------------------------------


def _gallery(wide):
    cells = []
    for i, (front, back) in enumerate(zip(wide["front"], wide["back"])):
        cells.append([front, back] if i % 3 == 0 else ([front] if i % 3 == 1 else f"{front};{back}"))
    cells[5] = []  # no picture: a missing modality for that row
    return wide.assign(gallery=cells)


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_a_cell_of_several_pictures_is_encoded_one_by_one_and_pooled(wide, pooling):
    X = _gallery(wide)
    clf = _clf(columns={"gallery": "image", "title": "text"}, picture_pooling=pooling).fit(X, wide["label"])
    assert clf.pictures_ == {"gallery": pooling}
    inputs = clf.model_inputs(X)
    assert inputs["gallery"].shape == (len(X), 2, 3 * 8 * 8)
    assert inputs["gallery_items"].sum(axis=1).tolist()[:6] == [2, 1, 2, 2, 1, 0]
    assert inputs["gallery_mask"].tolist()[5] is False and inputs["gallery_mask"].sum() == len(X) - 1
    # the pictures of row 0 are the front and back pictures, each encoded as a single picture would be
    single = clf.encoders_["gallery"].transform(X["front"].iloc[:1])
    np.testing.assert_allclose(inputs["gallery"][0, 0], single[0], atol=1e-6)
    net = clf.net_.module_
    tensors = {k: torch.as_tensor(v) for k, v in inputs.items() if k.startswith("gallery")}
    pooled = net._pool("gallery", tensors["gallery"], tensors["gallery_items"])
    if pooling == "mean":
        np.testing.assert_allclose(pooled[0].numpy(), inputs["gallery"][0].mean(axis=0), atol=1e-5)
        np.testing.assert_allclose(pooled[1].numpy(), inputs["gallery"][1, 0], atol=1e-5)  # padding left out
    assert "gallery" in net.pool_scores if pooling == "attention" else not len(net.pool_scores)
    assert clf.predict(X).shape == (len(X),)


def test_a_list_in_a_single_picture_column_at_predict_names_the_column(wide):
    clf = _clf(max_epochs=1).fit(wide, wide["label"])
    X = wide.astype({"front": object})
    X.at[0, "front"] = [wide["front"][0], wide["back"][0]]
    with pytest.raises(TypeError, match=r"column 'front' holds several pictures in a cell"):
        clf.predict(X)


# -- 9. composition: search, pipelines, save/load and joblib in a fresh process ---------------

LOAD = """
import json, sys
import joblib, numpy as np, pandas as pd, skmm
folder = sys.argv[1]
X = pd.read_pickle(f"{folder}/X.pkl")
out = {}
for name, model in (("skmm", skmm.load(f"{folder}/model")), ("joblib", joblib.load(f"{folder}/model.joblib"))):
    np.save(f"{folder}/{name}.npy", model.predict_proba(X))
    net = model.net_.module_
    out[name] = [net.encoder_of("front") is net.encoder_of("back"), model.column_roles_ == model.column_roles_,
                 sorted(model.pictures_.items())]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_wide_models_search_and_round_trip_in_a_fresh_process(wide, tmp_path):
    import subprocess
    import sys

    import joblib
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    import skmm

    X = _gallery(wide)
    grid = {"fusionclassifier__fusion": ["concat", "attention"],
            "fusionclassifier__image": [ImageEncoder("pixels", image_size=8), ImageEncoder("pixels", image_size=4)]}
    search = GridSearchCV(make_pipeline(_clf(max_epochs=1)), grid, cv=2).fit(X, wide["label"])
    assert len(search.cv_results_["params"]) == 4 and np.isfinite(search.cv_results_["mean_test_score"]).all()

    image = ImageEncoder("cnn", image_size=16, augment="none", backbone_kwargs={"channels": (4, 8)})
    clf = _clf(columns={**COLUMNS, "gallery": "image"}, image=image, text="gru", fusion="gated",
               picture_pooling="attention").fit(X, wide["label"])
    expected = clf.predict_proba(X)
    skmm.save(clf, tmp_path / "model")
    joblib.dump(clf, tmp_path / "model.joblib")
    X.to_pickle(tmp_path / "X.pkl")
    (tmp_path / "load.py").write_text(LOAD)
    done = subprocess.run([sys.executable, str(tmp_path / "load.py"), str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    report = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    for name in ("skmm", "joblib"):
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), expected, atol=1e-5)
        assert report[name] == [True, True, [["gallery", "attention"]]]  # still one shared module after loading


# -- 7. one encoder over several columns ----------------------------------------------------


def test_encoders_take_several_columns_one_block_each(wide, tmp_path):
    from sklearn.compose import make_column_transformer

    import skmm
    from skmm import TextEncoder

    image = ImageEncoder("pixels", image_size=4).fit(wide[["front", "back"]])
    out = image.transform(wide[["front", "back"]])
    width = 3 * 4 * 4
    assert out.shape == (len(wide), 2 * width) and image.n_features_in_ == 2
    np.testing.assert_allclose(out[:, width:], ImageEncoder("pixels", image_size=4).fit_transform(wide["back"]))
    names = image.get_feature_names_out()
    assert names[0] == "front_imageencoder0" and names[width] == "back_imageencoder0"
    with pytest.raises(ValueError, match="feature names"):
        image.transform(wide[["back", "front"]])  # the columns of fit, in their order

    texts = wide.assign(note=wide["brand"] + " item")
    ct = make_column_transformer(  # one entry per kind covers 2 image + 2 text columns
        (ImageEncoder("pixels", image_size=4), ["front", "back"]),
        (TextEncoder("tfidf"), ["title", "note"]),
    ).set_output(transform="pandas")
    frame = ct.fit_transform(texts)
    text = ct.named_transformers_["textencoder"]
    vocab = text.backbone_.vectorizer.vocabulary_
    assert {"acme", "item", "red"} <= set(vocab)  # one vocabulary, learned from both columns
    assert frame.shape[1] == 2 * width + 2 * len(vocab)
    text_names = text.get_feature_names_out()
    assert list(text_names[:2]) == ["title_textencoder0", "title_textencoder1"]
    assert text_names[len(vocab)] == "note_textencoder0"
    assert "textencoder__note_textencoder0" in frame.columns and "imageencoder__back_imageencoder0" in frame.columns
    np.testing.assert_allclose(  # each block is its column's features under the shared vocabulary
        frame.filter(like="textencoder__note_").to_numpy(), text.backbone_.prepare(list(texts["note"])), atol=1e-6
    )
    # joining the texts stays available: one block
    joined = TextEncoder("tfidf", per_column=False).fit(texts[["title", "note"]])
    assert joined.transform(texts[["title", "note"]]).shape[1] == len(vocab)
    assert joined.get_feature_names_out()[0] == "textencoder0"
    # a one-column 2-D input (a ColumnTransformer given ["title"]) gives the features it always gave
    one = make_column_transformer((TextEncoder("tfidf"), ["title"])).fit(texts)
    np.testing.assert_allclose(one.transform(texts), TextEncoder("tfidf").fit_transform(texts["title"]))
    assert one.get_feature_names_out()[0] == "textencoder__textencoder0"
    # and a FusionClassifier trains on the encoded wide table
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(ct, FusionClassifier(max_epochs=2, dim=8, hidden_dim=8, random_state=0, device="cpu"))
    model.fit(texts, wide["label"])
    assert model[-1].layout_ == "blocks" and sorted(model[-1].modalities_) == ["image", "text"]
    assert model[-1].n_features_in_ == frame.shape[1]
    assert set(model.predict(texts)) <= set(wide["label"])
    skmm.save(image, tmp_path / "image")
    np.testing.assert_allclose(skmm.load(tmp_path / "image").transform(wide[["front", "back"]]), out)


def test_the_command_line_fits_and_predicts_a_wide_table_with_relative_paths(wide, tmp_path):
    from skmm.cli import main

    folder = tmp_path / "data"
    shutil.copytree(os.path.dirname(wide["front"][0]), folder / "pictures")
    table = wide.assign(front=["pictures/" + os.path.basename(p) for p in wide["front"]],
                        back=["pictures/" + os.path.basename(p) for p in wide["back"]])
    table.to_csv(folder / "wide.csv", index=False)
    spec = ",".join(f"{c}={r}" for c, r in COLUMNS.items())
    fast = ["--image-backbone", "pixels", "--text-backbone", "tfidf", "--param", "max_epochs=1", "dim=8", "-q"]
    assert main(["fit", str(folder / "wide.csv"), "--target", "label", "--columns", spec, *fast,
                 "-o", str(tmp_path / "m.joblib")]) == 0
    assert main(["predict", str(tmp_path / "m.joblib"), str(folder / "wide.csv"), "-q",
                 "-o", str(tmp_path / "p.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(wide)
    assert main(["fit", str(folder / "wide.csv"), "--target", "label", "--columns", "front:image", *fast,
                 "-o", str(tmp_path / "n.joblib")]) == 2


def test_category_embeddings_count_as_features_for_training_threads(wide, monkeypatch):
    import skmm.estimators.base as base

    seen = []
    real = base.training_threads
    monkeypatch.setattr(base, "training_threads", lambda **kw: seen.append(kw["trainable"]) or real(**kw))
    _clf(max_epochs=1).fit(wide, wide["label"])  # frozen pixels and tf-idf, a number, a category embedding
    _clf(max_epochs=1, text="gru").fit(wide, wide["label"])  # a trainable text branch
    assert seen == [False, True]
