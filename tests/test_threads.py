"""Torch threads while a FusionClassifier trains (skmm.utils.threads; measured in benchmarks/attention.py)."""

import pytest
import torch
from skorch.callbacks import Callback

from skmm import ImageEncoder
from skmm.utils import threads
from skmm.utils.threads import available_cores, cgroup_cpu_limit, free_cores, torch_threads, training_threads

from helpers import three_epochs


class ThreadsSeen(Callback):
    def __init__(self):
        self.seen = set()

    def on_batch_begin(self, net, **kwargs):
        self.seen.add(torch.get_num_threads())


@pytest.fixture
def four_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    yield
    torch.set_num_threads(before)


def test_a_head_on_features_trains_on_one_thread_and_the_setting_comes_back(frame, four_threads):
    X, y = frame
    spy = ThreadsSeen()
    clf = three_epochs(callbacks=[spy], fusion="attention").fit(X, y)
    assert spy.seen == {1}
    assert torch.get_num_threads() == 4
    clf.predict(X)
    assert torch.get_num_threads() == 4


def test_a_trainable_branch_keeps_torch_threads_without_loader_workers(frame, four_threads, monkeypatch):
    monkeypatch.setattr("skmm.estimators.base.free_cores", lambda: 8)
    X, y = frame
    spy = ThreadsSeen()
    image = ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (4, 8)}, augment="none")
    three_epochs(image=image, callbacks=[spy], max_epochs=1).fit(X, y)
    assert spy.seen == {4}


def test_augmentation_workers_leave_the_training_threads_the_other_cores(frame, four_threads, monkeypatch):
    pytest.importorskip("torchvision")
    monkeypatch.setattr("skmm.estimators.base.free_cores", lambda: 3)
    X, y = frame
    spy = ThreadsSeen()
    image = ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (4, 8)}, augment="light", num_workers=2)
    three_epochs(image=image, callbacks=[spy], max_epochs=1).fit(X, y)
    assert spy.seen == {1}
    assert torch.get_num_threads() == 4


def test_the_setting_comes_back_when_training_fails(frame, four_threads, monkeypatch):
    X, y = frame

    def boom(*args, **kwargs):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")

    monkeypatch.setattr("skorch.NeuralNetClassifier.fit", boom)
    with pytest.raises(RuntimeError, match="boom"):
        three_epochs().fit(X, y)
    assert torch.get_num_threads() == 4


@pytest.mark.parametrize(
    "trainable, workers, cores, expected",
    [(False, 0, 16, 1), (False, 4, 16, 1), (True, 0, 16, 16), (True, 4, 16, 12), (True, 2, 2, 1), (True, 4, 2, 1)],
)
def test_training_threads_rule(trainable, workers, cores, expected):
    assert training_threads(trainable=trainable, loader_workers=workers, cores=cores) == expected


def test_torch_threads_never_raises_the_count(four_threads):
    with torch_threads(8) as n:
        assert n == 4 == torch.get_num_threads()
    with torch_threads(None):
        assert torch.get_num_threads() == 4


def test_a_trainable_branch_never_trains_on_more_threads_than_the_cores_it_may_use(frame, four_threads, monkeypatch):
    monkeypatch.setattr("skmm.estimators.base.free_cores", lambda: 2)
    X, y = frame
    spy = ThreadsSeen()
    image = ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (4, 8)}, augment="none")
    three_epochs(image=image, callbacks=[spy], max_epochs=1).fit(X, y)
    assert spy.seen == {2}
    assert torch.get_num_threads() == 4


def _cgroup(tmp_path, proc, files):
    (tmp_path / "proc").write_text(proc)
    for rel, text in files.items():
        path = tmp_path / "fs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return dict(root=str(tmp_path / "fs"), proc_cgroup=str(tmp_path / "proc"))


@pytest.mark.parametrize(
    "proc, files, expected",
    [
        ("0::/job\n", {"job/cpu.max": "150000 100000\n"}, 1.5),
        ("0::/job\n", {"job/cpu.max": "max 100000\n"}, None),
        ("0::/\n", {"cpu.max": "50000 100000\n"}, 0.5),  # a container's own cgroup, mounted at the root
        ("0::/job\n", {"job/cpu.max": "300000 100000\n", "cpu.max": "100000 100000\n"}, 1.0),  # the smallest
        ("4:cpu,cpuacct:/docker/abc\n", {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000",
                                          "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000"}, 2.0),
        ("4:cpu,cpuacct:/docker/abc\n", {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "-1",
                                          "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000"}, None),
        ("0::/job\n", {}, None),
    ],
)
def test_cgroup_cpu_limit_reads_v2_and_v1_quotas(tmp_path, proc, files, expected):
    assert cgroup_cpu_limit(**_cgroup(tmp_path, proc, files)) == expected


@pytest.mark.parametrize("limit, expected", [(None, 6), (1.5, 2), (0.5, 1), (16.0, 6)])
def test_available_cores_is_the_affinity_capped_by_the_quota(monkeypatch, limit, expected):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(6)), raising=False)
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: limit)
    assert available_cores() == expected


