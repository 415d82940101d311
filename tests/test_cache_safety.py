"""The disk cache trusts nothing it did not write: hostile entries and signed entries.

(A link, a FIFO or garbage in place of the database file: tests/test_cache.py.)
"""

import pickle

import cache_db
import numpy as np
import pytest

from skmm.cache import DiskCache, get_cache, text_key
from skmm.cache.entry import MAX_ENTRY_BYTES

DIM = 8


def rows(keys, dim=DIM):
    return np.stack([np.full(dim, float(int(k[2:10], 16) % 997), np.float32) for k in keys])


class Compute:
    def __init__(self, keys, dim=DIM):
        self.keys, self.dim, self.calls = keys, dim, []

    def __call__(self, positions):
        self.calls.append(list(positions))
        return rows([self.keys[i] for i in positions], self.dim)


def texts(n):
    return [text_key(f"text {i}") for i in range(n)]


@pytest.fixture(autouse=True)
def no_key_from_the_environment(monkeypatch):
    monkeypatch.delenv("SKMM_CACHE_KEY", raising=False)
    monkeypatch.delenv("SKMM_CACHE_MAX_BYTES", raising=False)


# ----------------------------------------------------------- hostile entries


def spy_on_reads(cache):
    """Record the size of every entry the store hands over (None: refused unread)."""
    sizes = []
    real_get = cache.store.get

    def get(*args, **kwargs):
        found = real_get(*args, **kwargs)
        sizes.extend(None if blob is None else len(blob) for blob in found.values())
        return found

    cache.store.get = get
    return sizes


@pytest.mark.parametrize("warm", ["cold", "warm"])
def test_hostile_entries_are_misses(tmp_path, warm):
    keys = texts(8)
    writer = DiskCache(tmp_path)
    writer.get_or_compute("fp", keys, Compute(keys))
    cache_db.put_zeros(writer, "fp", keys[0], MAX_ENTRY_BYTES + 1)  # far larger than any row
    header = bytearray(cache_db.stored(writer, "fp", keys[5])[:36])
    header[12:20] = (10**9).to_bytes(8, "little")  # claims a billion values, holds none
    cache_db.put(writer, "fp", keys[1], bytes(header))
    cache_db.put(writer, "fp", keys[2], b"")
    cache_db.put(writer, "fp", keys[3], cache_db.stored(writer, "fp", keys[6]))  # another key's entry
    cache_db.put(writer, "fp", keys[4], writer.encode_entry("fp", keys[4], np.zeros(DIM), dtype="uint8"))

    cache = DiskCache(tmp_path)
    if warm == "warm":  # the row length is known before the hostile entries are met
        cache.get_or_compute("fp", keys[-1:], lambda pos: 1 / 0)
    sizes = spy_on_reads(cache)
    compute = Compute(keys)
    np.testing.assert_array_equal(cache.get_or_compute("fp", keys, compute), rows(keys))
    assert compute.calls == [[0, 1, 2, 3, 4]]
    assert (cache.corrupt, cache.disk_hits) == (5, 3)
    assert None in sizes and max(s for s in sizes if s is not None) <= 36 + 4 * DIM  # the huge one never read


def test_a_cold_reader_learns_the_width_from_a_few_entries_then_bounds_the_rest(tmp_path):
    keys = texts(40)
    writer = DiskCache(tmp_path)
    writer.get_or_compute("fp", keys, Compute(keys))
    wide = writer.encode_entry("fp", keys[30], np.ones(DIM * 1000))  # sound, 32 KB: read only while learning
    cache_db.put(writer, "fp", keys[30], wide)
    cache = DiskCache(tmp_path)
    sizes = spy_on_reads(cache)
    compute = Compute(keys)
    np.testing.assert_array_equal(cache.get_or_compute("fp", keys, compute), rows(keys))
    assert compute.calls == [[30]] and cache.corrupt == 1
    assert sizes.count(None) >= 1 and len(wide) not in sizes  # past the first 16 entries, refused unread
    # Every hostile entry was replaced by a sound one.
    again = DiskCache(tmp_path)
    again.get_or_compute("fp", keys, lambda pos: 1 / 0)
    assert again.corrupt == 0


