"""Tests for skmm.cache: keys, the memory cache, the disk cache and its safety."""

import hashlib
import multiprocessing
import os
import pickle
import sqlite3
import threading
import time
import warnings
from pathlib import Path

import cache_db
import numpy as np
import pytest

from skmm.cache import DiskCache, MemoryCache, get_cache, image_key, text_key

DIM = 8


@pytest.fixture(autouse=True)
def seed():
    np.random.seed(0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def vector(key, dim=DIM):
    """A deterministic row for a key, so that any process computes the same one."""
    seed = int.from_bytes(hashlib.blake2b(str(key).encode(), digest_size=8).digest(), "little")
    return np.random.default_rng(seed).random(dim, dtype=np.float32)


class Encoder:
    """A ``compute`` that records what it was asked for."""

    def __init__(self, keys, dim=DIM):
        self.keys = keys
        self.dim = dim
        self.calls = []

    def __call__(self, positions):
        self.calls.append(list(positions))
        return np.stack([vector(self.keys[i], self.dim) for i in positions]).reshape(
            len(positions), self.dim
        )

    @property
    def computed(self):
        return sum(len(c) for c in self.calls)


def expected(keys, dim=DIM):
    return np.stack([vector(k, dim) for k in keys])


def texts(n):
    return [text_key(f"text {i}") for i in range(n)]


# ---------------------------------------------------------------------- keys


def test_text_key_is_a_stable_hash():
    assert text_key("red shoes") == text_key("red shoes")
    assert text_key("red shoes") != text_key("red shoe")
    assert text_key("red shoes").startswith("t:")
    assert text_key(None) == text_key(float("nan")) == text_key("")
    assert text_key("é") != text_key("e")
    assert text_key("\ud800")  # a lone surrogate still hashes
    assert text_key(12) == text_key("12")


def test_image_key_names_file_size_and_mtime(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"12345")
    st = os.stat(path)
    key = image_key(str(path))
    assert key == f"i:5:{st.st_mtime_ns}:{os.path.normcase(os.path.abspath(path))}"
    # The same file however it is named.
    assert image_key(path) == key
    assert image_key(str(tmp_path / "sub" / ".." / "a.png")) == key
    assert image_key(os.fsencode(path)) == key


def test_image_key_changes_when_the_file_changes(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(b"12345")
    key = image_key(path)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    touched = image_key(path)
    assert touched != key
    path.write_bytes(b"123456")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert image_key(path) not in (key, touched)


@pytest.mark.parametrize("value", [None, float("nan"), np.nan, "", 3, b""])
def test_image_key_of_a_missing_value_is_none(value):
    assert image_key(value) is None


def test_image_key_of_an_unusable_path_is_none(tmp_path):
    assert image_key(tmp_path / "gone.png") is None
    assert image_key(tmp_path) is None  # a directory
    assert image_key("bad\0name.png") is None


def test_image_key_of_pandas_missing_values():
    pd = pytest.importorskip("pandas")
    assert image_key(pd.NA) is None
    assert text_key(pd.NA) == text_key("")


# ---------------------------------------------------------------- memory cache


def test_memory_counts_hits_and_misses():
    cache = MemoryCache()
    keys = texts(5)
    enc = Encoder(keys)
    out = cache.get_or_compute("fp", keys, enc)
    np.testing.assert_array_equal(out, expected(keys))
    assert out.dtype == np.float32 and out.shape == (5, DIM)
    assert (cache.hits, cache.misses) == (0, 5)
    assert enc.calls == [[0, 1, 2, 3, 4]]

    more = keys[3:] + texts(7)[5:]
    enc = Encoder(more)
    out = cache.get_or_compute("fp", more, enc)
    np.testing.assert_array_equal(out, expected(more))
    assert enc.calls == [[2, 3]]
    assert (cache.hits, cache.misses) == (2, 7)

    enc = Encoder(keys)
    cache.get_or_compute("fp", keys, enc)
    assert enc.calls == []  # nothing to compute: compute is not called
    assert (cache.hits, cache.misses) == (7, 7)

    cache.reset_stats()
    assert (cache.hits, cache.misses) == (0, 0)
    assert len(cache) == 7


def test_duplicates_are_computed_once_and_order_is_kept(rng):
    unique = texts(6)
    keys = [unique[i] for i in rng.integers(0, 6, size=40)]
    keys[:6] = unique[::-1]
    cache = MemoryCache()
    enc = Encoder(keys)
    out = cache.get_or_compute("fp", keys, enc)
    np.testing.assert_array_equal(out, expected(keys))
    assert enc.calls == [[0, 1, 2, 3, 4, 5]]
    assert (cache.hits, cache.misses) == (34, 6)

    shuffled = [keys[i] for i in rng.permutation(len(keys))]
    np.testing.assert_array_equal(
        cache.get_or_compute("fp", shuffled, Encoder(shuffled)), expected(shuffled)
    )


def test_returned_array_is_the_callers_to_modify():
    cache = MemoryCache()
    keys = texts(3)
    out = cache.get_or_compute("fp", keys, Encoder(keys))
    out[:] = -1
    np.testing.assert_array_equal(cache.get_or_compute("fp", keys, Encoder(keys)), expected(keys))


def test_none_keys_are_always_computed_and_never_stored():
    cache = MemoryCache()
    keys = [None, text_key("a"), None, text_key("a")]
    labels = ["bad1", text_key("a"), "bad2", text_key("a")]
    for _ in range(2):
        enc = Encoder(labels)
        out = cache.get_or_compute("fp", keys, enc)
        np.testing.assert_array_equal(out, expected(labels))
    assert enc.calls == [[0, 2]]
    assert len(cache) == 1
    assert (cache.hits, cache.misses) == (3, 5)


def test_different_fingerprint_is_recomputed():
    cache = MemoryCache()
    keys = texts(3)
    cache.get_or_compute("resnet18|size=224", keys, Encoder(keys))
    enc = Encoder(keys)
    cache.get_or_compute("resnet18|size=128", keys, enc)
    assert enc.calls == [[0, 1, 2]]
    enc = Encoder(keys)
    cache.get_or_compute("resnet18|size=224", keys, enc)
    assert enc.calls == []


def test_changed_file_is_recomputed(tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        path.write_bytes(b"x" * (i + 1))
        paths.append(path)
    cache = MemoryCache()

    def run():
        keys = [image_key(p) for p in paths]
        enc = Encoder(keys)
        out = cache.get_or_compute("fp", keys, enc)
        np.testing.assert_array_equal(out, expected(keys))
        return enc.calls

    assert run() == [[0, 1, 2]]
    assert run() == []
    paths[0].write_bytes(b"a different size")
    st = os.stat(paths[2])
    os.utime(paths[2], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert run() == [[0, 2]]
    assert run() == []


def test_lru_eviction_by_bytes():
    row_bytes = DIM * 4
    cache = MemoryCache(max_bytes=3 * row_bytes)
    keys = texts(5)
    cache.get_or_compute("fp", keys[:3], Encoder(keys[:3]))
    assert cache.nbytes == 3 * row_bytes
    # Touch keys[0] so that keys[1] becomes the least recently used.
    cache.get_or_compute("fp", keys[:1], Encoder(keys[:1]))
    cache.get_or_compute("fp", keys[3:4], Encoder(keys[3:4]))
    assert len(cache) == 3 and cache.nbytes == 3 * row_bytes
    assert ("fp", keys[1]) not in cache
    assert all(("fp", k) in cache for k in (keys[0], keys[2], keys[3]))

    enc = Encoder(keys[:4])
    cache.get_or_compute("fp", keys[:4], enc)
    assert enc.calls == [[1]]

    cache.max_bytes = row_bytes  # lowering the bound evicts at once
    assert len(cache) == 1 and cache.nbytes == row_bytes
    cache.max_bytes = 0
    out = cache.get_or_compute("fp", keys, Encoder(keys))
    np.testing.assert_array_equal(out, expected(keys))
    assert len(cache) == 0 and cache.nbytes == 0


@pytest.mark.parametrize("value", [-1, 1.5, "1GB", True])
def test_max_bytes_is_validated(value):
    with pytest.raises(ValueError, match="max_bytes"):
        MemoryCache(max_bytes=value)


@pytest.mark.parametrize(
    "result",
    [
        lambda n: np.zeros((n + 1, DIM)),
        lambda n: np.zeros(n * DIM),
        lambda n: np.zeros((n, DIM, 1)),
        lambda n: np.array([["a"] * DIM] * n),
    ],
    ids=["rows", "1-D", "3-D", "strings"],
)
def test_wrong_result_shape_is_a_value_error(result):
    cache = MemoryCache()
    keys = texts(3)
    with pytest.raises(ValueError, match="compute must return"):
        cache.get_or_compute("fp", keys, lambda positions: result(len(positions)))
    assert len(cache) == 0


def test_row_length_must_agree_with_cached_rows():
    cache = MemoryCache()
    keys = texts(4)
    cache.get_or_compute("fp", keys[:2], Encoder(keys[:2], dim=DIM))
    with pytest.raises(ValueError, match="fingerprint must change"):
        cache.get_or_compute("fp", keys, Encoder(keys, dim=DIM + 1))
    with pytest.raises(ValueError, match="fingerprint must change"):
        cache.get_or_compute("fp", keys[2:], Encoder(keys[2:], dim=DIM + 1))
    out = cache.get_or_compute("other", keys, Encoder(keys, dim=DIM + 1))
    assert out.shape == (4, DIM + 1)


def test_empty_keys_do_not_compute():
    cache = MemoryCache()

    def fail(positions):
        raise AssertionError("compute called")

    assert cache.get_or_compute("fp", [], fail).shape == (0, 0)
    keys = texts(2)
    cache.get_or_compute("fp", keys, Encoder(keys))
    out = cache.get_or_compute("fp", [], fail)
    assert out.shape == (0, DIM) and out.dtype == np.float32


def test_bad_fingerprint_or_key_is_a_type_error():
    cache = MemoryCache()
    with pytest.raises(TypeError, match="fingerprint"):
        cache.get_or_compute(None, texts(1), Encoder(texts(1)))
    with pytest.raises(TypeError, match="position 1"):
        cache.get_or_compute("fp", ["t:a", 3], Encoder(["t:a", 3]))


def test_compute_result_is_cast_to_float32():
    cache = MemoryCache()
    out = cache.get_or_compute("fp", texts(2), lambda p: np.arange(4, dtype=np.int64).reshape(2, 2))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 1], [2, 3]])


def test_threads_share_the_memory_cache():
    cache = MemoryCache(max_bytes=40 * DIM * 4)  # small enough to evict while racing
    keys = texts(60)
    errors = []

    def worker(seed):
        local = np.random.default_rng(seed)
        try:
            for _ in range(30):
                sample = [keys[i] for i in local.integers(0, 60, size=25)]
                out = cache.get_or_compute("fp", sample, Encoder(sample))
                np.testing.assert_array_equal(out, expected(sample))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache.hits + cache.misses == 4 * 30 * 25
    assert cache.nbytes <= cache.max_bytes


def test_memory_hit_is_fast(rng):
    data = rng.standard_normal((4000, 512)).astype(np.float32)
    keys = texts(4000)
    cache = MemoryCache()
    cache.get_or_compute("fp", keys, lambda positions: data[positions])
    start = time.perf_counter()
    out = cache.get_or_compute("fp", keys, lambda positions: 1 / 0)
    elapsed = time.perf_counter() - start
    np.testing.assert_array_equal(out, data)
    assert elapsed < 0.5  # typically about 4 ms


# --------------------------------------------------------------- get_cache


def test_get_cache_returns_one_object_per_place(tmp_path):
    assert get_cache() is get_cache(None)
    assert isinstance(get_cache(), MemoryCache)
    assert get_cache().max_bytes == 2**30
    disk = get_cache(tmp_path / "c")
    assert isinstance(disk, DiskCache)
    assert get_cache(str(tmp_path / "c")) is disk
    assert get_cache(str(tmp_path / "x" / ".." / "c") + os.sep) is disk
    os.symlink(tmp_path / "c", tmp_path / "link")
    assert get_cache(tmp_path / "link") is disk
    assert get_cache(tmp_path / "d") is not disk
    with pytest.raises(ValueError):
        get_cache("")
    with pytest.raises(TypeError):
        get_cache(3)


def test_caches_pickle_as_the_process_cache(tmp_path):
    assert pickle.loads(pickle.dumps(get_cache())) is get_cache()
    disk = get_cache(tmp_path)
    assert pickle.loads(pickle.dumps(disk)) is disk
    private = MemoryCache(max_bytes=123)
    copy = pickle.loads(pickle.dumps(private))
    assert copy is not private and copy.max_bytes == 123 and len(copy) == 0


# --------------------------------------------------------------- disk cache


def test_disk_cache_is_shared_with_a_fresh_instance(tmp_path):
    keys = texts(20)
    first = DiskCache(tmp_path)
    enc = Encoder(keys)
    np.testing.assert_array_equal(first.get_or_compute("fp v1", keys, enc), expected(keys))
    assert enc.computed == 20
    assert cache_db.count(first) == 20
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file())[0] == "skmm-cache.sqlite3"
    (fp,) = first.info()["fingerprints"]
    assert (fp["fingerprint"], fp["dtype"], fp["entries"]) == ("fp v1", "float32", 20)

    # Another process: a new object with an empty memory front.
    second = DiskCache(tmp_path)
    enc = Encoder(keys)
    np.testing.assert_array_equal(second.get_or_compute("fp v1", keys, enc), expected(keys))
    assert enc.calls == []
    assert (second.hits, second.misses, second.disk_hits, second.corrupt) == (20, 0, 20, 0)
    # Now served by the memory front.
    second.get_or_compute("fp v1", keys, Encoder(keys))
    assert second.disk_hits == 20 and second.hits == 40

    enc = Encoder(keys)
    DiskCache(tmp_path).get_or_compute("fp v2", keys, enc)
    assert enc.computed == 20


