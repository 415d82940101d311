"""The file format of one disk-cache entry, and reading and writing it safely.

An entry file holds one row::

    magic "SKMMEMB\\x01" | dtype tag (4 bytes) | row length (uint64 LE) | digest (16 bytes) | data

The digest is a 128-bit BLAKE2b over the fingerprint's and the key's storage
names, the header before it and the data, so a truncated, bit-flipped,
misplaced or half-written file is detected.  Without a secret the digest is
unkeyed: it detects accidents, not forgeries, since anyone can compute it.
With a secret (:func:`mac_key`) it is a keyed BLAKE2b, a message
authentication code that only holders of the secret can make.

Reading trusts nothing about the file: it is opened without following
symbolic links and without blocking, refused unless it is a regular file of
exactly the size its header (and the row length known for its fingerprint)
implies, and never read past that size, so an entry replaced by a link to
``/dev/zero``, a FIFO or a huge file costs one ``open`` and one ``fstat``.
"""

import hashlib
import os
import stat
import struct
import threading
import time

import numpy as np

__all__ = [
    "BAD",
    "HEADER_SIZE",
    "MAX_ENTRY_BYTES",
    "SUFFIX",
    "atomic_write",
    "decode_entry",
    "encode_entry",
    "entry_nbytes",
    "load_entry",
    "mac_key",
    "read_regular_file",
]

SUFFIX = ".emb"
_MAGIC = b"SKMMEMB\x01"
_TAGS = {"<f4": b"<f4\x00", "|u1": b"|u1\x00"}
# magic, dtype tag, row length, digest
_HEADER = struct.Struct("<8s4sQ16s")
HEADER_SIZE = _HEADER.size
_DIGEST_SIZE = 16
#: Largest entry written or read (64 MiB: a 2048-pixel RGB image as float32 is 48 MiB).
MAX_ENTRY_BYTES = 64 << 20

_READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_TOUCH_BY_FD = os.utime in os.supports_fd

#: What :func:`load_entry` returns for a file that is there but unusable.
BAD = type("BadEntry", (), {"__repr__": lambda self: "BAD", "__slots__": ()})()


def mac_key(secret):
    """The 32-byte BLAKE2b key derived from a secret (str or bytes), or None for no secret.

    An empty secret means none.
    """
    if secret is None:
        return None
    if isinstance(secret, str):
        secret = secret.encode("utf-8", "surrogatepass")
    if not isinstance(secret, (bytes, bytearray)):
        raise TypeError(f"the cache key must be a str or bytes, got {type(secret).__name__}")
    if not secret:
        return None
    return hashlib.blake2b(bytes(secret), digest_size=32, person=b"skmm.cache.kdf").digest()


def entry_nbytes(dim, dtype):
    """Size in bytes of the entry file holding a row of ``dim`` values of ``dtype``."""
    return HEADER_SIZE + int(dim) * np.dtype(dtype).itemsize


def _digest(fp_name, key_name, head, data, key):
    if key is None:
        h = hashlib.blake2b(digest_size=_DIGEST_SIZE, person=b"skmm.cache")
    else:
        h = hashlib.blake2b(digest_size=_DIGEST_SIZE, key=key, person=b"skmm.cache.mac")
    h.update(fp_name.encode("ascii"))
    h.update(key_name.encode("ascii"))
    h.update(head)
    h.update(data)
    return h.digest()


def encode_entry(row, fp_name, key_name, *, key=None):
    """The bytes of the entry file holding ``row``.

    Parameters
    ----------
    row : ndarray of shape (dim,), dtype float32 or uint8
    fp_name, key_name : str
        Storage names (:func:`skmm.cache.keys.storage_name`) of the
        fingerprint's space and of the key.
    key : bytes, optional
        A key from :func:`mac_key`; None for the unkeyed digest.

    Returns
    -------
    payload : bytes
    """
    row = np.asarray(row)
    tag = _TAGS[row.dtype.str]
    data = np.ascontiguousarray(row).tobytes()
    head = _MAGIC + tag + struct.pack("<Q", row.shape[0])
    return head + _digest(fp_name, key_name, head, data, key) + data


