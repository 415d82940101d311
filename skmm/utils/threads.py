"""Torch's intra-op threads while a network trains.

torch runs each operator on a pool of OpenMP threads, one per core by default, and
every operator ends at a barrier where the threads wait for each other.  A network
trained on cached embeddings does thousands of tiny operators per epoch (a batch of
32 rows of 128 features), far below the size where a second thread pays.  When
another process holds a core (a second fit, joblib or DataLoader workers, any job
on a shared machine), each barrier waits for a thread that is not running, and
such a fit runs 5-20 times slower than on one thread; the more operators per step
(``fusion="attention"`` has about 2.4 times as many as ``"concat"``), the worse.
See benchmarks/attention.py for the measurements.
"""

import contextlib

import torch

__all__ = ["head_training_threads", "torch_threads"]


def head_training_threads():
    """Threads to train a network whose inputs are all features (no trainable encoder): 1."""
    return 1


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
