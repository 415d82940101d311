"""The backbone contract: what a registry factory returns and an encoder runs.

A *backbone* owns the ``torch.nn.Module`` that turns model inputs into features
and says how to feed it.  The same backbone object serves :class:`skmm.ImageEncoder`
/ :class:`skmm.TextEncoder` (frozen feature extraction, cached) and
:class:`skmm.FusionClassifier` (where a trainable backbone's module becomes a branch
of the FusionNet and learns end to end).

Both kinds share four attributes and one method:

``module``
    ``torch.nn.Module`` mapping model inputs to ``(N, out_dim)`` features, or
    ``None`` when the prepared inputs already are the features (TF-IDF).
``out_dim``
    Number of features.
``trainable``
    Whether FusionClassifier trains ``module`` end to end by default (True for
    networks trained from scratch, False for pretrained extractors).
``blocks``
    The module's repeated sub-modules (stages, layers), input to output; may be
    empty.  ``trainable="last:<n>"`` unfreezes the last n of them.
``fingerprint()``
    A string that changes whenever the features would (weights, preprocessing,
    options); it keys the embedding cache.  ``None`` when the features are not
    reproducible (random weights without a fixed seed): they are then never cached.

Two optional methods let :func:`skmm.save` store a fitted backbone as plain data:

``fitted_state()``
    What ``fit`` learned (a vocabulary, a vectorizer): plain data -- numbers,
    strings, lists, dicts, numpy arrays, the scikit-learn estimators
    :func:`skmm.save` knows -- or ``None`` when the backbone cannot say (saving
    then fails with a TypeError).  Module weights are not part of it.
``restore_fitted_state(state)``
    Makes a backbone freshly built by its factory what ``fit`` made it, module
    architecture included; the weights are loaded afterwards.

Backbones that learn nothing in ``fit`` (every image backbone, the pretrained
text families) need neither.

Image factories are called as ``factory(spec, image_size=..., random_state=...,
weights=..., **backbone_kwargs)`` and return an :class:`ImageBackbone`.  Images
reach ``module`` as uint8 tensors (N, 3, S, S), scaled to [0, 1] and normalised with
the backbone's ``mean``/``std`` by :class:`Normalize`.

Text factories are called as ``factory(spec, max_length=..., n_components=...,
dim=..., random_state=..., **backbone_kwargs)`` and return a :class:`TextBackbone`.
"""

import torch
from torch import nn

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageBackbone", "Normalize", "TextBackbone", "fingerprint_of"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def fingerprint_of(family, name, weights, **settings):
    """The one fingerprint format of skmm's backbones, or None for unreproducible weights.

    Parameters
    ----------
    family : str
        The registry family ("timm", "hf", "cnn", ...).
    name : str or None
        What follows ``family:`` in the backbone name (the model), if anything.
    weights : str or None
        Identifies the parameters: a pretrained tag, a file's identity, or
        ``"random,seed=<n>"``; ``None`` when they cannot be reproduced.
    **settings
        Everything else the features depend on (size, mean, std, options, ...),
        written in the order given.

    Returns
    -------
    str or None

    Examples
    --------
    >>> fingerprint_of("timm", "resnet18", "random,seed=0", size=32)
    'timm:resnet18|weights=random,seed=0|size=32'
    >>> fingerprint_of("timm", "resnet18", None, size=32) is None
    True
    """
    if weights is None:
        return None
    parts = [f"{family}:{name}" if name else family, f"weights={weights}"]
    parts += [f"{key}={value}" for key, value in settings.items()]
    return "|".join(parts)


