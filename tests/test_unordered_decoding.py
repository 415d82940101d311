"""Batches in the order their pictures finish decoding, and the frozen ImageEncoder that runs on them so.

``load_images_parallel(ordered=False)`` yields each batch as soon as its
pictures are decoded; a frozen ImageEncoder uses it, so its model is not idle
while one huge file decodes.  The tests hold one row's decoding back (a worker
waits on an event, with a timeout, so nothing can hang) and check that the
other batches come first, equal to the ordered ones, and that the error and
warning policies still name rows in order.
"""

import multiprocessing
import time

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from skmm import ImageEncoder
from skmm.encoders.image import CPU_BATCH_SIZE
from skmm.io.images import ImageLoadError, load_images, load_images_parallel
from skmm.io.images.dataset import ImageFolderDataset

WAIT_S = 60  # a held-back row waits at most this long for the event


def _paths(tmp_path, n, rng):
    paths = []
    for i in range(n):
        array = rng.integers(0, 256, (12 + i, 10 + 2 * i, 3), dtype=np.uint8)
        path = tmp_path / f"img{i}.png"
        Image.fromarray(array).save(path)
        paths.append(str(path))
    return paths


def _hold_back(monkeypatch, row, release=None, seconds=None):
    """Workers decode ``row`` only once ``release`` is set (or after ``seconds``); returns whether it was set."""
    released = multiprocessing.Value("i", -1)
    original = ImageFolderDataset.__getitem__

    def getitem(self, i):
        if i == row:
            if release is not None:
                released.value = int(release.wait(WAIT_S))
            else:
                time.sleep(seconds)
        return original(self, i)

    monkeypatch.setattr(ImageFolderDataset, "__getitem__", getitem)
    return released


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_batches_come_as_their_pictures_are_decoded_and_equal_the_ordered_ones(tmp_path, rng, monkeypatch):
    paths = _paths(tmp_path, 24, rng)
    expected, _ = load_images(paths, 8)
    release = multiprocessing.Event()
    released = _hold_back(monkeypatch, 0, release)
    starts = []
    for start, pixels, present in load_images_parallel(paths, 8, num_workers=2, batch_size=4, ordered=False):
        starts.append(start)
        release.set()  # row 0 is decoded only once a batch has come out without it
        np.testing.assert_array_equal(pixels.numpy(), expected[start : start + 4])
        assert present.numpy().all()
    assert sorted(starts) == list(range(0, 24, 4))
    assert starts[0] != 0 and released.value == 1


def test_the_first_failing_row_in_order_is_raised(tmp_path, rng, monkeypatch):
    paths = _paths(tmp_path, 12, rng)
    paths[1] = str(tmp_path / "gone.png")
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    paths[9] = str(tmp_path / "broken.png")
    # row 0's batch (with row 1) comes after row 9's
    _hold_back(monkeypatch, 0, seconds=1.0)
    stream = load_images_parallel(paths, 8, num_workers=2, batch_size=4, ordered=False, column="image")
    with pytest.raises(ImageLoadError, match="gone.png") as caught:
        list(stream)
    assert caught.value.row == 1 and caught.value.column == "image"


def test_warned_failures_are_listed_in_row_order(tmp_path, rng, monkeypatch):
    paths = _paths(tmp_path, 12, rng)
    paths[1] = str(tmp_path / "gone.png")
    paths[9] = str(tmp_path / "also-gone.png")
    _hold_back(monkeypatch, 0, seconds=1.0)
    with pytest.warns(UserWarning, match="2 images") as caught:
        batches = list(load_images_parallel(paths, 8, num_workers=2, batch_size=4, ordered=False, on_error="warn"))
    message = str(caught[0].message)
    assert message.index("row 1:") < message.index("row 9:")
    present = np.concatenate([p.numpy() for _, _, p in sorted(batches, key=lambda b: b[0])])
    assert present.tolist() == [i not in (1, 9) for i in range(12)]


def test_an_older_torch_streams_in_row_order(tmp_path, rng, monkeypatch):
    from skmm.io.images import loading

    monkeypatch.setattr(loading, "_CAN_UNORDER", False)  # DataLoader(in_order=...) came with torch 2.6
    paths = _paths(tmp_path, 16, rng)
    expected, _ = load_images(paths, 8)
    _hold_back(monkeypatch, 0, seconds=1.0)
    batches = list(load_images_parallel(paths, 8, num_workers=2, batch_size=4, ordered=False))
    assert [start for start, _, _ in batches] == [0, 4, 8, 12]
    np.testing.assert_array_equal(np.concatenate([p.numpy() for _, p, _ in batches]), expected)


def _frozen(**params):
    return ImageEncoder("cnn", image_size=16, trainable=False, random_state=0, cache=False,
                        backbone_kwargs={"channels": (4, 8)}, **params)


def test_a_frozen_encoder_runs_its_model_while_a_file_still_decodes(tmp_path, rng, monkeypatch):
    paths = pd.Series(_paths(tmp_path, 40, rng), name="image_path")
    in_process = _frozen(num_workers=0).fit(paths)
    expected = in_process.transform(paths)
    release = multiprocessing.Event()
    released = _hold_back(monkeypatch, 0, release)
    rows = []
    original = ImageEncoder._forward

    def forward(self, inputs):
        rows.append(len(inputs))
        release.set()  # the first forward pass comes before row 0 is decoded
        return original(self, inputs)

    monkeypatch.setattr(ImageEncoder, "_forward", forward)
    features = _frozen(num_workers=2).fit(paths).transform(paths)
    assert released.value == 1
    # batch_size="auto" on the CPU: batches of 8, whose features do not depend on when they came
    assert rows == [CPU_BATCH_SIZE] * 5
    np.testing.assert_array_equal(features, expected)


def test_auto_batch_size_is_small_on_the_cpu_only(tmp_path, rng):
    paths = pd.Series(_paths(tmp_path, 20, rng), name="image_path")
    enc = _frozen(num_workers=0).fit(paths)
    assert enc.batch_size == "auto" and enc._rows_per_forward() == CPU_BATCH_SIZE
    np.testing.assert_allclose(_frozen(num_workers=0, batch_size=64).fit(paths).transform(paths),
                               enc.transform(paths), rtol=1e-5, atol=1e-6)
    enc.device_ = "cuda"
    assert enc._rows_per_forward() == 64
    assert _frozen(batch_size=3)._rows_per_forward() == 3


@pytest.mark.parametrize("bad", [0, -2, 2.5, "big"])
def test_batch_size_is_auto_or_a_positive_int(bad, tmp_path, rng):
    paths = pd.Series(_paths(tmp_path, 2, rng))
    with pytest.raises((TypeError, ValueError), match="batch_size"):
        _frozen(batch_size=bad).fit(paths)


def test_one_row_in_a_batch_of_one(tmp_path, rng):
    # unordered streaming with nothing to reorder: one picture, in this process
    paths = _paths(tmp_path, 1, rng)
    (start, pixels, present), = load_images_parallel(paths, 8, ordered=False)
    assert start == 0 and pixels.dtype == torch.uint8 and present.tolist() == [True]
