"""The multilabel side of FusionClassifier: its options and the weights of each label's positives."""

from collections.abc import Mapping

import numpy as np

from ..utils.validation import check_number, check_option

__all__ = ["check_target_options", "label_weights"]


def check_target_options(estimator):
    """Check ``threshold`` and ``calibration``, and that what they fit on (validation rows) exists."""
    threshold = estimator.threshold
    if isinstance(threshold, str):
        if threshold != "tune":
            raise ValueError(f"threshold must be a number in (0, 1) or 'tune', got {threshold!r}")
    else:
        try:
            check_number("threshold", threshold, low=0, high=1, low_open=True, high_open=True)
        except ValueError:
            raise ValueError(f"threshold must be a number in (0, 1) or 'tune', got {threshold!r}") from None
    check_option("calibration", estimator.calibration, ("temperature",), allow_none=True)
    for name, needs in (("calibration", estimator.calibration is not None), ("threshold", threshold == "tune")):
        if needs and estimator.validation_fraction is None:
            raise ValueError(
                f"{name}={getattr(estimator, name)!r} is fitted on validation rows: set validation_fraction "
                "(e.g. 0.2)"
            )


def label_weights(class_weight, indicator, classes):
    """The weight of each label's positive rows (BCEWithLogitsLoss's ``pos_weight``), or None.

    ``"balanced"``: ``n_negative / n_positive`` per label (1 for a label without
    positive or without negative rows); a dict maps label names to weights,
    labels it leaves out weigh 1.
    """
    if class_weight is None:
        return None
    if isinstance(class_weight, str):  # "balanced"
        positives = indicator.sum(axis=0).astype(np.float64)
        negatives = len(indicator) - positives
        ok = (positives > 0) & (negatives > 0)
        return np.where(ok, negatives / np.where(ok, positives, 1.0), 1.0)
    assert isinstance(class_weight, Mapping)
    position = {label: i for i, label in enumerate(np.asarray(classes).tolist())}
    unknown = [key for key in class_weight if key not in position]
    if unknown:
        raise ValueError(f"class_weight has keys that are not labels of y: {unknown}; the labels are {list(position)}")
    weights = np.ones(len(position))
    for key, weight in class_weight.items():
        check_number(f"class_weight[{key!r}]", weight, low=0)
        weights[position[key]] = weight
    return weights
