"""Predictions for a few rows (one request of a web service): no decoding workers, one-thread head."""

import numpy as np
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


def test_a_few_rows_skip_skorchs_loader_and_get_the_same_probabilities(frame, fitted, monkeypatch):
    X, _ = frame
    made = []
    real = fitted.net_.get_iterator
    monkeypatch.setattr(fitted.net_, "get_iterator", lambda *args, **kwargs: made.append(1) or real(*args, **kwargs))
    many = fitted.predict_proba(X.iloc[:70])  # more than a request: skorch's loader
    assert made == [1]
    one = fitted.predict_proba(X.iloc[[5]])
    few = fitted.predict_proba(X.iloc[3:8])
    assert made == [1]
    np.testing.assert_allclose(one[0], many[5], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(few, many[3:8], rtol=1e-5, atol=1e-6)