def test_disk_cache_never_returns_a_damaged_entry(tmp_path):
    keys = texts(6)
    writer = DiskCache(tmp_path)
    writer.get_or_compute("fp", keys, Encoder(keys))
    blobs = [cache_db.stored(writer, "fp", k) for k in keys]

    cache_db.put(writer, "fp", keys[0], blobs[0][: len(blobs[0]) // 2])  # truncated
    flipped = bytearray(blobs[1])
    flipped[-3] ^= 0xFF  # one data byte
    cache_db.put(writer, "fp", keys[1], bytes(flipped))
    flipped = bytearray(blobs[2])
    flipped[17] ^= 0x01  # the length in the header
    cache_db.put(writer, "fp", keys[2], bytes(flipped))
    cache_db.put(writer, "fp", keys[3], b"")
    cache_db.put(writer, "fp", keys[4], blobs[5])  # sound, but another key's entry

    cache = DiskCache(tmp_path)
    enc = Encoder(keys)
    out = cache.get_or_compute("fp", keys, enc)
    np.testing.assert_array_equal(out, expected(keys))
    assert enc.calls == [[0, 1, 2, 3, 4]]
    assert (cache.corrupt, cache.disk_hits) == (5, 1)

    # Repaired on disk.
    again = DiskCache(tmp_path)
    enc = Encoder(keys)
    np.testing.assert_array_equal(again.get_or_compute("fp", keys, enc), expected(keys))
    assert enc.calls == [] and again.corrupt == 0
    assert [cache_db.stored(again, "fp", k) for k in keys] == blobs


def test_a_damaged_database_is_a_miss_with_a_warning_and_clear_deletes_it(tmp_path):
    keys = texts(4)
    DiskCache(tmp_path).get_or_compute("fp", keys, Encoder(keys))
    database = tmp_path / "skmm-cache.sqlite3"
    for companion in ("-wal", "-shm"):
        (tmp_path / ("skmm-cache.sqlite3" + companion)).unlink(missing_ok=True)
    database.write_bytes(b"this is not a database" * 1000)
    cache = DiskCache(tmp_path)
    enc = Encoder(keys)
    with pytest.warns(RuntimeWarning) as caught:
        out = cache.get_or_compute("fp", keys, enc)
    assert sorted(str(w.message).split(" (")[0][:30] for w in caught) == [
        "skmm could not read the cache ", "skmm could not write embedding"
    ]
    np.testing.assert_array_equal(out, expected(keys))
    assert enc.calls == [[0, 1, 2, 3]]
    cache.clear()
    assert not database.exists()
    fresh = DiskCache(tmp_path)
    fresh.get_or_compute("fp", keys, Encoder(keys))
    assert DiskCache(tmp_path).get_or_compute("fp", keys, lambda p: 1 / 0).shape == (4, DIM)


def test_a_link_or_fifo_in_place_of_the_database_is_never_opened(tmp_path):
    keys = texts(2)
    elsewhere = DiskCache(tmp_path / "elsewhere")
    elsewhere.get_or_compute("fp", keys, Encoder(keys))
    root = tmp_path / "cache"
    root.mkdir()
    os.symlink(elsewhere.database, root / "skmm-cache.sqlite3")
    enc = Encoder(keys)
    with pytest.warns(RuntimeWarning, match="not a regular file") as caught:
        DiskCache(root).get_or_compute("fp", keys, enc)
    assert enc.calls == [[0, 1]] and len(caught) == 2  # not read, not written through the link
    with pytest.warns(RuntimeWarning, match="not a regular file"):
        DiskCache(root).get_or_compute("other fp", keys, Encoder(keys))
    assert [f["fingerprint"] for f in DiskCache(tmp_path / "elsewhere").info()["fingerprints"]] == ["fp"]
    if hasattr(os, "mkfifo"):
        fifo_root = tmp_path / "fifo"
        fifo_root.mkdir()
        os.mkfifo(fifo_root / "skmm-cache.sqlite3")
        enc = Encoder(keys)
        with pytest.warns(RuntimeWarning, match="not a regular file") as caught:
            DiskCache(fifo_root).get_or_compute("fp", keys, enc)
        assert len(caught) == 2
        assert enc.calls == [[0, 1]]


def test_a_cache_of_the_old_layout_is_ignored_and_cleared(tmp_path):
    # One file per entry, as written before the SQLite store: never read, counted, deleted by clear().
    old = tmp_path / ("ab" * 16)
    (old / "cd").mkdir(parents=True)
    (old / "FINGERPRINT").write_text("fp\n")
    (old / "cd" / ("cd" * 16 + ".emb")).write_bytes(b"SKMMEMB\x01" + bytes(100))
    (tmp_path / "mine").mkdir()
    cache = DiskCache(tmp_path)
    keys = texts(2)
    enc = Encoder(keys)
    cache.get_or_compute("fp", keys, enc)
    assert enc.calls == [[0, 1]] and cache.corrupt == 0
    assert cache.info()["old_layout_dirs"] == 1
    cache.clear()
    assert not old.exists() and (tmp_path / "mine").is_dir()
    assert cache.info()["old_layout_dirs"] == 0


def test_disk_entry_of_another_length_is_recomputed(tmp_path):
    keys = texts(5)
    DiskCache(tmp_path).get_or_compute("fp", keys, Encoder(keys))
    # A sound entry whose length disagrees with the others (a stale writer).
    writer = DiskCache(tmp_path)
    cache_db.put(writer, "fp", keys[0], writer.encode_entry("fp", keys[0], np.ones(DIM + 2, np.float32)))

    cache = DiskCache(tmp_path)
    enc = Encoder(keys)
    np.testing.assert_array_equal(cache.get_or_compute("fp", keys, enc), expected(keys))
    assert enc.calls == [[0]] and cache.corrupt == 1


def test_disk_cache_does_not_store_none_keys(tmp_path):
    keys = [None, text_key("a"), None]
    labels = ["x", text_key("a"), "y"]
    cache = DiskCache(tmp_path)
    cache.get_or_compute("fp", keys, Encoder(labels))
    assert cache_db.count(cache) == 1
    enc = Encoder(labels)
    DiskCache(tmp_path).get_or_compute("fp", keys, enc)
    assert enc.calls == [[0, 2]]


def test_unwritable_directory_warns_and_still_returns(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    keys = texts(3)
    cache = DiskCache(blocker)
    with pytest.warns(RuntimeWarning, match="could not write"):
        out = cache.get_or_compute("fp", keys, Encoder(keys))
    np.testing.assert_array_equal(out, expected(keys))
    # The memory front still serves them.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc = Encoder(keys)
        cache.get_or_compute("fp", keys, enc)
    assert enc.calls == []


def test_clear_removes_only_cache_entries(tmp_path):
    keys = texts(4)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "mine").mkdir()
    cache = DiskCache(tmp_path)
    cache.get_or_compute("a", keys, Encoder(keys))
    cache.get_or_compute("b", keys, Encoder(keys))
    cache.clear("a")
    enc = Encoder(keys)
    cache.get_or_compute("b", keys, enc)
    assert enc.calls == []
    cache.get_or_compute("a", keys, enc)
    assert enc.calls == [[0, 1, 2, 3]]

    cache.clear()
    assert (cache.hits, cache.misses, cache.disk_hits) == (0, 0, 0)
    assert cache_db.count(cache) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("skmm-cache.sqlite3")) == [
        "locks", "mine", "notes.txt"
    ]
    enc = Encoder(keys)
    cache.get_or_compute("b", keys, enc)
    assert enc.computed == 4


def test_disk_hit_is_fast(tmp_path, rng):
    data = rng.standard_normal((4000, 512)).astype(np.float32)
    keys = texts(4000)
    DiskCache(tmp_path).get_or_compute("fp", keys, lambda positions: data[positions])
    cache = DiskCache(tmp_path)
    start = time.perf_counter()
    out = cache.get_or_compute("fp", keys, lambda positions: 1 / 0)
    elapsed = time.perf_counter() - start
    np.testing.assert_array_equal(out, data)
    assert cache.disk_hits == 4000
    assert elapsed < 2.0  # typically 50 ms warm, 0.25 s from a cold disk


def _write_concurrently(root, barrier, rounds, n_keys, dim, out_path):
    keys = texts(n_keys)
    results, corrupt = [], 0
    for r in range(rounds):
        cache = DiskCache(root)  # an empty memory front: every hit is read from disk
        barrier.wait()
        # Each process reads what the other is writing at the same moment.
        results.append(cache.get_or_compute(f"round {r}", keys, Encoder(keys, dim)))
        corrupt += cache.corrupt
    np.save(out_path, np.stack(results))
    with open(out_path + ".corrupt", "w") as f:
        f.write(str(corrupt))


def test_two_processes_writing_at_once(tmp_path):
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    barrier = ctx.Barrier(2)
    rounds, n_keys, dim = 8, 40, 16384  # large rows: each write takes several syscalls
    outs = [str(tmp_path / f"out{i}.npy") for i in range(2)]
    root = str(tmp_path / "cache")
    procs = [
        ctx.Process(target=_write_concurrently, args=(root, barrier, rounds, n_keys, dim, out))
        for out in outs
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]

    first, second = (np.load(out) for out in outs)
    keys = texts(n_keys)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, np.stack([expected(keys, dim)] * rounds))
    # Neither process ever saw a partial file of the other.
    assert [Path(out + ".corrupt").read_text() for out in outs] == ["0", "0"]

    reader = DiskCache(root)
    for r in range(rounds):
        enc = Encoder(keys, dim)
        out = reader.get_or_compute(f"round {r}", keys, enc)
        np.testing.assert_array_equal(out, expected(keys, dim))
        assert enc.calls == []
    assert reader.corrupt == 0
    assert cache_db.count(reader) == reader.info()["entries"] == rounds * n_keys


