"""Torch's intra-op threads while a network trains.

torch runs each operator on a pool of OpenMP threads, one per core by default, and
every operator ends at a barrier where the threads wait for each other.  A network
trained on cached embeddings does thousands of tiny operators per epoch (a batch of
32 rows of 128 features), far below the size where a second thread pays.  When
another process holds a core (a second fit, joblib or DataLoader workers, any job
on a shared machine), each barrier waits for a thread that is not running, and
such a fit runs 5-60 times slower than on one thread; the more operators per step
(``fusion="attention"`` has about 2.4 times as many as ``"concat"``), the worse.
A trainable CNN's convolutions do gain from a second thread on an idle machine
(about 1.8x on two cores), but lose 3-12x when a core is taken, by another job or
by the training loader's own augmentation workers.  See benchmarks/attention.py.

Environments that share their cores can also set ``OMP_WAIT_POLICY=PASSIVE``
before torch is imported (waiting threads then sleep instead of spinning).
"""

import contextlib
import os

import torch

__all__ = ["available_cores", "training_threads", "torch_threads"]


def available_cores():
    """CPUs this process may run on (its affinity mask), not the host's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def training_threads(*, trainable, loader_workers, cores):
    """Torch intra-op threads for training a fusion network (None: leave torch's setting).

    Parameters
    ----------
    trainable : bool
        Whether some branch of the network trains an encoder (a CNN, a GRU).
    loader_workers : int
        Worker processes of the training loader (train-time augmentation).
    cores : int
        Cores this process may use.

    Returns
    -------
    int or None
        1 for a network with no trainable encoder: its operators are too small
        for a second thread to pay, and one thread never waits on another.
        With loader workers, the cores they leave (at least 1), so the training
        threads do not wait on cores the workers hold.  Otherwise None.

    Examples
    --------
    >>> from skmm.utils.threads import training_threads
    >>> training_threads(trainable=False, loader_workers=0, cores=8)
    1
    >>> training_threads(trainable=True, loader_workers=2, cores=2)
    1
    >>> training_threads(trainable=True, loader_workers=0, cores=8) is None
    True
    """
    if not trainable:
        return 1
    if loader_workers:
        return max(1, int(cores) - int(loader_workers))
    return None


@contextlib.contextmanager
def torch_threads(n):
    """Run a block with at most ``n`` torch intra-op threads (None: as they are); restore after.

    Examples
    --------
    >>> import torch
    >>> from skmm.utils.threads import torch_threads
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    before = torch.get_num_threads()
    if n is None or n >= before:
        yield before
        return
    torch.set_num_threads(max(1, int(n)))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
