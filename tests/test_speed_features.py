"""Speed features: embeddings computed once, parallel streaming decode, progress output."""

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import weakref

import joblib
import numpy as np
import pytest
import torch
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

import skmm.encoders.image as image_encoder
from skmm.encoders import BaseEncoder
import skmm.io.images as images
from skmm import FusionClassifier, ImageEncoder, TextEncoder
from skmm.cache import get_cache
from skmm.backbones.cnn import SmallCNN

FUSIONS = ["concat", "gated", "attention", "late"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def frozen_cnn(**params):
    """A seeded random-weight CNN that FusionClassifier must not train."""
    defaults = dict(
        image_size=16, trainable=False, random_state=0, device="cpu", backbone_kwargs={"channels": (4, 8)}
    )
    defaults.update(params)
    return ImageEncoder("cnn", **defaults)


def quick_clf(image, **params):
    defaults = dict(
        image=image, text="tfidf", max_epochs=2, dim=16, hidden_dim=16, random_state=0, device="cpu"
    )
    defaults.update(params)
    return FusionClassifier(**defaults)


@pytest.fixture
def forward_rows(monkeypatch):
    """Count the rows every SmallCNN forward pass sees."""
    seen = []
    original = SmallCNN.forward

    def counting(self, x):
        seen.append(int(x.shape[0]))
        return original(self, x)

    monkeypatch.setattr(SmallCNN, "forward", counting)
    return seen


@pytest.fixture
def fresh_memory_cache():
    get_cache().clear()
    yield get_cache()
    get_cache().clear()


# ------------------------------------------------------------------ 1. embedding cache


def test_grid_search_encodes_each_image_once(shapes_df, forward_rows, fresh_memory_cache):
    df = shapes_df
    search = GridSearchCV(quick_clf(frozen_cnn()), {"fusion": FUSIONS}, cv=3).fit(df, df["label"])
    # 4 fusions x 3 folds + the refit, each encoding its training and test rows,
    # and yet every image went through the network exactly once, and so did its
    # one photometric view (augment="auto": drawn with a fixed seed, cached like it)
    assert sum(forward_rows) == 2 * df["image_path"].nunique() == 2 * len(df)
    cached_scores = search.cv_results_["mean_test_score"]

    forward_rows.clear()
    uncached = GridSearchCV(quick_clf(frozen_cnn(cache=False)), {"fusion": FUSIONS}, cv=3).fit(df, df["label"])
    fits = len(FUSIONS) * 3
    # without the cache every fit encodes its training and test rows, and the views of its training rows
    assert sum(forward_rows) == (fits + 1) * len(df) + fits * (len(df) - len(df) // 3) + len(df)
    np.testing.assert_array_equal(uncached.cv_results_["mean_test_score"], cached_scores)


def test_trainable_encoder_is_never_served_from_the_cache(shapes_df, forward_rows, fresh_memory_cache):
    df = shapes_df.iloc[:40]
    clf = quick_clf(frozen_cnn(trainable=True), max_epochs=1).fit(df, df["label"])
    forward_rows.clear()
    clf.predict(df)
    clf.predict(df)
    assert sum(forward_rows) == 2 * len(df)  # trained weights: computed every time


_ENCODE_IN_A_PROCESS = textwrap.dedent(
    """
    import json, sys
    import numpy as np, pandas as pd
    from skmm import ImageEncoder
    from skmm.cache import get_cache
    paths, cache_dir, out = sys.argv[1:4]
    paths = json.load(open(paths))
    enc = ImageEncoder("cnn", image_size=16, random_state=0, cache_dir=cache_dir, device="cpu",
                       backbone_kwargs={"channels": (4, 8)})
    features = enc.fit_transform(pd.Series(paths, name="image_path"))
    np.save(out, features)
    store = get_cache(cache_dir)
    print(json.dumps({"misses": store.misses, "disk_hits": store.disk_hits}))
    """
)


@pytest.mark.slow  # two fresh Python processes, each importing torch
def test_disk_cache_is_shared_across_processes(shapes_df, tmp_path):
    paths_file = tmp_path / "paths.json"
    paths_file.write_text(json.dumps(list(shapes_df["image_path"])))
    cache_dir = tmp_path / "cache"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)

    def run(name):
        out = tmp_path / f"{name}.npy"
        proc = subprocess.run(
            [sys.executable, "-c", _ENCODE_IN_A_PROCESS, str(paths_file), str(cache_dir), str(out)],
            capture_output=True, text=True, env=env, timeout=300, check=True,
        )
        return json.loads(proc.stdout.strip().splitlines()[-1]), np.load(out)

    first, features = run("first")
    second, again = run("second")
    assert first == {"misses": len(shapes_df), "disk_hits": 0}
    assert second == {"misses": 0, "disk_hits": len(shapes_df)}
    np.testing.assert_array_equal(features, again)


def test_pipeline_memory_skips_the_second_fit(shapes_df, tmp_path, monkeypatch):
    df = shapes_df
    fits = []
    original_fit = BaseEncoder.fit

    def counting_fit(self, X, y=None):
        fits.append(type(self).__name__)
        return original_fit(self, X, y)

    monkeypatch.setattr(BaseEncoder, "fit", counting_fit)

    def pipeline():
        features = make_column_transformer(
            (frozen_cnn(cache=False), "image_path"),
            (TextEncoder("tfidf", cache=False), "caption"),
        )
        return make_pipeline(features, LogisticRegression(max_iter=300), memory=joblib.Memory(tmp_path, verbose=0))

    first = pipeline().fit(df, df["label"])
    assert sorted(fits) == ["ImageEncoder", "TextEncoder"]
    fits.clear()
    second = pipeline().fit(df, df["label"])
    assert fits == []  # the fitted ColumnTransformer came from joblib.Memory
    np.testing.assert_array_equal(second.predict_proba(df), first.predict_proba(df))
    # The encoders hash the same before and after fitting a clone: only parameters count.
    assert joblib.hash(frozen_cnn()) == joblib.hash(frozen_cnn())


# ------------------------------------------------------------------ 2. parallel loading


@pytest.mark.parametrize(
    "cores, n, parent, expected",
    [
        (1, 1000, False, 0),  # one core: decode in this process
        (2, 1000, False, 2),
        (16, 1000, False, 4),  # capped
        (16, 64, False, 0),  # one batch: a worker could only add start-up time
        (16, 1000, True, 0),  # inside a joblib / multiprocessing worker
    ],
)
def test_auto_num_workers(monkeypatch, cores, n, parent, expected):
    monkeypatch.setattr(images.loading, "available_cores", lambda: cores)
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object() if parent else None)
    assert images.resolve_num_workers("auto", n, 64) == expected
    assert images.resolve_num_workers(3, n, 64) == 3


