"""Extra training views of frozen image features (``ImageEncoder(augment=...)`` on a frozen encoder).

A frozen image encoder's features are computed once, so the network's training
loader cannot augment its pictures.  Instead ``fit`` encodes one randomly
transformed copy of every training picture (the encoder's ``augment``; for
"auto" the "photometric" policy of :mod:`skmm.encoders.augmentation`: colour
jitter, greyscale, blur, solarize, invert), once, cached like the plain
features, and trains the network on both: every row appears twice, once with
its plain picture features and once with its view's, every other input (texts,
stacked probabilities, numbers) the same.  The head then learns from features
that survive a change of colour, tone or sharpness, and leans less on those
that do not: pictures that come in another style at prediction time drag the
fused prediction down less (BENCHMARKS.md, accuracy-views).

The views are left out, with the plain rows trained on alone, where rows
cannot be repeated safely: with ``validation_fraction`` (a row's copy would
sit on the other side of the validation split) and where an input is not an
in-memory array (features spilled to a file, pictures decoded per batch).
"""

import warnings

import numpy as np

__all__ = ["with_views"]


def _view_branches(estimator, modalities):
    """``{name: branch}``: the frozen image modalities of ``modalities`` whose branch asks for views.

    Only those the fusion reads: a text-only ablation trains on its rows once.
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
    """The training inputs and targets with one extra row per training row and viewed modality.

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
        Seeds the random transforms.  Fixed by default, not the estimator's
        ``random_state``: each picture's view is then one cached entry that every
        later fit (another seed, a fold of a search, ``random_state=None``) reuses.

    Returns
    -------
    data, y_enc
        ``data`` and ``y_enc`` unchanged when no modality has views, else each
        array followed by its copy, in which each viewed modality's features
        are those of its transformed pictures.
    """
    branches = _view_branches(estimator, modalities)
    if not branches:
        return data, y_enc
    explicit = [n for n, b in branches.items() if getattr(b.encoder, "augment", "auto") != "auto"]
    why = None
    if estimator.validation_fraction is not None:
        why = "validation_fraction is set (a row's view would fall on the other side of the validation split)"
    elif not all(isinstance(v, np.ndarray) for v in data.values()):
        why = "some training inputs are not held in memory (spilled features or pictures decoded per batch)"
    if why is not None:
        if explicit:
            warnings.warn(f"the augmented views of image column(s) {explicit} are not used: {why}", UserWarning,
                          stacklevel=3)
        return data, y_enc
    views = {name: branch.view_inputs(modalities[name].values, seed=seed)[0] for name, branch in branches.items()}
    out = {key: np.concatenate([value, views.get(key, value)]) for key, value in data.items()}
    return out, np.concatenate([np.asarray(y_enc), np.asarray(y_enc)])
