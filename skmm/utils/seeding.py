"""Seeds from scikit-learn ``random_state`` values, and seeded torch blocks.

One rule everywhere in skmm: an int fixes the result; a RandomState or Generator
draws a seed from it; None draws from numpy's global RNG (so ``np.random.seed``
still makes an unseeded run repeatable, as in scikit-learn).
"""

import contextlib
import os
import threading
import uuid

import joblib
import numpy as np
import torch

__all__ = ["seed_of", "seeded"]

#: torch's CPU generator is one per process: seeded blocks of several threads take turns on it
_RNG_LOCK = threading.RLock()


def _new_lock_in_child():
    # a process forked while another thread held the lock (decoding workers started by a predict while a
    # fit trains) must not inherit it held by a thread that does not exist there
    global _RNG_LOCK
    _RNG_LOCK = threading.RLock()


os.register_at_fork(after_in_child=_new_lock_in_child)


def seed_of(random_state):
    """An int seed from ``random_state`` (int, RandomState, Generator or None).

    Returns ``(seed, reproducible)``: ``reproducible`` is True only for an int,
    the one case where another call with the same value gives the same weights
    (so only then may a fingerprint promise it).

    Examples
    --------
    >>> from skmm.utils.seeding import seed_of
    >>> seed_of(7)
    (7, True)
    """
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state) % (2**63), True
    if random_state is None:
        return int(np.random.mtrand._rand.randint(np.iinfo(np.int32).max)), False
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max)), False
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(np.iinfo(np.int64).max)), False
    raise TypeError(f"random_state must be None, an int or a numpy random generator, got {random_state!r}")


@contextlib.contextmanager
def seeded(random_state):
    """Run a block with torch's CPU RNG seeded from ``random_state``; restore it after.

    torch has one CPU generator per process, so a seeded block holds a lock: the
    seeded blocks of other threads (fits in a threaded joblib search, or in a Dask
    worker) wait for it instead of drawing from the same generator, which made the
    results depend on timing.  Inside the block joblib runs sequentially: a nested
    ``Parallel`` (a LogisticRegression's fit) would otherwise let a Dask worker
    start another task in this process while this one waits.

    Parameters
    ----------
    random_state : int, RandomState, Generator or None
        Where the seed comes from (see :func:`seed_of`).

    Yields
    ------
    token : str
        The fingerprint token of the seed: ``"seed=<n>"`` when ``random_state``
        fixes the weights, a unique ``"unseeded=<uuid>"`` otherwise, so that an
        embedding cache never takes two differently initialised networks for one.

    Examples
    --------
    >>> import torch
    >>> from skmm.utils.seeding import seeded
    >>> with seeded(0) as token:
    ...     a = torch.rand(1)
    >>> with seeded(0):
    ...     b = torch.rand(1)
    >>> bool(a == b), token
    (True, 'seed=0')
    """
    seed, reproducible = seed_of(random_state)
    with _RNG_LOCK, joblib.parallel_config(backend="sequential"), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield f"seed={seed}" if reproducible else f"unseeded={uuid.uuid4().hex}"