def test_an_entry_of_the_wrong_size_is_not_read_when_the_width_is_known(tmp_path):
    keys = texts(3)
    writer = DiskCache(tmp_path)
    writer.get_or_compute("fp", keys, Compute(keys))
    # A sound entry, but wider than the rows this fingerprint is known to have.
    cache_db.put(writer, "fp", keys[2], writer.encode_entry("fp", keys[2], np.ones(DIM * 4)))
    cache = DiskCache(tmp_path)
    cache.get_or_compute("fp", keys[:1], Compute(keys))  # learns the width from one entry
    sizes = spy_on_reads(cache)
    compute = Compute(keys)
    out = cache.get_or_compute("fp", keys, compute)
    np.testing.assert_array_equal(out, rows(keys))
    assert compute.calls == [[2]] and cache.corrupt == 1
    assert set(sizes) == {36 + 4 * DIM, None}  # the sound entry; the wide one was never read


# ------------------------------------------------------------------ signed entries


def test_signed_entries_are_served_only_with_the_same_key(tmp_path):
    keys = texts(4)
    DiskCache(tmp_path, key="s3cret").get_or_compute("fp", keys, Compute(keys))

    same = DiskCache(tmp_path, key=b"s3cret")
    compute = Compute(keys)
    np.testing.assert_array_equal(same.get_or_compute("fp", keys, compute), rows(keys))
    assert compute.calls == [] and same.disk_hits == 4

    for other in (DiskCache(tmp_path), DiskCache(tmp_path, key="another")):
        compute = Compute(keys)
        np.testing.assert_array_equal(other.get_or_compute("fp", keys, compute), rows(keys))
        assert compute.calls == [[0, 1, 2, 3]] and other.corrupt == 4


def test_a_forged_entry_is_served_unsigned_but_refused_signed(tmp_path):
    keys = texts(2)
    victim = DiskCache(tmp_path, key="s3cret")
    victim.get_or_compute("fp", keys, Compute(keys))
    # An attacker who can write the directory but does not hold the secret.
    attacker = DiskCache(tmp_path, key="")
    forged = np.full(DIM, 1e6, np.float32)
    cache_db.put(attacker, "fp", keys[0], attacker.encode_entry("fp", keys[0], forged))

    unsigned = DiskCache(tmp_path)  # the threat the docs describe: forgeries are served
    np.testing.assert_array_equal(unsigned.get_or_compute("fp", keys[:1], lambda p: 1 / 0)[0], forged)

    signed = DiskCache(tmp_path, key="s3cret")
    compute = Compute(keys)
    np.testing.assert_array_equal(signed.get_or_compute("fp", keys, compute), rows(keys))
    assert compute.calls == [[0]] and signed.corrupt == 1


def test_the_key_comes_from_the_environment_and_never_leaks(tmp_path, monkeypatch):
    monkeypatch.setenv("SKMM_CACHE_KEY", "env-secret-value")
    cache = DiskCache(tmp_path)
    assert cache.keyed
    keys = texts(2)
    cache.get_or_compute("fp", keys, Compute(keys))
    assert DiskCache(tmp_path, key="env-secret-value").get_or_compute("fp", keys, lambda p: 1 / 0).shape == (2, DIM)
    assert "env-secret" not in repr(cache)
    shared = get_cache(tmp_path / "shared")
    assert shared.keyed
    assert b"env-secret" not in pickle.dumps(shared)
    monkeypatch.setenv("SKMM_CACHE_KEY", "")
    assert not DiskCache(tmp_path).keyed


def test_get_cache_sets_the_key(tmp_path):
    cache = get_cache(tmp_path, key="configured")
    assert cache.keyed and get_cache(tmp_path) is cache and get_cache(tmp_path).keyed
    get_cache(tmp_path, key="")
    assert not cache.keyed
    with pytest.raises(ValueError, match="cache_dir"):
        get_cache(None, key="x")
    with pytest.raises(TypeError, match="key"):
        DiskCache(tmp_path, key=3)
