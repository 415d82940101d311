"""Every estimator validates every parameter in fit, before any encoding or training.

The tables below hold one bad value per parameter (a wrong kind or out of range)
and the fragment of the error that names it; a completeness test makes sure a new
parameter cannot be added without its check.
"""

import numpy as np
import pytest

from skmm import FusionClassifier, FusionRegressor, ImageEncoder, TextEncoder

SHARED_ENCODER = {
    "backbone": [(3, TypeError, "backbone must be a registered name"), ("nope", ValueError, "unknown")],
    "weights": [(3.5, TypeError, "weights must be")],
    "trainable": [("last:0", ValueError, "trainable must be"), (1, ValueError, "trainable must be")],
    "batch_size": [(0, ValueError, "batch_size must be a positive integer"), (True, ValueError, "batch_size")],
    "device": [("tpu", ValueError, "device must be")],
    "precision": [("half", ValueError, "precision must be one of")],
    "cache": [("yes", TypeError, "cache must be True or False")],
    "cache_dir": [(3, TypeError, "cache_dir must be a directory path")],
    "random_state": [("seed", TypeError, "random_state must be")],
    "backbone_kwargs": [([1], TypeError, "backbone_kwargs must be a dict")],
    "verbose": [(-1, ValueError, "verbose must be an integer >= 0")],
}
BAD = {
    ImageEncoder: {
        **SHARED_ENCODER,
        "image_size": [(0, ValueError, "image_size must be a positive integer"), (8.0, ValueError, "image_size")],
        "resize": [("bogus", ValueError, "resize must be one of")],
        "augment": [("heavy", ValueError, "augment must be one of"), (3, TypeError, "augment must be one of")],
        "num_workers": [(-1, ValueError, "num_workers")],
        "decode": [("lazy", ValueError, "decode must be one of")],
        "on_error": [("skip", ValueError, "on_error must be one of")],
        "max_image_pixels": [(-3, ValueError, "max_image_pixels must be a positive integer")],
        "backend": [("openvino", ValueError, "backend must be one of"), (None, ValueError, "backend must be one of")],
    },
    TextEncoder: {
        **SHARED_ENCODER,
        "n_components": [(0, ValueError, "n_components must be a positive integer")],
        "max_length": [(0, ValueError, "max_length must be a positive integer")],
        "dim": [(2.5, ValueError, "dim must be a positive integer")],
        "per_column": [("yes", TypeError, "per_column must be True or False")],
        "backend": [("int8", ValueError, "backend must be one of"), (None, ValueError, "backend must be one of")],
    },
    FusionClassifier: {
        "image": [(3, TypeError, "image must be a ImageEncoder"), ("no-such", ValueError, "unknown image backbone")],
        "text": [(3, TypeError, "text must be a TextEncoder")],
        "image_col": [(1.5, TypeError, "image_col must be a column name")],
        "text_col": [(1.5, TypeError, "text_col must be a column name")],
        "columns": [(["a"], TypeError, "columns must be None, 'auto' or a dict"),
                    ({"caption": "words"}, ValueError, r"columns\['caption'\] = 'words' is not a role")],
        "encoders": [(["a"], TypeError, "encoders must be a dict"),
                     ({"caption": 3}, TypeError, r"encoders\['caption'\] must be an ImageEncoder")],
        "image_root": [(3, TypeError, "image_root must be a directory path")],
        "picture_pooling": [("max", ValueError, "picture_pooling must be 'mean' or 'attention'")],
        "fusion": [(3, TypeError, "fusion must be a registered name"), ("nope", ValueError, "unknown fusion")],
        "dim": [(0, ValueError, "dim must be a positive integer")],
        "hidden_dim": [(-1, ValueError, "hidden_dim must be an integer >= 0")],
        "dropout": [(1.0, ValueError, r"dropout must be in \[0, 1\)")],
        "modality_dropout": [(-0.1, ValueError, r"modality_dropout must be in \[0, 1\)")],
        "fusion_kwargs": [([1], TypeError, "fusion_kwargs must be a dict")],
        "unimodal_loss": [(np.inf, ValueError, "unimodal_loss must be a finite number >= 0")],
        "max_epochs": [(0, ValueError, "max_epochs must be a positive integer")],
        "batch_size": [("32", ValueError, "batch_size must be a positive integer")],
        "lr": [(0, ValueError, "lr must be a finite number > 0")],
        "weight_decay": [(-1e-4, ValueError, "weight_decay must be a finite number >= 0")],
        "backbone_lr": [(-1, ValueError, "backbone_lr must be a finite number > 0")],
        "grad_clip": [(0, ValueError, "grad_clip must be a finite number > 0")],
        "warmup_epochs": [(20, ValueError, r"warmup_epochs must be an integer in \[0, 19\]")],
        "label_smoothing": [(1.0, ValueError, r"label_smoothing must be in \[0, 1\)"), ("0.1", ValueError, "label_smoothing")],
        "stacking": [("tfidf", ValueError, "stacking must be 'auto', None or a scikit-learn classifier"),
                     (3, TypeError, "stacking must be 'auto', None or a scikit-learn classifier")],
        "blend": [("linear", ValueError, "blend must be 'auto' or None"), (0.5, ValueError, "blend must be 'auto'")],
        "class_weight": [("balance", ValueError, "class_weight must be None, 'balanced' or a dict")],
        "threshold": [(1.0, ValueError, r"threshold must be a number in \(0, 1\) or 'tune'"),
                      (0, ValueError, "threshold must be"), ("best", ValueError, "threshold must be")],
        "calibration": [("platt", ValueError, "calibration must be one of"),
                        ("temperature", ValueError, "calibration='temperature' is fitted on validation rows")],
        "validation_fraction": [(1.0, ValueError, r"validation_fraction must be in \(0, 1\)")],
        "n_iter_no_change": [(0, ValueError, "n_iter_no_change must be a positive integer")],
        "early_stopping_scoring": [("f1_macro", ValueError, "early_stopping_scoring needs validation_fraction")],
        "callbacks": [("early", TypeError, "callbacks must be a list")],
        "device": [("tpu", ValueError, "device must be")],
        "precision": [("fp16", ValueError, "precision must be one of")],
        "accelerator": [("cuda", TypeError, "accelerator must be an accelerate.Accelerator")],
        "on_error": [("skip", ValueError, "on_error must be one of")],
        "random_state": [(1.5, TypeError, "random_state must be")],
        "verbose": [(-1, ValueError, "verbose must be an integer >= 0")],
    },
}
BAD[FusionRegressor] = {
    **{k: v for k, v in BAD[FusionClassifier].items()
       if k not in ("label_smoothing", "stacking", "blend", "class_weight", "threshold", "calibration")},
    "loss": [("squared", ValueError, "loss must be one of"), (None, ValueError, "loss must be one of")],
    "standardize_target": [("yes", TypeError, "standardize_target must be True or False")],
}
CASES = [
    pytest.param(cls, name, value, error, match, id=f"{cls.__name__}-{name}-{value!r}")
    for cls, table in BAD.items()
    for name, values in table.items()
    for value, error, match in values
]