def decode_entry(blob, fp_name, key_name, dtype, *, key=None):
    """The read-only row stored in ``blob``, or None if it is not a sound entry for this key."""
    dtype = np.dtype(dtype)
    if len(blob) < HEADER_SIZE:
        return None
    magic, tag, dim, digest = _HEADER.unpack_from(blob)
    if magic != _MAGIC or tag != _TAGS[dtype.str]:
        return None
    if len(blob) != HEADER_SIZE + dim * dtype.itemsize:
        return None
    data = blob[HEADER_SIZE:]
    head = blob[: HEADER_SIZE - _DIGEST_SIZE]
    if _digest(fp_name, key_name, head, data, key) != digest:
        return None
    # frombuffer over immutable bytes is already read-only.
    return np.frombuffer(data, dtype=dtype)


def _read_exactly(fd, n):
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:  # shorter than fstat said: truncated meanwhile
            return None
        chunks.append(chunk)
        got += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _open_regular(path):
    """(fd, stat) of the regular file at ``path``; None if absent; BAD otherwise."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError:  # ELOOP: a symbolic link; EACCES, EISDIR, ...
        return BAD
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        return BAD
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return BAD
    return fd, st


def load_entry(path, fp_name, key_name, dtype, *, dim=None, key=None, touch_after=None):
    """Read and check one entry file.

    Parameters
    ----------
    path : str
    fp_name, key_name : str
        As for :func:`encode_entry`.
    dtype : numpy dtype
        The dtype the entry must hold.
    dim : int, optional
        The row length known for this fingerprint; the file must then have
        exactly the size of such an entry.  Without it the header's length
        is believed only if the file has exactly that size and is at most
        :data:`MAX_ENTRY_BYTES`.
    key : bytes, optional
        As for :func:`encode_entry`.
    touch_after : float, optional
        Set a sound entry's modification time to now if it is older than
        this many seconds: the disk cache's least-recently-used order.

    Returns
    -------
    row : ndarray, None or BAD
        The row; None if there is no file; :data:`BAD` if the file is not a
        regular file, has the wrong size, fails its digest or cannot be read.
    """
    dtype = np.dtype(dtype)
    opened = _open_regular(path)
    if opened is None or opened is BAD:
        return opened
    fd, st = opened
    try:
        if dim is None:
            if not HEADER_SIZE <= st.st_size <= MAX_ENTRY_BYTES:
                return BAD
            head = _read_exactly(fd, HEADER_SIZE)
            if head is None:
                return BAD
            n_values = _HEADER.unpack_from(head)[2]
            rest = st.st_size - HEADER_SIZE
            if n_values * dtype.itemsize != rest:
                return BAD
            data = _read_exactly(fd, rest)
            blob = None if data is None else head + data
        else:
            size = entry_nbytes(dim, dtype)
            blob = _read_exactly(fd, size) if st.st_size == size else None
        row = None if blob is None else decode_entry(blob, fp_name, key_name, dtype, key=key)
        if row is None:
            return BAD
        if touch_after is not None and time.time() - st.st_mtime > touch_after:
            try:
                os.utime(fd if _TOUCH_BY_FD else path)
            except OSError:  # another user's file in a shared cache: order is best effort
                pass
        return row
    except OSError:
        return BAD
    finally:
        os.close(fd)


def read_regular_file(path, max_nbytes):
    """The bytes of a small regular file (not followed if a link), or None if unusable or larger."""
    opened = _open_regular(path)
    if opened is None or opened is BAD:
        return None
    fd, st = opened
    try:
        if st.st_size > max_nbytes:
            return None
        return _read_exactly(fd, st.st_size) if st.st_size else b""
    except OSError:
        return None
    finally:
        os.close(fd)


def atomic_write(path, payload):
    """Write ``payload`` to ``path`` so that no reader ever sees a partial file.

    The bytes go to a uniquely named temporary file in the same directory
    (created exclusively, so never through a planted link), which is then
    moved into place with :func:`os.replace`, which is atomic.
    """
    directory, name = os.path.split(path)
    tmp = os.path.join(
        directory, f".{name}.{os.getpid()}.{threading.get_ident()}.{os.urandom(4).hex()}.tmp"
    )
    try:
        f = open(tmp, "xb")
    except FileNotFoundError:
        os.makedirs(directory, exist_ok=True)
        f = open(tmp, "xb")
    try:
        with f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