def test_failed_write_stores_nothing_and_warns(tmp_path, monkeypatch):
    import skmm.cache.store as store

    class FullDisk(store.SQLiteStore):
        def put(self, *args):
            raise sqlite3.OperationalError("database or disk is full")

    keys = texts(3)
    cache = DiskCache(tmp_path)
    cache.store = FullDisk(cache.directory)
    with pytest.warns(RuntimeWarning, match="disk is full"):
        np.testing.assert_array_equal(cache.get_or_compute("fp", keys, Encoder(keys)), expected(keys))
    enc = Encoder(keys)
    DiskCache(tmp_path).get_or_compute("fp", keys, enc)
    assert enc.calls == [[0, 1, 2]]


def test_nan_rows_are_returned_but_never_stored():
    from skmm.cache import MemoryCache, text_key

    cache = MemoryCache()
    calls = []

    def compute(positions):
        calls.append(list(positions))
        return np.array([[np.nan, np.nan] if i == 1 else [float(i), 0.0] for i in positions])

    keys = [text_key(t) for t in ("a", "bad", "c")]
    first = cache.get_or_compute("fp", keys, compute)
    assert np.isnan(first[1]).all() and first[2, 0] == 2.0
    cache.get_or_compute("fp", keys, compute)
    assert calls == [[0, 1, 2], [1]]  # only the NaN row is computed again
