import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest
import torch

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
