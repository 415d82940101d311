import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

# Two cores: one torch thread per test process keeps runs predictable and avoids
# oversubscription when joblib starts workers.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def shapes_df(tmp_path_factory):
    """A small shapes data set (images written once per session)."""
    from skmm.datasets import make_shapes

    return make_shapes(96, random_state=0, directory=tmp_path_factory.mktemp("shapes"), image_size=32)


@pytest.fixture(scope="session")
def shapes640(tmp_path_factory):
    """640 shapes rows split in two halves (train, test): enough to measure what a model learned."""
    from skmm.datasets import make_shapes

    df = make_shapes(640, random_state=0, directory=tmp_path_factory.mktemp("shapes640"), image_size=32)
    return df.iloc[:320].reset_index(drop=True), df.iloc[320:].reset_index(drop=True)


@pytest.fixture
def frame(shapes_df):
    """96 shapes rows, label kept out of X, with string row labels (errors must name labels, not positions)."""
    X = shapes_df.drop(columns="label").astype(object)
    X.index = [f"p{i}" for i in range(len(X))]
    y = pd.Series(shapes_df["label"].to_numpy(), index=X.index)
    return X, y


@pytest.fixture
def no_training(monkeypatch):
    """A list that gets an entry whenever the network's training starts."""
    calls = []
    monkeypatch.setattr("skorch.NeuralNetClassifier.fit", lambda self, *a, **k: calls.append(1))
    return calls


@pytest.fixture
def bad_files(tmp_path):
    """kind -> (path, the ImageEncoder options under which it fails)."""
    Image.new("RGB", (40, 40), "red").save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.png").write_text("this is not a picture")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()  # a path that exists but cannot be read as a file
    Image.new("RGB", (200, 200), "blue").save(tmp_path / "huge.png")
    return {
        "missing": (str(tmp_path / "gone.png"), {}),
        "not an image": (str(tmp_path / "notes.png"), {}),
        "empty": (str(tmp_path / "empty.jpg"), {}),
        "truncated": (str(tmp_path / "truncated.png"), {}),
        "unreadable": (str(tmp_path / "folder.png"), {}),
        "too many pixels": (str(tmp_path / "huge.png"), {"max_image_pixels": 100 * 100}),
    }


@pytest.fixture
def exports(monkeypatch):
    """The example input shape of each ONNX export (skmm.backbones.onnx); the process's exports forgotten."""
    from skmm.backbones import onnx as onnx_backend

    calls = []
    real = onnx_backend._export

    def counting(module, example, *args):
        calls.append(tuple(example.shape))
        return real(module, example, *args)

    monkeypatch.setattr(onnx_backend, "_export", counting)
    monkeypatch.setattr(onnx_backend, "_EXPORTED", {})
    return calls
