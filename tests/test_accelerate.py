"""FusionClassifier(accelerator=...): training through Hugging Face Accelerate (skorch's AccelerateMixin)."""

import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from skmm import FusionClassifier, ImageEncoder

accelerate = pytest.importorskip("accelerate")  # the dev extra installs it (CI runs these tests)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def accelerator():
    from accelerate.state import AcceleratorState

    yield accelerate.Accelerator(cpu=True)
    AcceleratorState._reset_state(True)  # the accelerator's process-wide state, for the next tests


def _classifier(**params):
    image = ImageEncoder("cnn", image_size=16, augment="none", backbone_kwargs={"channels": (4, 8)})
    # blend=None: a fit with an accelerator trains on every row (it keeps no held-out rows for blend="auto"),
    # and the tests compare it with a plain fit of the same settings
    params.setdefault("blend", None)
    return FusionClassifier(image=image, text="tfidf", dim=8, max_epochs=2, batch_size=8, random_state=0, **params)


def test_one_process_accelerated_fit_predicts_and_pickles_without_its_accelerator(shapes_df, accelerator, capsys):
    df = shapes_df.iloc[:32]
    X, y = df[["image_path", "caption"]], df["label"]
    clf = _classifier(accelerator=accelerator).fit(X, y)
    assert "train_loss" not in capsys.readouterr().out  # verbose=0: no epoch table
    assert type(clf.net_).__name__ == "AutocastNet"  # unwrapped into an ordinary net after training
    assert clf.device_ == "cpu" and len(clf.net_.history) == 2
    proba = clf.predict_proba(X)
    back = pickle.loads(pickle.dumps(clf))
    assert back.accelerator is None
    np.testing.assert_array_equal(back.predict_proba(X), proba)
    # the same seed without an accelerator trains the same model
    np.testing.assert_allclose(_classifier().fit(X, y).predict_proba(X), proba, atol=1e-5)


def test_a_missing_accelerate_names_the_extra(monkeypatch, shapes_df):
    import skmm.utils.optional

    real = skmm.utils.optional.importlib.import_module

    def without_accelerate(name, *args):
        if name.partition(".")[0] == "accelerate":
            raise ImportError("No module named 'accelerate'")
        return real(name, *args)

    monkeypatch.setattr(skmm.utils.optional.importlib, "import_module", without_accelerate)
    with pytest.raises(ImportError, match=r'pip install "skmm\[accelerate\]"'):
        _classifier(accelerator=object()).fit(shapes_df, shapes_df["label"])


_TRAIN = textwrap.dedent(
    """
    import json, os, sys
    import joblib, numpy as np, torch
    from accelerate import Accelerator
    from skmm import FusionClassifier, ImageEncoder
    from skmm.datasets import make_shapes

    out = sys.argv[1]
    torch.set_num_threads(1)
    accelerator = Accelerator(cpu=True)
    rank = accelerator.process_index
    df = make_shapes(48, random_state=0, directory=os.path.join(out, f"shapes{rank}"), image_size=16)
    image = ImageEncoder("cnn", image_size=16, augment="none", backbone_kwargs={"channels": (4, 8)})
    clf = FusionClassifier(image=image, text="tfidf", dim=8, max_epochs=2, batch_size=8, random_state=0,
                           accelerator=accelerator)
    X = df[["image_path", "caption"]]
    clf.fit(X, df["label"])
    np.savez(os.path.join(out, f"weights{rank}.npz"),
             **{k: v.cpu().numpy() for k, v in clf.net_.module_.state_dict().items()})
    np.save(os.path.join(out, f"proba{rank}.npy"), clf.predict_proba(X))
    if accelerator.is_main_process:
        joblib.dump(clf, os.path.join(out, "model.joblib"))
        with open(os.path.join(out, "info.json"), "w") as f:
            json.dump({"processes": accelerator.num_processes, "batches": len(clf.net_.history[-1]["batches"])}, f)
    accelerator.wait_for_everyone()
    """
)


@pytest.mark.slow  # two torch processes (gloo) started by torchrun, ~40 s on 2 busy cores
def test_two_process_data_parallel_fit_ends_with_identical_weights(tmp_path, shapes_df):
    import joblib

    script = tmp_path / "train.py"
    script.write_text(_TRAIN)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run([*torchrun, str(script), str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((tmp_path / "info.json").read_text())
    # 48 rows in batches of 8 = 6 batches per epoch, shared by the 2 processes
    assert info == {"processes": 2, "batches": 3}
    first, second = np.load(tmp_path / "weights0.npz"), np.load(tmp_path / "weights1.npz")
    assert sorted(first.files) == sorted(second.files) and len(first.files) > 10
    for name in first.files:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    proba = np.load(tmp_path / "proba0.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "proba1.npy"), proba)
    # the saved model loads and predicts in this plain (not distributed) process
    model = joblib.load(tmp_path / "model.joblib")
    from skmm.datasets import make_shapes

    df = make_shapes(48, random_state=0, directory=tmp_path / "shapes0", image_size=16)
    np.testing.assert_allclose(model.predict_proba(df[["image_path", "caption"]]), proba, atol=1e-6)
