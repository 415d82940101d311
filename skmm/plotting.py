"""Plots with matplotlib (``pip install "skmm[plot]"``), in the manner of scikit-learn's displays.

Every function takes an optional ``ax=`` (a new figure's axes when None) and
returns the axes it drew on.
"""

import numpy as np

from .utils.optional import import_optional

__all__ = ["plot_confusion_matrix", "plot_learning_curves", "plot_modality_importance", "plot_modality_weights"]


def _axes(ax):
    if ax is not None:
        return ax
    plt = import_optional("matplotlib.pyplot", "plot", what="skmm.plotting")
    return plt.subplots()[1]


def plot_learning_curves(model, *, ax=None):
    """Training and validation loss per epoch (and the validation score, when tracked).

    Parameters
    ----------
    model : fitted FusionClassifier
        Its skorch history (``model.net_.history``) is read.
    ax : matplotlib Axes, optional
        Where to draw; a new figure's axes when None.

    Returns
    -------
    matplotlib Axes
        The axes drawn on.
    """
    ax = _axes(ax)
    history = model.net_.history
    epochs = history[:, "epoch"]
    ax.plot(epochs, history[:, "train_loss"], marker="o", label="train loss")
    if "valid_loss" in history[-1]:
        ax.plot(epochs, history[:, "valid_loss"], marker="o", label="validation loss")
    if "valid_score" in history[-1]:
        twin = ax.twinx()
        twin.plot(epochs, history[:, "valid_score"], color="tab:green", marker="s", label="validation score")
        twin.set_ylabel("validation score")
        twin.legend(loc="upper right")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("Learning curves")
    ax.legend(loc="upper left" if "valid_score" in history[-1] else "best")
    return ax


def plot_confusion_matrix(model, X, y, *, normalize=None, ax=None):
    """Confusion matrix of ``model`` on ``(X, y)`` through scikit-learn's ConfusionMatrixDisplay.

    ``normalize`` is passed on ("true", "pred", "all" or None).
    """
    import_optional("matplotlib", "plot", what="skmm.plotting")
    from sklearn.metrics import ConfusionMatrixDisplay

    ax = _axes(ax)
    ConfusionMatrixDisplay.from_estimator(model, X, y, normalize=normalize, ax=ax, xticks_rotation=45, colorbar=False)
    ax.set_title("Confusion matrix")
    return ax


def plot_modality_importance(result, *, ax=None):
    """Horizontal bars: score drop per modality when permuted and when removed, with their std.

    Parameters
    ----------
    result : Bunch
        What :func:`skmm.inspection.modality_importance` returns.
    """
    ax = _axes(ax)
    names = list(result.modalities)
    y = np.arange(len(names))
    h = 0.38
    ax.barh(y - h / 2, result.importances_mean, h, xerr=result.importances_std, label="permuted")
    ax.barh(y + h / 2, result.removal_importances_mean, h, xerr=result.removal_importances_std, label="removed")
    ax.set_yticks(y, names)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"score drop (baseline {result.baseline_score:.3f})")
    ax.set_title("Modality importance")
    ax.legend()
    return ax


def plot_modality_weights(weights, *, ax=None):
    """Distribution over rows of each modality's weight (box plot).

    Parameters
    ----------
    weights : DataFrame
        What ``model.modality_weights(X)`` returns (one column per modality).
    """
    ax = _axes(ax)
    ax.boxplot([weights[c].to_numpy() for c in weights.columns], orientation="horizontal")
    ax.set_yticks(np.arange(1, len(weights.columns) + 1), list(weights.columns))
    ax.set_xlim(0, 1)
    ax.set_xlabel("weight in the fusion")
    ax.set_title("Modality weights per row")
    return ax
