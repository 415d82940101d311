"""The bytes of one disk-cache entry, and checking them.

An entry holds one row::

    magic "SKMMEMB\\x01" | dtype tag (4 bytes) | row length (uint64 LE) | digest (16 bytes) | data

The digest is a 128-bit BLAKE2b over the fingerprint's and the key's storage
names, the header before it and the data, so a truncated, bit-flipped,
misplaced or half-written entry is detected.  Without a secret the digest is
unkeyed: it detects accidents, not forgeries, since anyone can compute it.
With a secret (:func:`mac_key`) it is a keyed BLAKE2b, a message
authentication code that only holders of the secret can make.

The store (:mod:`skmm.cache.store`) never hands over an entry larger than
the size the row length known for its fingerprint implies (or
:data:`MAX_ENTRY_BYTES`), so a forged huge entry is never read into memory.
"""

import hashlib
import struct

import numpy as np

__all__ = ["BAD", "HEADER_SIZE", "MAX_ENTRY_BYTES", "decode_entry", "encode_entry", "entry_nbytes", "mac_key"]

_MAGIC = b"SKMMEMB\x01"
_TAGS = {"<f4": b"<f4\x00", "|u1": b"|u1\x00"}
# magic, dtype tag, row length, digest
_HEADER = struct.Struct("<8s4sQ16s")
HEADER_SIZE = _HEADER.size
_DIGEST_SIZE = 16
#: Largest entry written or read (64 MiB: a 2048-pixel RGB image as float32 is 48 MiB).
MAX_ENTRY_BYTES = 64 << 20

#: What the disk cache makes of an entry that is stored but unusable.
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
    """Size in bytes of the entry holding a row of ``dim`` values of ``dtype``."""
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
    """The bytes of the entry holding ``row``.

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