class ImageBackbone:
    """An image feature extractor and the preprocessing it expects.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a float tensor (N, 3, image_size, image_size), normalised with
        ``mean`` and ``std``, to features (N, out_dim).
    out_dim : int
        Number of features ``module`` returns.
    image_size : int
        Side of the square images ``module`` expects.
    mean, std : tuple of 3 floats
        Per-channel normalisation applied to [0, 1] pixels.
    trainable : bool, default=True
        Whether FusionClassifier trains ``module`` end to end by default.
    fingerprint : str or None
        What :meth:`fingerprint` returns; None (the default) never caches.
    channels_last : bool, default=False
        Whether ``module`` runs faster on NHWC tensors (convolutional networks).
    blocks : list of torch.nn.Module, optional
        Registered sub-modules of ``module``, input to output (for
        ``trainable="last:<n>"``).

    Examples
    --------
    >>> from torch import nn
    >>> bb = ImageBackbone(nn.Flatten(), 3 * 8 * 8, 8, fingerprint="flat|size=8")
    >>> bb.out_dim, bb.fingerprint(), bb.blocks
    (192, 'flat|size=8', [])
    """

    def __init__(self, module, out_dim, image_size, *, mean=IMAGENET_MEAN, std=IMAGENET_STD, trainable=True,
                 fingerprint=None, channels_last=False, blocks=None):
        self.module = module
        self.out_dim = int(out_dim)
        self.image_size = int(image_size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.trainable = bool(trainable)
        self.channels_last = bool(channels_last)
        self.blocks = list(blocks or [])
        self._fingerprint = fingerprint

    @classmethod
    def from_model(cls, module, *, family, name, weights, image_size, mean, std, out_dim, trainable,
                   options=None, blocks=(), channels_last=None):
        """The backbone of a built model, with its fingerprint in the one shared format.

        Every built-in image family ends here, so their fingerprints agree in form and
        each separates weights, size, mean/std and options.

        Parameters
        ----------
        module : torch.nn.Module
            The feature extractor (put in eval mode).
        family, name : str
            The registry family and the model name (``"timm"``, ``"resnet18"``).
        weights : str or None
            Identifies the parameters; None when they are random without a fixed
            seed (the backbone is then never cached).
        image_size : int
            As for the constructor.
        mean, std : tuple of 3 floats
            As for the constructor.
        out_dim : int
            As for the constructor.
        trainable : bool
            As for the constructor.
        options : dict, optional
            Other settings the features depend on (backbone keyword arguments,
            pooling, library, ...); sorted by key in the fingerprint.
        blocks : list of torch.nn.Module
            As for the constructor.
        channels_last : bool, optional
            Defaults to whether ``module`` holds more than one convolution.

        Returns
        -------
        ImageBackbone
        """
        mean = tuple(float(m) for m in mean)
        std = tuple(float(s) for s in std)
        size = int(image_size)
        if channels_last is None:
            channels_last = sum(isinstance(m, nn.Conv2d) for m in module.modules()) > 1
        fingerprint = fingerprint_of(
            family, name, weights, size=size, mean=mean, std=std,
            options=sorted((options or {}).items(), key=lambda kv: kv[0]),
        )
        module.eval()
        return cls(module, out_dim, size, mean=mean, std=std, trainable=trainable, fingerprint=fingerprint,
                   channels_last=channels_last, blocks=blocks)

    def fingerprint(self):
        """A string that changes whenever the features would, or None (never cache)."""
        return self._fingerprint

    # -- plain-data state, for skmm.save: an image backbone learns nothing in fit ----------
    def fitted_state(self):
        """What ``fit`` learned, as plain data: nothing, for an image backbone."""
        return {}

    def restore_fitted_state(self, state):
        """Inverse of :meth:`fitted_state` (nothing to restore)."""
        _check_no_state(self, state)

    def __repr__(self):
        return (
            f"{type(self).__name__}(module={type(self.module).__name__}, out_dim={self.out_dim}, "
            f"image_size={self.image_size}, trainable={self.trainable}, fingerprint={self._fingerprint!r})"
        )


class TextBackbone:
    """Base class of text backbones: learn from texts, prepare batches, embed them.

    Subclasses implement :meth:`fit` (learn what depends on the training texts),
    :meth:`prepare` (strings -> a numpy array or tensor, one row per text) and
    :meth:`fingerprint`, and set ``module`` (prepared rows -> (N, out_dim)
    features; ``None`` when prepared rows already are the features, as for TF-IDF),
    ``out_dim`` and, for networks with repeated layers, ``blocks`` by the end of
    ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> class Lengths(TextBackbone):
    ...     out_dim = 1
    ...     def prepare(self, texts):
    ...         return np.array([[len(t)] for t in texts], dtype=np.float32)
    ...     def fingerprint(self):
    ...         return "lengths"
    >>> Lengths().fit(["a", "bc"]).prepare(["abc"])
    array([[3.]], dtype=float32)
    """

    module = None
    out_dim = None
    trainable = False
    blocks = ()

    def fit(self, texts):
        """Learn what the features depend on from ``texts``; returns self."""
        return self

    def prepare(self, texts):
        """Texts -> model inputs (or features when ``module`` is None), one row per text."""
        raise NotImplementedError

    def fingerprint(self):
        """A string that changes whenever ``prepare``/``module`` would give other features.

        None when they are not reproducible (never cached).
        """
        raise NotImplementedError

    # -- plain-data state, for skmm.save ----------------------------------------------------
    def fitted_state(self):
        """What :meth:`fit` learned, as plain data (see the module docstring).

        ``{}`` for a backbone that keeps the base class's :meth:`fit` (it learns
        nothing); None -- cannot be saved -- for one that overrides :meth:`fit`
        without overriding this method.
        """
        return {} if type(self).fit is TextBackbone.fit else None

    def restore_fitted_state(self, state):
        """Make this freshly built backbone what :meth:`fit` made it, given :meth:`fitted_state`."""
        _check_no_state(self, state)


class Normalize(nn.Module):
    """Turn uint8 or [0, 1] images into normalised float images (on the model's device).

    Examples
    --------
    >>> import torch
    >>> Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))(torch.full((1, 3, 1, 1), 255, dtype=torch.uint8)).flatten()
    tensor([1., 1., 1.])
    """

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        return (x - self.mean) / self.std


def _check_no_state(backbone, state):
    if state:
        raise ValueError(f"{type(backbone).__name__} learns nothing in fit, but got a fitted state {state!r:.80}")