@pytest.mark.parametrize("cls", list(BAD))
def test_every_parameter_has_a_bad_value_in_the_table(cls):
    assert sorted(BAD[cls]) == sorted(cls().get_params(deep=False))


@pytest.mark.parametrize("cls, name, value, error, match", CASES)
def test_a_bad_parameter_fails_in_fit_naming_it(cls, name, value, error, match, shapes_df, monkeypatch):
    work = []
    # nothing is read, encoded or trained before the parameters are checked
    monkeypatch.setattr("skmm.encoders.image.load_images_parallel", lambda *a, **k: work.append("load"))
    monkeypatch.setattr("skorch.NeuralNetClassifier.fit", lambda *a, **k: work.append("train"))
    monkeypatch.setattr("skorch.NeuralNetRegressor.fit", lambda *a, **k: work.append("train"))
    if cls in (FusionClassifier, FusionRegressor):
        estimator, X = cls(**{"image": "pixels", "text": "tfidf", name: value}), shapes_df
        y = shapes_df["label"] if cls is FusionClassifier else np.arange(len(shapes_df), dtype=float)
    else:
        column = "image_path" if cls is ImageEncoder else "caption"
        estimator, X, y = cls(**{name: value}), shapes_df[column], None
    with pytest.raises(error, match=match):
        estimator.fit(X, y)
    assert work == []
