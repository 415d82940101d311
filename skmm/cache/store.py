"""The SQLite file behind a disk cache: one table of entries, their sizes counted by triggers.

Layout of a cache directory::

    cache_dir/skmm-cache.sqlite3        every entry (and its -wal and -shm companions)
    cache_dir/locks/<space name>.lock   held while a process computes a space's missing rows

Three tables: ``spaces`` (one row per fingerprint and dtype: its storage
name, the fingerprint and dtype for display, and the number and bytes of its
entries, kept by triggers so that neither the disk cache's ``info()`` nor the
size bound ever scans the entries), ``entries`` (space, the 16 bytes of the
key's storage name, the time it was last used and the entry's size, with a
unique index on (space, key) and an index on the time last used for
eviction) and ``blobs`` (the entry bytes of :mod:`skmm.cache.entry`, under
the id of their row in ``entries``).  The bytes sit apart so that refreshing
the time an entry was last used rewrites a small row, not the page holding
its data.

SQLite is made for this: a write is one transaction, so a reader in another
process sees either none or all of a batch; in WAL mode readers never wait for
writers and writers wait for each other (up to a minute, then the batch is not
stored and the caller warns).  WAL needs the processes sharing the file to be
on one machine (it uses shared memory); set ``SKMM_CACHE_JOURNAL=delete`` for a
directory that processes on several machines open over a network file system,
which then relies on that file system's locks.

One file was measured against one file per entry (benchmarks/scale.py,
BENCHMARKS.md "Scale"): see docs/scaling.md.
"""

import os
import sqlite3
import stat
import threading
import time

__all__ = ["DB_NAME", "JOURNAL_ENV", "LOCKS_DIR", "SQLiteStore", "StoreError", "UnusableStore"]

#: The database file in a cache directory.
DB_NAME = "skmm-cache.sqlite3"
#: The subdirectory holding the compute locks (:mod:`skmm.cache.locking`).
LOCKS_DIR = "locks"
#: Environment variable choosing SQLite's journal mode ("wal", the default, or "delete").
JOURNAL_ENV = "SKMM_CACHE_JOURNAL"
_BUSY_SECONDS = 60.0
# Rows of ~2 KiB fill a 4 KiB page half; 64 KiB pages hold 31 of them.
_PAGE_SIZE = 65536
_CHUNK = 500  # keys per SELECT (SQLite's bound on parameters is 32766)

