"""skmm.plotting: each function draws on the axes it is given, returns them, and saves as a PNG."""

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skmm import FusionClassifier  # noqa: E402
from skmm.inspection import modality_importance  # noqa: E402
from skmm.plotting import (  # noqa: E402
    plot_confusion_matrix,
    plot_learning_curves,
    plot_modality_importance,
    plot_modality_weights,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def fitted(shapes_df):
    df = shapes_df[["image_path", "caption"]]
    clf = FusionClassifier(image="pixels", text="tfidf", fusion="gated", max_epochs=4, validation_fraction=0.25,
                           early_stopping_scoring="f1_macro", random_state=0, device="cpu", stacking=None)
    return clf.fit(df, shapes_df["label"]), df, shapes_df["label"]


def _saved(ax, tmp_path, name):
    path = tmp_path / f"{name}.png"
    ax.figure.savefig(path)
    plt.close(ax.figure)
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    return path


def test_learning_curves(fitted, tmp_path):
    clf, _, _ = fitted
    fig, ax = plt.subplots()
    assert plot_learning_curves(clf, ax=ax) is ax
    train = ax.get_lines()[0]
    np.testing.assert_allclose(train.get_ydata(), clf.net_.history[:, "train_loss"])
    assert [line.get_label() for line in ax.get_lines()] == ["train loss", "validation loss"]
    _saved(ax, tmp_path, "curves")


def test_confusion_matrix(fitted, tmp_path):
    clf, X, y = fitted
    ax = plot_confusion_matrix(clf, X, y)
    assert ax.get_title() == "Confusion matrix"
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(c) for c in clf.classes_]
    _saved(ax, tmp_path, "confusion")


def test_modality_importance_and_weights(fitted, tmp_path):
    clf, X, y = fitted
    result = modality_importance(clf, X, y, n_repeats=2, random_state=0)
    ax = plot_modality_importance(result)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["image", "text"]
    assert len(ax.patches) == 4  # permuted and removed, per modality
    _saved(ax, tmp_path, "importance")
    ax = plot_modality_weights(clf.modality_weights(X))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["image", "text"]
    _saved(ax, tmp_path, "weights")
