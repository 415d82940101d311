"""Predictions for a few rows (one request of a web service): no decoding workers, one-thread head."""

import pytest
from torch.utils.data import DataLoader

from skmm import ImageEncoder
from skmm.io.images import loading

from helpers import three_epochs


@pytest.fixture
def loaders(monkeypatch):
    """The num_workers of every image DataLoader made from here on."""
    made = []

    def recording(*args, **kwargs):
        made.append(kwargs.get("num_workers", 0))
        return DataLoader(*args, **kwargs)

    monkeypatch.setattr(loading, "DataLoader", recording)
    return made


@pytest.fixture
def fitted(frame):
    X, y = frame
    image = ImageEncoder("pixels", image_size=8, num_workers=2, cache=False)
    return three_epochs(image=image).fit(X, y)


def test_one_row_predictions_start_no_worker_processes(frame, fitted, loaders):
    X, _ = frame
    for method in (fitted.predict, fitted.predict_proba):
        method(X.iloc[[5]])
    fitted.predict(X.iloc[:8])
    assert loaders == [0, 0, 0]


def test_more_rows_than_a_decoding_chunk_still_use_the_workers_asked_for(frame, fitted, loaders):
    X, _ = frame
    proba = fitted.predict_proba(X.iloc[:9])
    assert loaders == [2]
    assert proba.shape[0] == 9
