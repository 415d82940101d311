"""The disk cache stays within max_bytes, evicting the least recently used entries."""

import contextlib
import sqlite3

import cache_db
import numpy as np
import pytest

from skmm.cache import DiskCache, get_cache, text_key
from skmm.cache.entry import entry_nbytes

DIM = 8
ENTRY = entry_nbytes(DIM, np.float32)  # bytes of one entry file


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    monkeypatch.delenv("SKMM_CACHE_KEY", raising=False)
    monkeypatch.delenv("SKMM_CACHE_MAX_BYTES", raising=False)


def texts(n, start=0):
    return [text_key(f"text {i}") for i in range(start, start + n)]


def ones(positions):
    return np.ones((len(positions), DIM), np.float32)


def test_default_bound_and_settings(tmp_path, monkeypatch):
    assert DiskCache(tmp_path).max_bytes == 10 * 2**30
    assert DiskCache(tmp_path, max_bytes="512MiB").max_bytes == 2**29
    monkeypatch.setenv("SKMM_CACHE_MAX_BYTES", "2G")
    assert DiskCache(tmp_path).max_bytes == 2 * 2**30
    assert get_cache(tmp_path / "a").max_bytes == 2 * 2**30
    assert get_cache(tmp_path / "a", max_bytes=1000).max_bytes == 1000
    assert get_cache(tmp_path / "a").max_bytes == 1000
    memory = get_cache(None)
    monkeypatch.setattr(memory, "max_bytes", memory.max_bytes)  # restored afterwards
    assert get_cache(None, max_bytes="1M") is memory and memory.max_bytes == 2**20
    monkeypatch.setenv("SKMM_CACHE_MAX_BYTES", "lots")
    with pytest.raises(ValueError, match="SKMM_CACHE_MAX_BYTES"):
        DiskCache(tmp_path)
    for bad in (-1, 1.5, True, "-3G"):
        with pytest.raises(ValueError, match="max_bytes"):
            DiskCache(tmp_path, max_bytes=bad)


def test_least_recently_used_entries_go_first(tmp_path):
    keys = texts(6)
    cache = DiskCache(tmp_path)
    cache.get_or_compute("fp", keys, ones)
    for i, k in enumerate(keys):
        cache_db.last_used(cache, "fp", [k], hours_ago=100 - i)  # keys[0] oldest
    # A read in another process refreshes what it reads.
    assert DiskCache(tmp_path).get_or_compute("fp", keys[:2], lambda p: 1 / 0).shape == (2, DIM)
    summary = cache.prune(max_bytes=4 * ENTRY)
    assert summary == {"entries": 4, "bytes": 4 * ENTRY, "removed_entries": 2, "removed_bytes": 2 * ENTRY}
    assert [cache_db.stored(cache, "fp", k) is not None for k in keys] == [True, True, False, False, True, True]


def test_writes_evict_to_stay_within_the_bound(tmp_path):
    cache = DiskCache(tmp_path, max_bytes=10 * ENTRY)
    for batch in range(8):
        keys = texts(4, start=4 * batch)
        cache.get_or_compute("fp", keys, ones)
        cache_db.last_used(cache, "fp", keys, hours_ago=100 - batch)  # each batch strictly newer
        assert cache.info()["bytes"] <= 10 * ENTRY
        assert cache_db.count(cache) == cache.info()["entries"]  # the triggers' count is the true one
    assert cache.evicted >= 20
    newest = texts(4, start=28)
    assert all(cache_db.stored(cache, "fp", k) is not None for k in newest)
    # Evicted rows are recomputed by another process; the memory front still has them here.
    compute_calls = []
    DiskCache(tmp_path).get_or_compute("fp", texts(4), lambda p: compute_calls.append(p) or ones(p))
    assert compute_calls == [[0, 1, 2, 3]]


def test_entries_written_by_another_process_count_toward_the_bound(tmp_path):
    first, second = DiskCache(tmp_path, max_bytes=10 * ENTRY), DiskCache(tmp_path, max_bytes=10 * ENTRY)
    first.get_or_compute("fp", texts(8), ones)
    second.get_or_compute("fp", texts(8, start=8), ones)  # 16 entries in all: over the bound
    assert second.evicted > 0 and second.info()["bytes"] <= 10 * ENTRY


def test_a_bound_of_zero_stores_nothing_on_disk(tmp_path):
    cache = DiskCache(tmp_path, max_bytes=0)
    keys = texts(3)
    assert cache.get_or_compute("fp", keys, ones).shape == (3, DIM)
    assert cache.info()["entries"] == 0
    calls = []
    cache.get_or_compute("fp", keys, lambda p: calls.append(p) or ones(p))
    assert calls == []  # the memory front still serves them


def test_info_clear_and_prune(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    cache = DiskCache(tmp_path)
    cache.get_or_compute("image|resnet", texts(3), ones)
    cache.get_or_compute("pixels", texts(2), lambda p: np.full((len(p), DIM), 7), dtype="uint8")
    info = cache.info()
    assert info["entries"] == 5 and info["bytes"] == 3 * ENTRY + 2 * entry_nbytes(DIM, np.uint8)
    assert info["max_bytes"] == cache.max_bytes and info["keyed"] is False
    assert info["directory"] == str(tmp_path.resolve())
    described = sorted((f["fingerprint"], f["dtype"], f["entries"]) for f in info["fingerprints"])
    assert described == [("image|resnet", "float32", 3), ("pixels", "uint8", 2)]
    # A fingerprint in the database that does not match its storage name is not believed.
    name = next(f["name"] for f in info["fingerprints"] if f["dtype"] == "uint8")
    with contextlib.closing(sqlite3.connect(cache.database)) as db, db:
        db.execute("UPDATE spaces SET fingerprint = 'something else' WHERE name = ?", (name,))
    assert {f["fingerprint"] for f in cache.info()["fingerprints"]} == {"image|resnet", None}

    assert cache.prune(0)["removed_entries"] == 5
    assert cache.info()["entries"] == 0
    cache.get_or_compute("other", texts(2, start=9), ones)
    cache.clear()
    assert cache.info()["entries"] == 0
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("skmm-cache.sqlite3")) == [
        "locks", "notes.txt"
    ]


def test_prune_gives_disk_space_back(tmp_path):
    cache = DiskCache(tmp_path)
    cache.get_or_compute("fp", texts(2000), lambda p: np.ones((len(p), 512), np.float32))
    before = cache.info()["file_bytes"]
    assert before >= 2000 * 512 * 4
    cache.prune(0)
    cache.store._connect(create=False).execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert cache.info()["file_bytes"] < before / 4