StoreError = (sqlite3.Error, OSError)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spaces (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    dtype TEXT NOT NULL,
    entries INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    space INTEGER NOT NULL,
    key BLOB NOT NULL,
    used INTEGER NOT NULL,
    size INTEGER NOT NULL,
    UNIQUE (space, key)
);
CREATE TABLE IF NOT EXISTS blobs (
    id INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_used ON entries (used);
CREATE TRIGGER IF NOT EXISTS entries_added AFTER INSERT ON entries BEGIN
    UPDATE spaces SET entries = entries + 1, bytes = bytes + new.size WHERE id = new.space;
END;
CREATE TRIGGER IF NOT EXISTS entries_removed AFTER DELETE ON entries BEGIN
    UPDATE spaces SET entries = entries - 1, bytes = bytes - old.size WHERE id = old.space;
    DELETE FROM blobs WHERE id = old.id;
END;
CREATE TRIGGER IF NOT EXISTS entries_replaced AFTER UPDATE OF size ON entries BEGIN
    UPDATE spaces SET bytes = bytes - old.size + new.size WHERE id = new.space;
END;
"""

# Connections inherited through fork are never used or closed in the child
# (SQLite forbids both); they are kept here so that nothing closes them.
_INHERITED = []


class UnusableStore(sqlite3.DatabaseError):
    """The database path holds something that is not a regular file (a link, a FIFO, a directory)."""


class SQLiteStore:
    """The entries of one cache directory in one SQLite file, shared by threads and processes.

    Every method may raise :data:`StoreError` (an :class:`sqlite3.Error` or
    :class:`OSError`); the disk cache turns them into misses or warnings.

    Parameters
    ----------
    directory : str
        The resolved cache directory.
    """

    def __init__(self, directory):
        self.directory = directory
        self.path = os.path.join(directory, DB_NAME)
        self._lock = threading.RLock()
        self._db = None
        self._pid = None

    def reset_after_fork(self):
        """Forget a connection inherited from the parent process (see :data:`_INHERITED`)."""
        self._lock = threading.RLock()
        if self._db is not None and self._pid != os.getpid():
            _INHERITED.append(self._db)
            self._db = None

    # ------------------------------------------------------------ connection

    def _connect(self, create):
        """The connection of this process, or None if there is no database and ``create`` is false."""
        if self._db is not None and self._pid == os.getpid():
            return self._db
        if self._db is not None:
            self.reset_after_fork()
        try:
            st = os.lstat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            if not create:
                return None
            os.makedirs(self.directory, exist_ok=True)
        else:
            if not stat.S_ISREG(st.st_mode):
                raise UnusableStore(f"{self.path} is not a regular file")
        db = sqlite3.connect(self.path, timeout=_BUSY_SECONDS, isolation_level=None, check_same_thread=False)
        try:
            journal = os.environ.get(JOURNAL_ENV, "wal").strip().lower() or "wal"
            if journal not in ("wal", "delete"):
                raise ValueError(f"{JOURNAL_ENV} must be 'wal' or 'delete', got {journal!r}")
            db.execute(f"PRAGMA page_size = {_PAGE_SIZE}")  # only before the file has tables
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            db.execute(f"PRAGMA journal_mode = {journal}")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(_SCHEMA):
                    db.execute(statement)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except BaseException:
            db.close()
            raise
        self._db, self._pid = db, os.getpid()
        return db

    def _write(self):
        """A context: one write transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error)."""
        return _Transaction(self)

    # ------------------------------------------------------------ entries

    def get(self, space, keys, max_size, touch_after=None):
        """The stored entries of ``keys`` (16-byte names) in the space named ``space``.

        Returns
        -------
        found : dict
            key -> entry bytes, or None for an entry larger than ``max_size``
            (never read); keys not stored are absent.
        """
        with self._lock:
            db = self._connect(create=False)
            if db is None:
                return {}
            row = db.execute("SELECT id FROM spaces WHERE name = ?", (space,)).fetchone()
            if row is None:
                return {}
            sid = row[0]
            found, stale = {}, []
            cutoff = None if touch_after is None else int(time.time() - touch_after)
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, rowid, used, data in db.execute(
                    f"SELECT e.key, e.id, e.used, CASE WHEN length(b.data) <= ? THEN b.data END "
                    f"FROM entries AS e JOIN blobs AS b ON b.id = e.id WHERE e.space = ? AND e.key IN ({marks})",
                    (max_size, sid, *chunk),
                ):
                    found[bytes(key)] = data
                    if cutoff is not None and used < cutoff:
                        stale.append((rowid,))
            if stale:
                self._touch(stale)
            return found

    def _touch(self, ids):
        # The order of eviction is best effort: a busy database is not waited for.
        db = self._db
        db.execute("PRAGMA busy_timeout = 100")
        try:
            with self._write():
                db.executemany(f"UPDATE entries SET used = {int(time.time())} WHERE id = ?", ids)
        except sqlite3.OperationalError:
            pass
        finally:
            db.execute(f"PRAGMA busy_timeout = {int(_BUSY_SECONDS * 1000)}")

    def put(self, space, fingerprint, dtype, items):
        """Store ``items`` (pairs of 16-byte key, entry bytes) in one transaction.

        Returns
        -------
        total : int
            The bytes of every entry in the store afterwards.
        """
        now = int(time.time())
        with self._lock:
            db = self._connect(create=True)
            with self._write():
                db.execute(
                    "INSERT OR IGNORE INTO spaces (name, fingerprint, dtype) VALUES (?, ?, ?)",
                    (space, fingerprint, dtype),
                )
                (sid,) = db.execute("SELECT id FROM spaces WHERE name = ?", (space,)).fetchone()
                db.executemany(
                    "INSERT INTO entries (space, key, used, size) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (space, key) DO UPDATE SET used = excluded.used, size = excluded.size",
                    [(sid, key, now, len(data)) for key, data in items],
                )
                db.executemany(
                    "INSERT OR REPLACE INTO blobs (id, data) "
                    "VALUES ((SELECT id FROM entries WHERE space = ? AND key = ?), ?)",
                    [(sid, key, data) for key, data in items],
                )
                return db.execute("SELECT total(bytes) FROM spaces").fetchone()[0]

    def total(self):
        """(entries, bytes) of the whole store."""
        with self._lock:
            db = self._connect(create=False)
            if db is None:
                return 0, 0
            n, size = db.execute("SELECT total(entries), total(bytes) FROM spaces").fetchone()
            return int(n), int(size)

    def evict(self, limit, target):
        """Delete least recently used entries, if the total exceeds ``limit``, down to ``target`` bytes.

        Returns
        -------
        entries, bytes, removed_entries, removed_bytes : int
        """
        with self._lock:
            db = self._connect(create=False)
            if db is None:
                return 0, 0, 0, 0
            with self._write():
                n, total = (int(v) for v in db.execute("SELECT total(entries), total(bytes) FROM spaces").fetchone())
                removed = removed_bytes = 0
                if total > limit:
                    doomed = []
                    oldest = db.execute("SELECT id, size FROM entries ORDER BY used, id")
                    for rowid, size in oldest:
                        if total - removed_bytes <= target:
                            break
                        doomed.append((rowid,))
                        removed_bytes += size
                    oldest.close()
                    db.executemany("DELETE FROM entries WHERE id = ?", doomed)
                    removed = len(doomed)
            if removed and target == limit:  # an explicit prune: give the pages back
                db.executescript("PRAGMA incremental_vacuum;")  # execute() frees one page
            return n - removed, total - removed_bytes, removed, removed_bytes

    def spaces(self):
        """One tuple (name, fingerprint, dtype, entries, bytes) per space with entries."""
        with self._lock:
            db = self._connect(create=False)
            if db is None:
                return []
            return db.execute(
                "SELECT name, fingerprint, dtype, entries, bytes FROM spaces WHERE entries > 0 ORDER BY name"
            ).fetchall()

    def clear(self, names=None):
        """Delete the entries of the spaces named ``names`` (every space if None)."""
        with self._lock:
            db = self._connect(create=False)
            if db is None:
                return
            with self._write():
                if names is None:
                    db.execute("DELETE FROM entries")
                    db.execute("DELETE FROM blobs")
                    db.execute("DELETE FROM spaces")
                else:
                    for name in names:
                        db.execute("DELETE FROM entries WHERE space IN (SELECT id FROM spaces WHERE name = ?)", (name,))
                        db.execute("DELETE FROM spaces WHERE name = ?", (name,))
            db.executescript("PRAGMA incremental_vacuum;")  # execute() frees one page


class _Transaction:
    def __init__(self, store):
        self.db = store._db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, exc, tb):
        if kind is None:
            self.db.execute("COMMIT")
        elif self.db.in_transaction:
            self.db.execute("ROLLBACK")
        return False


def _statements(script):
    """The statements of the schema, triggers kept whole."""
    out, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current)
        if line.endswith(";") and (not text.lstrip().startswith("CREATE TRIGGER") or line == "END;"):
            out.append(text)
            current = []
    return out