class ForwardThreads(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.seen = inner, set()

    def forward(self, x):
        self.seen.add(torch.get_num_threads())
        return self.inner(x)


def test_a_frozen_backbone_encodes_on_the_cores_it_may_use_and_a_head_predicts_on_one(frame, four_threads, monkeypatch):
    monkeypatch.setattr("skmm.encoders.base.free_cores", lambda: 2)
    monkeypatch.setattr("skmm.estimators.base.free_cores", lambda: 2)
    X, y = frame
    encoder = ImageEncoder("cnn", image_size=16, trainable=False, random_state=0, cache=False,
                           backbone_kwargs={"channels": (4, 8)}).fit(X[["image_path"]])
    spy = ForwardThreads(encoder._module)
    encoder._module = spy
    encoder.transform(X[["image_path"]])
    assert spy.seen == {2}
    assert torch.get_num_threads() == 4

    clf = three_epochs(image=ImageEncoder("cnn", image_size=16, trainable=False, random_state=0,
                                          backbone_kwargs={"channels": (4, 8)})).fit(X, y)
    head = ForwardThreads(clf.net_.module_.head)
    clf.net_.module_.head = head
    clf.predict_proba(X.iloc[:3])
    assert head.seen == {1}
    assert torch.get_num_threads() == 4


def test_a_trainable_branch_predicts_on_the_cores(frame, four_threads, monkeypatch):
    monkeypatch.setattr("skmm.estimators.base.free_cores", lambda: 3)
    X, y = frame
    image = ImageEncoder("cnn", image_size=16, backbone_kwargs={"channels": (4, 8)}, augment="none")
    clf = three_epochs(image=image, max_epochs=1).fit(X, y)
    head = ForwardThreads(clf.net_.module_.head)
    clf.net_.module_.head = head
    clf.predict(X.iloc[:2])
    assert head.seen == {3}


def _proc(tmp_path, running, own_states):
    (tmp_path / "loadavg").write_text(f"3.10 2.00 1.00 {running}/300 4242\n")
    for i, state in enumerate(own_states):
        (tmp_path / "task" / str(i)).mkdir(parents=True)
        (tmp_path / "task" / str(i) / "stat").write_text(f"{i} (python (x) y) {state} 1 2 3\n")
    return dict(loadavg=str(tmp_path / "loadavg"), own_tasks=str(tmp_path / "task"))


@pytest.mark.parametrize(
    "cores, running, own_states, expected",
    [
        (2, 1, "RS", 2),  # only this thread runs: both cores
        (2, 2, "RS", 1),  # one other job: one core left
        (2, 3, "RRSS", 1),  # two of ours (spinning torch threads are not other jobs) and one other job
        (2, 3, "RRRS", 2),  # every running task is ours
        (8, 4, "RS", 5),
        (2, 9, "R", 1),  # never fewer than one
    ],
)
def test_free_cores_leaves_out_what_other_jobs_run(tmp_path, cores, running, own_states, expected):
    assert free_cores(cores, **_proc(tmp_path, running, own_states)) == expected


def test_free_cores_without_proc_takes_nothing(tmp_path):
    assert free_cores(3, loadavg=str(tmp_path / "none"), own_tasks=str(tmp_path / "none")) == 3


def test_free_cores_reads_the_cgroup_files_again_only_every_few_seconds(monkeypatch):
    reads = []

    def counting():
        reads.append(1)
        return 2

    monkeypatch.setattr(threads, "available_cores", counting)
    monkeypatch.setattr(threads, "_AVAILABLE", [float("-inf"), 1])
    monkeypatch.setattr(threads, "_SNAPSHOT_FOR_S", -1.0)  # a new snapshot every call
    for _ in range(5):
        assert 1 <= free_cores() <= 2
    assert len(reads) == 1
    monkeypatch.setattr(threads, "_AVAILABLE_FOR_S", -1.0)
    free_cores()
    assert len(reads) == 2


def test_calls_close_together_share_one_snapshot_of_the_load(monkeypatch, tmp_path):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("0.0 0.0 0.0 1/100 1\n")
    real = threads.free_cores
    seen = []
    monkeypatch.setattr(threads, "_SNAPSHOT", [float("-inf"), 1])
    monkeypatch.setattr(threads, "_AVAILABLE", [float("-inf"), 1])
    monkeypatch.setattr(threads, "available_cores", lambda: 2)

    def recording(cores=None, *, loadavg="/proc/loadavg", own_tasks="/proc/self/task"):
        if cores is not None:
            seen.append(cores)
            return real(cores, loadavg=str(tmp_path / "loadavg"), own_tasks=str(tmp_path / "none"))
        return real()

    monkeypatch.setattr(threads, "free_cores", recording)
    assert [real() for _ in range(3)] == [2, 2, 2]
    assert seen == [2]  # one reading for the three calls
    monkeypatch.setattr(threads, "_SNAPSHOT_FOR_S", -1.0)
    real()
    assert seen == [2, 2]
