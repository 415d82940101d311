"""Processes sharing a disk cache compute each row once; an unusable cache_dir fails at fit."""

import threading
import time

import numpy as np
import pytest

from skmm import FusionClassifier, ImageEncoder
from skmm.cache import DiskCache, check_cache_dir, text_key


def test_a_second_cache_waits_for_the_rows_another_one_computes(tmp_path):
    keys = [text_key(str(i)) for i in range(30)]
    calls, results = {"first": [], "second": []}, {}

    def compute_as(name, delay):
        def compute(positions):
            calls[name].append(list(positions))
            time.sleep(delay)
            return np.tile(np.arange(len(positions), dtype=np.float32)[:, None], (1, 4)) + np.asarray(positions)[:, None]
        return compute

    def run(name, delay, keys):
        results[name] = DiskCache(tmp_path).get_or_compute("fp", keys, compute_as(name, delay))

    first = threading.Thread(target=run, args=("first", 0.5, keys[:20]))
    first.start()
    time.sleep(0.1)  # the first one holds the lock, computing
    run("second", 0.0, keys)  # another instance, as in another process
    first.join()
    # the second waited, read the 20 rows the first stored and computed only the 10 it had not
    assert calls["first"] == [list(range(20))] and calls["second"] == [list(range(20, 30))]
    np.testing.assert_array_equal(results["second"][:20], results["first"])


def test_check_cache_dir(tmp_path):
    assert check_cache_dir(tmp_path / "new" / "cache") == str((tmp_path / "new" / "cache").resolve())
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"cache_dir='.*file/cache' cannot hold a cache: Not a directory"):
        check_cache_dir(tmp_path / "file" / "cache")


def test_an_unusable_cache_dir_fails_at_fit_before_training(frame, tmp_path, no_training):
    X, y = frame
    (tmp_path / "file").write_text("x")
    image = ImageEncoder("cnn", image_size=8, trainable=False, random_state=0, cache_dir=str(tmp_path / "file" / "c"))
    with pytest.raises(ValueError, match="cache_dir=.*cannot hold a cache"):
        FusionClassifier(image=image, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="cache_dir=.*cannot hold a cache"):
        image.fit(X[["image_path"]])
    assert no_training == []
