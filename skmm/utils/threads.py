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

The cores counted are those this process may use: its affinity mask, and the CPU
quota of its cgroup (``docker run --cpus=2``, a Kubernetes CPU limit), where torch
by itself would start one thread per core of the host.  docs/scaling.md gathers
the thread, worker and ``n_jobs`` settings in one place.
"""

import contextlib
import math
import os
import time

import torch

__all__ = [
    "available_cores", "cgroup_cpu_limit", "free_cores", "inference_threads", "training_threads", "torch_threads",
]


def cgroup_cpu_limit(root="/sys/fs/cgroup", proc_cgroup="/proc/self/cgroup"):
    """The CPU quota of this process's cgroup, in CPUs (e.g. 1.5), or None when it has none.

    Reads cgroup v2's ``cpu.max`` (``"<quota> <period>"`` or ``"max <period>"``) and
    cgroup v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``, in the cgroup
    ``/proc/self/cgroup`` names and, as containers usually mount their own cgroup
    there, in ``root`` itself.  The smallest quota found wins.

    Parameters
    ----------
    root : str, default="/sys/fs/cgroup"
        Where the cgroup file systems are mounted.
    proc_cgroup : str, default="/proc/self/cgroup"
        The file that names this process's cgroups.

    Returns
    -------
    float or None
        CPUs of CPU time per second the cgroup may use; None without a quota.

    Examples
    --------
    >>> from skmm.utils.threads import cgroup_cpu_limit
    >>> limit = cgroup_cpu_limit()
    >>> limit is None or limit > 0
    True
    """
    v2, v1 = [""], [""]
    try:
        with open(proc_cgroup) as fh:
            for line in fh:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) != 3:
                    continue
                if parts[0] == "0" and parts[1] == "":
                    v2.append(parts[2])
                elif "cpu" in parts[1].split(","):
                    v1.append(parts[2])
    except OSError:
        pass
    limits = []
    for rel in v2:
        text = _read(os.path.join(root, rel.lstrip("/"), "cpu.max"))
        fields = text.split() if text else []
        if len(fields) == 2 and fields[0] != "max":
            limits.append(_ratio(fields[0], fields[1]))
    for rel in v1:
        for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
            base = os.path.join(root, mount, rel.lstrip("/"))
            limits.append(_ratio(_read(os.path.join(base, "cpu.cfs_quota_us")),
                                 _read(os.path.join(base, "cpu.cfs_period_us"))))
    limits = [x for x in limits if x is not None]
    return min(limits) if limits else None


def _read(path):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def _ratio(quota, period):
    try:
        quota, period = int(quota), int(period)
    except (TypeError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None  # v1 writes -1 for "no quota"


def available_cores():
    """CPUs this process may run on: its affinity mask, capped by its cgroup's CPU quota.

    A quota of 1.5 CPUs counts as 2 cores (rounded up, at least 1).

    Returns
    -------
    int
        The cores, at least 1.

    Examples
    --------
    >>> from skmm.utils.threads import available_cores
    >>> available_cores() >= 1
    True
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, max(1, math.ceil(limit)))
    return max(1, cores)


# (monotonic time, cores) of the last available_cores() free_cores made; see _cores_now
_AVAILABLE = [float("-inf"), 1]
_AVAILABLE_FOR_S = 2.0
# (monotonic time, free cores) of free_cores()'s last snapshot
_SNAPSHOT = [float("-inf"), 1]
_SNAPSHOT_FOR_S = 0.05


def _cores_now():
    """:func:`available_cores`, read again at most every ``_AVAILABLE_FOR_S`` seconds.

    Its cgroup files cost 0.1-1.5 ms a read (more on a loaded machine), and every
    forward pass of a frozen encoder asks: one prediction request asked twice.
    """
    now = time.monotonic()
    if now - _AVAILABLE[0] > _AVAILABLE_FOR_S:
        _AVAILABLE[:] = [now, available_cores()]
    return _AVAILABLE[1]


