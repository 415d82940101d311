"""Files written whole or not at all."""

import os
import tempfile
from contextlib import contextmanager, suppress

__all__ = ["atomic_output"]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path):
    """Yield a temporary path beside ``path``; it becomes ``path`` only if the block succeeds.

    The temporary file is created in the target directory (so the final
    :func:`os.replace` is atomic) and deleted if the block raises, including on
    Ctrl-C: an interrupted command leaves the old file, or none, never half of one.
    """
    path = os.path.abspath(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=os.path.dirname(path))
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # as if created by open(): mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.remove(tmp)
        raise
