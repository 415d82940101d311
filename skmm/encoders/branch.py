"""What a fitted encoder hands a fusion network: a :class:`Branch`."""

from dataclasses import dataclass
from typing import Any

from .spill import frozen_training_features

__all__ = ["Branch"]


@dataclass
class Branch:
    """One modality's branch of a FusionNet, as a fitted encoder offers it.

    Made by :meth:`skmm.ImageEncoder.as_branch` / :meth:`skmm.TextEncoder.as_branch`.

    Attributes
    ----------
    encoder : ImageEncoder or TextEncoder
        The fitted encoder that reads this modality's raw inputs.  For a trainable
        branch it holds no module: the network owns the module from then on.
    module : torch.nn.Module or None
        The module the network trains, mapping :meth:`inputs` to (N, ``width``)
        features; None when :meth:`inputs` already are the features (a frozen,
        cached encoder).
    width : int
        Number of features the branch gives the network.
    trainable : bool
        Whether the network trains a module of this branch.
    augment : ImageAugmentation or None
        The random transform the network's training loader applies to each
        training batch of :meth:`inputs` (trainable image branches; see
        :mod:`skmm.encoders.augmentation`); None for no augmentation.  Never
        applied to validation rows or in prediction.
    views : ImageAugmentation or None
        For a frozen image branch: the random transform of the extra training
        views the estimator encodes once and trains on beside the plain
        features (:mod:`skmm.estimators.views`); None for none.
    """

    encoder: Any
    module: Any
    width: int
    trainable: bool
    augment: Any = None
    views: Any = None

    def inputs(self, X):
        """The branch's inputs for the raw values ``X``, and a bool array of the rows that have one.

        Prepared model inputs (pixels, token ids) for a trainable branch; the
        (cached) embeddings for a frozen one.
        """
        return self.encoder.prepare(X) if self.trainable else self.encoder.encode(X)

    def training_inputs(self, X):
        """The inputs the network trains on.

        :meth:`inputs`, or for an image branch that decodes per batch
        (``ImageEncoder(decode=...)``) a lazily decoded column, or for a
        frozen branch whose features outgrow memory a file read per batch
        (:mod:`skmm.encoders.spill`).
        """
        if self.trainable and hasattr(self.encoder, "training_inputs"):
            return self.encoder.training_inputs(X)
        if not self.trainable:
            return frozen_training_features(self.encoder, X, self.width)
        return self.inputs(X)

    def view_inputs(self, X, *, seed=0):
        """Features of one randomly transformed view of each input of ``X`` (a frozen branch with ``views``)."""
        return self.encoder.augmented_features(X, self.views, seed=seed)

    def fitted_encoder(self, module, *, tag=None):
        """The fitted encoder as it stands once the network trained ``module``.

        Parameters
        ----------
        module : torch.nn.Module
            The network's trained module for this branch (for a frozen branch,
            ignored: the encoder already is complete).
        tag : str, optional
            Identifies the training run, so the trained encoder's embeddings never
            share cache entries with the untrained backbone's.
        """
        if not self.trainable:
            return self.encoder
        return self.encoder.with_trained_module(module, tag=tag)