def free_cores(cores=None, *, loadavg="/proc/loadavg", own_tasks="/proc/self/task"):
    """Cores not taken by other processes at this moment: ``cores`` minus their running tasks.

    The kernel's count of tasks running or ready to run right now (the fourth
    field of ``/proc/loadavg``), less this process's own running threads, is what
    other jobs hold.  A snapshot, not an average: it costs a few file reads and
    follows the machine as it is when a forward pass starts (calls without
    arguments within 50 ms share one snapshot: the forward passes of one
    prediction request).  Where the files do not exist (macOS, Windows)
    nothing is taken.

    Parameters
    ----------
    cores : int or None, default=None
        The cores this process may use; None: :func:`available_cores` (read
        again at most every 2 seconds).
    loadavg, own_tasks : str
        The files read (for tests).

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> from skmm.utils.threads import available_cores, free_cores
    >>> 1 <= free_cores() <= available_cores()
    True
    """
    if cores is None and (loadavg, own_tasks) == ("/proc/loadavg", "/proc/self/task"):
        now = time.monotonic()
        if now - _SNAPSHOT[0] > _SNAPSHOT_FOR_S:  # one request's forward passes share a snapshot
            _SNAPSHOT[:] = [now, free_cores(_cores_now(), loadavg=loadavg, own_tasks=own_tasks)]
        return _SNAPSHOT[1]
    cores = _cores_now() if cores is None else int(cores)
    text = _read(loadavg)
    try:
        running = int(text.split()[3].split("/")[0])
    except (AttributeError, IndexError, ValueError):
        return max(1, cores)
    if running <= 1:  # this thread alone
        return max(1, cores)
    own = 0
    try:
        tasks = os.listdir(own_tasks)
    except OSError:
        tasks = []
    for task in tasks:
        stat = _read(os.path.join(own_tasks, task, "stat"))
        # "pid (name) S ...": the state follows the last parenthesis (names may hold spaces)
        if stat and stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] == "R":
            own += 1
    others = max(0, running - max(own, 1))
    return max(1, min(cores, cores - others))


def inference_threads(*, module, cores):
    """Torch intra-op threads for a forward pass without gradients.

    Parameters
    ----------
    module : bool
        Whether the work runs a backbone (a CNN, a transformer) rather than a
        small head on embeddings.
    cores : int
        Cores this process may use and other jobs leave free (:func:`free_cores`).

    Returns
    -------
    int
        ``cores`` for a backbone (:func:`torch_threads` never raises torch's own
        setting, so a user's ``torch.set_num_threads`` still wins when lower);
        1 for a head on embeddings, whose operators are too small to share.

    Examples
    --------
    >>> from skmm.utils.threads import inference_threads
    >>> inference_threads(module=True, cores=4), inference_threads(module=False, cores=4)
    (4, 1)
    """
    return max(1, int(cores)) if module else 1


def training_threads(*, trainable, loader_workers, cores):
    """Torch intra-op threads for training a fusion network.

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
        threads do not wait on cores the workers hold.  Otherwise ``cores``
        (:func:`torch_threads` never raises torch's own setting).

    Examples
    --------
    >>> from skmm.utils.threads import training_threads
    >>> training_threads(trainable=False, loader_workers=0, cores=8)
    1
    >>> training_threads(trainable=True, loader_workers=2, cores=2)
    1
    >>> training_threads(trainable=True, loader_workers=0, cores=8)
    8
    """
    if not trainable:
        return 1
    if loader_workers:
        return max(1, int(cores) - int(loader_workers))
    return max(1, int(cores))


@contextlib.contextmanager
def torch_threads(n):
    """Run a block with at most ``n`` torch intra-op threads (None: as they are); restore after.

    Parameters
    ----------
    n : int or None
        The most threads; torch's setting is never raised.

    Yields
    ------
    int
        The threads in force within the block.

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
