"""Rows stored as uint8 (decoded pixels), rows marked missing, and the memory cache's accounting."""

import tracemalloc

import cache_db
import numpy as np
import pytest

from skmm.cache import DiskCache, MemoryCache, text_key
from skmm.cache.entry import entry_nbytes

PIXELS = 3 * 4 * 4  # a 4x4 RGB image, flattened


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    monkeypatch.delenv("SKMM_CACHE_KEY", raising=False)


def texts(n):
    return [text_key(f"image {i}") for i in range(n)]


class Decoder:
    """Decodes "images": row i is filled with 10 * i; the positions in ``broken`` fail."""

    def __init__(self, keys, broken=()):
        self.keys, self.broken, self.calls = keys, set(broken), []

    def __call__(self, positions):
        self.calls.append(list(positions))
        out = np.zeros((len(positions), PIXELS), np.uint8)
        present = np.ones(len(positions), bool)
        for j, i in enumerate(positions):
            if i in self.broken:
                present[j] = False
            else:
                out[j] = 10 * i
        return out, present


def expected(n, broken=()):
    return np.stack([np.full(PIXELS, 0 if i in broken else 10 * i, np.uint8) for i in range(n)])


@pytest.mark.parametrize("make", [MemoryCache, None], ids=["memory", "disk"])
def test_uint8_rows_with_missing_ones(tmp_path, make):
    cache = make() if make else DiskCache(tmp_path)
    keys = texts(4)
    decode = Decoder(keys, broken={2})
    out, present = cache.get_or_compute("px", keys, decode, dtype="uint8", return_present=True)
    assert out.dtype == np.uint8 and out.shape == (4, PIXELS)
    np.testing.assert_array_equal(out, expected(4, broken={2}))
    np.testing.assert_array_equal(present, [True, True, False, True])
    # The missing row was not stored: it is tried again, the rest are hits.
    out, present = cache.get_or_compute("px", keys, decode, dtype=np.uint8, return_present=True)
    assert decode.calls == [[0, 1, 2, 3], [2]] and not present[2]
    if make is None:
        fresh = DiskCache(tmp_path)
        decode = Decoder(keys)
        out = fresh.get_or_compute("px", keys, decode, dtype="uint8")
        np.testing.assert_array_equal(out, expected(4))
        assert decode.calls == [[2]] and fresh.disk_hits == 3
        assert len(cache_db.stored(fresh, "px", keys[0], dtype="uint8")) == entry_nbytes(PIXELS, np.uint8)


def test_memory_accounting_counts_one_byte_per_uint8_value():
    cache = MemoryCache(max_bytes=2 * PIXELS)
    keys = texts(3)
    cache.get_or_compute("px", keys[:2], Decoder(keys), dtype="uint8")
    assert cache.nbytes == 2 * PIXELS and len(cache) == 2
    cache.get_or_compute("px", keys, Decoder(keys), dtype="uint8")
    assert cache.nbytes == 2 * PIXELS and len(cache) == 2  # one evicted, not four times too many


def test_each_dtype_is_cached_apart(tmp_path):
    cache = DiskCache(tmp_path)
    keys = texts(2)
    cache.get_or_compute("fp", keys, lambda p: np.full((len(p), PIXELS), 3.0))
    decode = Decoder(keys)
    out = cache.get_or_compute("fp", keys, decode, dtype="uint8")
    assert decode.calls == [[0, 1]] and out.dtype == np.uint8
    fresh = DiskCache(tmp_path)
    assert fresh.get_or_compute("fp", keys, lambda p: 1 / 0).dtype == np.float32
    assert fresh.get_or_compute("fp", keys, lambda p: 1 / 0, dtype="uint8").dtype == np.uint8
    assert cache_db.stored(fresh, "fp", keys[0]) != cache_db.stored(fresh, "fp", keys[0], dtype="uint8")
    # A uint8 entry put where a float32 one belongs is refused by its dtype tag.
    cache_db.put(fresh, "fp", keys[0], fresh.encode_entry("fp", keys[0], np.zeros(PIXELS), dtype="uint8"))
    other = DiskCache(tmp_path)
    assert other.get_or_compute("fp", keys, lambda p: np.full((len(p), PIXELS), 3.0))[0, 0] == 3.0
    assert other.corrupt == 1
    fresh.clear("fp")
    assert fresh.info()["entries"] == 0


def test_float_rows_with_a_present_mask_and_nan():
    cache = MemoryCache()
    keys = texts(3)

    def compute(positions):
        rows = np.arange(len(positions) * 2, dtype=np.float64).reshape(-1, 2)
        rows[positions.index(1)] = np.nan if 1 in positions else 0
        return rows, np.array([i != 2 for i in positions])

    out, present = cache.get_or_compute("fp", keys, compute, return_present=True)
    np.testing.assert_array_equal(present, [True, False, False])  # 1 is NaN, 2 is masked
    assert out[2].tolist() == [4.0, 5.0]  # a masked float row comes back as computed
    assert len(cache) == 1


@pytest.mark.parametrize(
    "result, message",
    [
        (lambda n: np.full((n, 2), 256), r"\[0, 255\]"),
        (lambda n: np.full((n, 2), -1), r"\[0, 255\]"),
        (lambda n: np.full((n, 2), 1.5), r"\[0, 255\]"),
        (lambda n: (np.zeros((n, 2)), np.ones(n + 1, bool)), "present mask"),
        (lambda n: (np.zeros((n, 2)), np.ones(n)), "present mask"),
        (lambda n: (np.zeros((n, 2)),), "pair"),
    ],
)
def test_uint8_results_are_checked(result, message):
    cache = MemoryCache()
    with pytest.raises(ValueError, match=message):
        cache.get_or_compute("px", texts(2), lambda p: result(len(p)), dtype="uint8")
    assert len(cache) == 0


def test_uint8_accepts_whole_floats_and_nan_rows():
    out, present = MemoryCache().get_or_compute(
        "px", texts(2), lambda p: np.array([[255.0, 0.0], [np.nan, np.nan]]), dtype="uint8", return_present=True
    )
    assert out.tolist() == [[255, 0], [0, 0]] and present.tolist() == [True, False]


@pytest.mark.parametrize("dtype", ["float64", "int8", bool, "f4x"])
def test_other_dtypes_are_refused(dtype):
    with pytest.raises(ValueError, match="dtype must be"):
        MemoryCache().get_or_compute("fp", texts(1), lambda p: np.zeros((1, 2)), dtype=dtype)


def test_empty_request_has_the_asked_dtype():
    cache = MemoryCache()
    assert cache.get_or_compute("px", [], lambda p: 1 / 0, dtype="uint8").dtype == np.uint8


def test_memory_overhead_per_entry_is_what_the_docs_say():
    # MemoryCache's docstring: about 250 bytes per entry beyond max_bytes, plus the key string.
    n, dim = 20000, 8
    keys = [text_key(str(i)) for i in range(n)]
    data = np.ones((n, dim), np.float32)
    cache = MemoryCache()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache.get_or_compute("fp", keys, lambda positions: data[positions])
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    overhead = (grown - cache.nbytes) / n
    assert 150 < overhead < 350, overhead