def test_num_workers_default_and_validation(shapes_df):
    assert ImageEncoder().num_workers == "auto"
    with pytest.raises(ValueError, match="num_workers must be 'auto' or a non-negative integer"):
        ImageEncoder("pixels", num_workers=-1).fit(shapes_df["image_path"])
    with pytest.raises(ValueError, match="num_workers"):
        ImageEncoder("pixels", num_workers="many").fit(shapes_df["image_path"])


def test_auto_workers_decode_in_parallel_with_one_torch_thread(shapes_df, monkeypatch):
    paths = list(shapes_df["image_path"])
    threads_seen = multiprocessing.Array("i", len(paths))
    original = images.ImageFolderDataset.__getitem__

    def recording(self, i):
        threads_seen[i] = torch.get_num_threads() * 1000 + os.getpid() % 1000
        return original(self, i)

    monkeypatch.setattr(images.loading, "available_cores", lambda: 2)
    monkeypatch.setattr(images.ImageFolderDataset, "__getitem__", recording)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the main process would hand each worker two threads
    try:
        enc = ImageEncoder("pixels", image_size=8, batch_size=16, cache=False)
        parallel = enc.fit_transform(shapes_df["image_path"])
    finally:
        torch.set_num_threads(before)
    seen = np.asarray(threads_seen[:])
    assert set(seen // 1000) == {1}  # one torch thread in every decoding worker
    assert os.getpid() % 1000 not in set(seen % 1000)  # nothing decoded in this process
    assert len(set(seen % 1000)) == 2  # by two workers
    serial = ImageEncoder("pixels", image_size=8, batch_size=16, num_workers=0, cache=False)
    np.testing.assert_array_equal(serial.fit_transform(shapes_df["image_path"]), parallel)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_transform_streams_a_bounded_number_of_decoded_batches(tmp_path, monkeypatch, num_workers):
    from PIL import Image

    batch_size = 4
    path = tmp_path / "one.png"
    Image.new("RGB", (24, 24), (10, 200, 30)).save(path)
    decoded = multiprocessing.Value("i", 0)
    original_getitem = images.ImageFolderDataset.__getitem__

    def counting_getitem(self, i):
        with decoded.get_lock():
            decoded.value += 1
        return original_getitem(self, i)

    monkeypatch.setattr(images.ImageFolderDataset, "__getitem__", counting_getitem)
    original_stream = image_encoder.load_images_parallel

    def peak_pixels_alive(n):
        """Most decoded images alive at once: yielded but not freed, or decoded ahead of the consumer."""
        decoded.value = 0
        alive, peak, handed = [0], [0], [0]

        def released():
            alive[0] -= 1

        def watched(*args, **kwargs):
            for start, pixels, present in original_stream(*args, **kwargs):
                alive[0] += 1
                weakref.finalize(pixels, released)
                # decoded, not yet handed over (this batch included); batches come in the order they are decoded
                ahead = decoded.value - handed[0]
                handed[0] += len(present)
                peak[0] = max(peak[0], ahead + (alive[0] - 1) * batch_size)
                yield start, pixels, present

        monkeypatch.setattr(image_encoder, "load_images_parallel", watched)
        enc = ImageEncoder("pixels", image_size=8, batch_size=batch_size, num_workers=num_workers, cache=False)
        features = enc.fit_transform([str(path)] * n)
        assert features.shape == (n, 3 * 8 * 8)
        return peak[0]

    small, large = peak_pixels_alive(4 * batch_size), peak_pixels_alive(40 * batch_size)
    # The DataLoader keeps at most 2 batches per worker in flight, plus the one in use.
    bound = (2 * num_workers + 2) * batch_size
    assert small <= bound and large <= bound
    if num_workers == 0:
        # The batch being handed over and the previous one, still held by the
        # consumer's loop variable until the handover completes.
        assert small == large == 2 * batch_size


# ------------------------------------------------------------------ 3. progress output


def test_verbose_shows_encoding_bars_and_an_epoch_table(shapes_df, capfd, fresh_memory_cache):
    df = shapes_df.iloc[:48]
    quick_clf(frozen_cnn(num_workers=0), max_epochs=3, verbose=1).fit(df, df["label"])
    out, err = capfd.readouterr()
    header = next(line for line in out.splitlines() if "epoch" in line)
    assert "train_loss" in header and "dur" in header
    epochs = [line.split()[0] for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert epochs == ["1", "2", "3"]
    assert "ImageEncoder(cnn)" in err and f"{len(df)}/{len(df)}" in err


def test_verbose_0_is_silent(shapes_df, capfd, fresh_memory_cache):
    df = shapes_df.iloc[:48]
    clf = quick_clf(frozen_cnn(num_workers=0), max_epochs=3, verbose=0).fit(df, df["label"])
    clf.predict(df)
    ImageEncoder("pixels", image_size=8).fit_transform(df["image_path"])
    assert capfd.readouterr() == ("", "")


def test_image_encoder_verbose_bar(shapes_df, capfd):
    ImageEncoder("pixels", image_size=8, verbose=1, cache=False).fit_transform(shapes_df["image_path"])
    err = capfd.readouterr().err
    assert "ImageEncoder(pixels)" in err and f"{len(shapes_df)}/{len(shapes_df)}" in err


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loading_leaves_the_global_torch_rng_alone(shapes_df, num_workers):
    # Otherwise a cache hit (no loading) and a miss would train different nets.
    state = torch.random.get_rng_state()
    ImageEncoder("pixels", image_size=8, batch_size=16, num_workers=num_workers, cache=False).fit_transform(
        shapes_df["image_path"]
    )
    assert torch.equal(torch.random.get_rng_state(), state)


def test_trainable_cnn_grid_search_decodes_each_file_once(shapes_df, monkeypatch):
    """Trainable branches need pixels: decoded once, then reused by every fold and grid point."""
    from sklearn.model_selection import GridSearchCV

    import skmm.io.images as images
    from skmm import FusionClassifier, ImageEncoder
    from skmm.cache import get_cache

    get_cache(None).clear()
    decoded = []
    real = images.load_image
    monkeypatch.setattr(images.dataset, "load_image", lambda path, *a, **k: decoded.append(path) or real(path, *a, **k))
    df = shapes_df.iloc[:48]
    clf = FusionClassifier(
        image=ImageEncoder("cnn", image_size=16, num_workers=0, backbone_kwargs={"channels": (4, 8)}),
        text="tfidf", max_epochs=1, dim=8, hidden_dim=8, random_state=0, device="cpu",
    )
    search = GridSearchCV(clf, {"fusion": ["concat", "gated"]}, cv=2).fit(df, df["label"])
    assert search.best_estimator_.encoders_["image"].is_trainable_
    assert sorted(decoded) == sorted(df["image_path"])  # 4 fits + refit, each file decoded once

    decoded.clear()
    no_cache = clf.set_params(image=ImageEncoder("cnn", image_size=16, num_workers=0, cache=False,
                                                 backbone_kwargs={"channels": (4, 8)}))
    no_cache.fit(df, df["label"]).predict(df)
    assert len(decoded) == 2 * len(df)  # fit and predict decode again without the cache
