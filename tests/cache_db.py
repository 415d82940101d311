"""Reaching into a disk cache's SQLite file the way damage or an attacker would."""

import contextlib
import sqlite3
import time

import numpy as np

from skmm.cache.keys import space_name, storage_name


def _where(fingerprint, key, dtype):
    return space_name(fingerprint, np.dtype(dtype)), bytes.fromhex(storage_name(key))


def _open(cache):
    return contextlib.closing(sqlite3.connect(cache.database, timeout=30, isolation_level=None))


def stored(cache, fingerprint, key, dtype="float32"):
    """The entry bytes stored for ``key``, or None."""
    space, name = _where(fingerprint, key, dtype)
    with _open(cache) as db:
        row = db.execute(
            "SELECT data FROM entries JOIN spaces ON spaces.id = entries.space JOIN blobs ON blobs.id = entries.id "
            "WHERE spaces.name = ? AND key = ?",
            (space, name),
        ).fetchone()
    return None if row is None else bytes(row[0])


def put(cache, fingerprint, key, blob, dtype="float32"):
    """Store ``blob`` as the entry of ``key``, bypassing every check (the row must exist)."""
    space, name = _where(fingerprint, key, dtype)
    with _open(cache) as db:
        n = db.execute(
            "UPDATE blobs SET data = ? WHERE id = "
            "(SELECT id FROM entries WHERE key = ? AND space = (SELECT id FROM spaces WHERE name = ?))",
            (blob, name, space),
        ).rowcount
    assert n == 1


def last_used(cache, fingerprint, keys, hours_ago, dtype="float32"):
    """Make the entries of ``keys`` look last used ``hours_ago`` hours ago."""
    when = int(time.time() - hours_ago * 3600)
    with _open(cache) as db:
        for key in keys:
            space, name = _where(fingerprint, key, dtype)
            db.execute(
                "UPDATE entries SET used = ? WHERE key = ? AND space = (SELECT id FROM spaces WHERE name = ?)",
                (when, name, space),
            )


def count(cache):
    """How many entries the database holds (counted, not read from the per-space totals)."""
    with _open(cache) as db:
        n = db.execute("SELECT count(*) FROM entries").fetchone()[0]
        assert db.execute("SELECT count(*) FROM blobs").fetchone()[0] == n  # no orphan blobs
        return n


def put_zeros(cache, fingerprint, key, nbytes, dtype="float32"):
    """Store ``nbytes`` zero bytes as the entry of ``key`` (a huge one costs no memory here)."""
    space, name = _where(fingerprint, key, dtype)
    with _open(cache) as db:
        db.execute(
            "UPDATE blobs SET data = zeroblob(?) WHERE id = "
            "(SELECT id FROM entries WHERE key = ? AND space = (SELECT id FROM spaces WHERE name = ?))",
            (nbytes, name, space),
        )
