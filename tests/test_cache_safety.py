"""The disk cache trusts nothing it did not write: hostile files and signed entries.

Anything that could hang or exhaust memory if the reader regressed runs in a
subprocess with a timeout and a memory limit, so that a regression fails the
test instead of freezing CI.
"""

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from skmm.cache import DiskCache, get_cache, text_key
from skmm.cache.entry import MAX_ENTRY_BYTES

ROOT = str(Path(__file__).resolve().parents[1])
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


# ----------------------------------------------------------- hostile entry files

_HOSTILE_READER = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    from skmm.cache import DiskCache, text_key
    try:
        import resource  # a regression that reads /dev/zero fails fast instead of eating the machine
        with open("/proc/self/status") as f:
            vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), resource.RLIM_INFINITY))
    except (ImportError, OSError, StopIteration, ValueError):
        pass

    root, warm = sys.argv[1], sys.argv[2] == "warm"
    keys = [text_key(f"text {i}") for i in range(8)]
    cache = DiskCache(root)
    if warm:  # the row length is known before the hostile files are met
        cache.get_or_compute("fp", keys[-1:], lambda pos: 1 / 0)
    computed = []
    def compute(positions):
        computed.extend(positions)
        return np.zeros((len(positions), 8), np.float32)
    cache.get_or_compute("fp", keys, compute)
    print(json.dumps({"computed": computed, "corrupt": cache.corrupt, "disk_hits": cache.disk_hits}))
    """
)


def plant_hostile_entries(root, keys):
    cache = DiskCache(root)
    cache.get_or_compute("fp", keys, Compute(keys))
    paths = [Path(cache.entry_path("fp", k)) for k in keys]
    for p in paths[:5]:
        p.unlink()
    os.symlink("/dev/zero", paths[0])  # endless
    os.mkfifo(paths[1])  # blocks a plain open() forever
    with open(paths[2], "wb") as f:  # sparse, far larger than any row
        f.truncate(MAX_ENTRY_BYTES * 16)
    header = bytearray(Path(cache.entry_path("fp", keys[5])).read_bytes()[:36])
    header[12:20] = (10**9).to_bytes(8, "little")  # claims a billion values, holds none
    paths[3].write_bytes(bytes(header))
    os.symlink(cache.entry_path("fp", keys[6]), paths[4])  # a sound entry, but through a link
    return paths


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"), reason="POSIX only")
@pytest.mark.parametrize("warm", ["cold", "warm"])
def test_hostile_entries_are_misses_not_hangs(tmp_path, warm):
    keys = texts(8)
    root = tmp_path / "cache"
    paths = plant_hostile_entries(root, keys)
    proc = subprocess.run(
        [sys.executable, "-c", _HOSTILE_READER, str(root), warm],
        capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=ROOT),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["computed"] == [0, 1, 2, 3, 4]
    assert report["corrupt"] == 5
    assert report["disk_hits"] == 3
    # Every hostile file was replaced by a sound entry (links themselves, not their targets).
    assert all(p.is_file() and not p.is_symlink() for p in paths[:5])
    assert os.path.exists("/dev/zero")


def test_a_directory_in_place_of_an_entry_is_a_miss(tmp_path):
    keys = texts(3)
    DiskCache(tmp_path).get_or_compute("fp", keys, Compute(keys))
    path = Path(DiskCache(tmp_path).entry_path("fp", keys[1]))
    path.unlink()
    path.mkdir()
    cache = DiskCache(tmp_path)
    compute = Compute(keys)
    with pytest.warns(RuntimeWarning, match="could not write"):
        out = cache.get_or_compute("fp", keys, compute)
    np.testing.assert_array_equal(out, rows(keys))
    assert compute.calls == [[1]] and cache.corrupt == 1


def test_an_entry_of_the_wrong_size_is_not_read_when_the_width_is_known(tmp_path, monkeypatch):
    keys = texts(3)
    writer = DiskCache(tmp_path)
    writer.get_or_compute("fp", keys, Compute(keys))
    # A sound entry, but wider than the rows this fingerprint is known to have.
    Path(writer.entry_path("fp", keys[2])).write_bytes(writer.encode_entry("fp", keys[2], np.ones(DIM * 4)))
    import skmm.cache.entry as entry

    reads = []
    real_read = os.read
    monkeypatch.setattr(entry.os, "read", lambda fd, n: reads.append(n) or real_read(fd, n))
    cache = DiskCache(tmp_path)
    cache.get_or_compute("fp", keys[:1], Compute(keys))  # learns the width from one entry
    reads.clear()
    compute = Compute(keys)
    out = cache.get_or_compute("fp", keys, compute)
    np.testing.assert_array_equal(out, rows(keys))
    assert compute.calls == [[2]] and cache.corrupt == 1
    assert reads == [36 + 4 * DIM]  # the sound entry only; the wide one was refused by fstat


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
    Path(attacker.entry_path("fp", keys[0])).write_bytes(attacker.encode_entry("fp", keys[0], forged))

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
