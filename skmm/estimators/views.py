"""Augmented training views of frozen image features (``ImageEncoder(augment=...)`` on a frozen encoder).

A frozen image encoder's features are computed once, so the network's training
loader cannot augment its pictures.  Instead ``fit`` encodes one randomly
transformed copy of every training picture (the encoder's ``augment``; for
"auto" the "photometric" policy of :mod:`skmm.encoders.augmentation`: colour
jitter, greyscale, blur, solarize, invert), once, cached like the plain
features, and trains the network on a mix: a random half of the rows (drawn
once per fit) read their picture through its view, the other half through the
plain features, every other input (texts, stacked probabilities, numbers)
unchanged.  The head then learns from features that survive a change of colour,
tone or sharpness, and leans less on those that do not: pictures that come in
another style at prediction time drag the fused prediction down less
(BENCHMARKS.md, accuracy-views).  The network trains on as many rows as
without views; predictions always read the plain features.

The views are left out, the plain rows trained on alone, with
``validation_fraction`` (early stopping scores its validation rows as
predictions will be made, on plain pictures) and where the image features are
not an in-memory array (spilled to a file).
"""

import warnings

import numpy as np

__all__ = ["SHARE", "with_views"]

#: The share of training rows that read their picture through its augmented view.
SHARE = 0.5


def _view_branches(estimator, modalities):
    """``{name: branch}``: the frozen image modalities of ``modalities`` whose branch asks for views.

    Only those the fusion reads: a text-only ablation trains as without views.
    """
    pictures = getattr(estimator, "pictures_", {})
    net = getattr(estimator.net_, "module", None)
    used = getattr(getattr(net, "fusion", None), "used_modalities", None)
    used = set(estimator.modalities_) if used is None else {estimator.modalities_[i] for i in used}
    return {
        name: branch for name, branch in estimator.branches_.items()
        if name in modalities and name in used and modalities[name].kind == "image" and name not in pictures
        and not branch.trainable and branch.views is not None
    }


def with_views(estimator, modalities, data, y_enc, seed=0):
    """The training inputs with a random half of the rows' picture features replaced by their views'.

    Parameters
    ----------
    estimator : BaseFusionEstimator
        The estimator in ``fit``, its ``branches_`` set.
    modalities : dict
        Modality name -> the read modality (``.kind``, ``.values``).
    data : dict
        The network's training inputs (name and ``name_mask`` -> arrays).
    y_enc : ndarray
        The encoded targets, one row per row of ``data``.
    seed : int, default=0
        Seeds the random transforms and the rows that get views.  Fixed by default, not the estimator's
        ``random_state``: each picture's view is then one cached entry that every
        later fit (another seed, a fold of a search, ``random_state=None``) reuses.

    Returns
    -------
    data, y_enc
        ``data`` unchanged when no modality has views, else a copy in which the
        viewed modalities' features of :data:`SHARE` of the rows are those of
        their transformed pictures; ``y_enc`` as given.
    """
    branches = _view_branches(estimator, modalities)
    if not branches:
        return data, y_enc
    explicit = [n for n, b in branches.items() if getattr(b.encoder, "augment", "auto") != "auto"]
    why = None
    if estimator.validation_fraction is not None:
        why = "validation_fraction is set (its rows are scored on plain pictures, as predictions are)"
    elif not all(isinstance(data[name], np.ndarray) for name in branches):
        why = "the image features are not held in memory (spilled to a file)"
    if why is not None:
        if explicit:
            warnings.warn(f"the augmented views of image column(s) {explicit} are not used: {why}", UserWarning,
                          stacklevel=3)
        return data, y_enc
    viewed = np.random.RandomState(seed).rand(len(y_enc)) < SHARE
    out = dict(data)
    for name, branch in branches.items():
        features, _ = branch.view_inputs(modalities[name].values, seed=seed)
        out[name] = np.where(viewed[:, None], features, data[name]).astype(data[name].dtype, copy=False)
    return out, y_enc
