"""FusionRegressor: the scikit-learn regressor over a skorch-trained FusionNet."""

import numpy as np
import pandas as pd
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from ..fusion.training import LOSSES
from ..utils.validation import check_option
from .base import BaseFusionEstimator
from .docs import SHARED_PARAMETERS, TRAINING_PARAMETERS
from .targets import TargetForm, read_regression_target

__all__ = ["FusionRegressor"]


class FusionRegressor(RegressorMixin, BaseFusionEstimator):
    __doc__ = (
        """Predict numbers from rows of images and texts with a fusion network trained through skorch.

    The same encoders, fusions and options as :class:`~skmm.FusionClassifier`,
    with a regression head: one output per target, ``y`` of shape
    ``(n_samples,)`` or ``(n_samples, n_targets)`` (an array or a DataFrame).
    ``score`` is R² (scikit-learn's ``RegressorMixin``).

    Parameters
    ----------
"""
        + SHARED_PARAMETERS
        + """    loss : {"squared_error", "absolute_error", "huber"}, default="squared_error"
        The training loss, by scikit-learn's names: mean squared error, mean
        absolute error, or Huber's loss (squared within 1 of the target,
        absolute beyond; the 1 is in standardised units with
        ``standardize_target``).  The uni-modal auxiliary losses use it too.
    standardize_target : bool, default=True
        Train on ``(y - mean) / std`` of each target (the statistics of the
        training rows, ``target_mean_`` and ``target_scale_``), so the net's
        initial scale and the learning rate suit any unit; predictions come
        back in ``y``'s units.
"""
        + TRAINING_PARAMETERS
        + """
    Attributes
    ----------
    n_targets_ : int
        Number of targets (columns of ``y``; 1 for a 1-D ``y``).
    target_mean_, target_scale_ : ndarray of shape (n_targets,)
        What is subtracted from and divides each target in training (0 and 1
        without ``standardize_target``).
    target_names_ : list or None
        The columns of a DataFrame ``y`` (predictions come back as a DataFrame
        with them), else None.
    encoders_ : dict
        Fitted encoder per modality read from raw columns; a trainable one
        comes back around the module the network trained.
    branches_ : dict
        Per modality, the :class:`~skmm.encoders.Branch` that reads its inputs.
    input_layout_ : skmm.io.frame.InputLayout
        Which columns of X are which modality.
    modalities_ : list of str
        The modalities the model uses, in order.
    net_ : skorch.NeuralNetRegressor
        The trained network (its outputs are standardised targets).
    ignored_columns_ : list
        Columns of a DataFrame X that the model does not use.

    Notes
    -----
    ``y`` must be numbers: strings, missing values (None, NaN) and infinities
    are a ValueError naming the first such row, raised before any encoding.
    Rows with no modality at all (missing image and missing text) are
    predicted the training mean.  Missing inputs, trainable and frozen
    encoders, every fusion, ``unimodal_loss`` (a regression head per modality),
    the embedding cache, joblib and :func:`skmm.save` work as for
    :class:`~skmm.FusionClassifier`.  ``validation_fraction`` holds out rows at
    random (no stratification), and ``early_stopping_scoring`` takes
    regression scorers such as ``"r2"`` (computed on standardised targets:
    R² is the same, errors are in standard deviations).

    Examples
    --------
    >>> from skmm import FusionRegressor
    >>> from skmm.datasets import make_shapes
    >>> df = make_shapes(40, random_state=0)
    >>> y = df["label"].str.startswith("red") * 10.0 + df["caption"].str.len()
    >>> reg = FusionRegressor(image="pixels", text="tfidf", max_epochs=2, random_state=0)
    >>> reg.fit(df, y).predict(df).shape
    (40,)
    """
    )

    def __init__(
        self,
        *,
        image=None,
        text=None,
        image_col=None,
        text_col=None,
        columns=None,
        encoders=None,
        image_root=None,
        picture_pooling="mean",
        fusion="concat",
        dim=128,
        hidden_dim=128,
        dropout=0.1,
        modality_dropout=0.0,
        fusion_kwargs=None,
        unimodal_loss=0.0,
        max_epochs=20,
        batch_size=32,
        lr=1e-3,
        weight_decay=1e-4,
        backbone_lr=None,
        grad_clip=None,
        warmup_epochs=0,
        loss="squared_error",
        standardize_target=True,
        validation_fraction=None,
        n_iter_no_change=5,
        early_stopping_scoring=None,
        callbacks=None,
        device="auto",
        precision="auto",
        accelerator=None,
        on_error=None,
        random_state=None,
        verbose=0,
    ):
        self.image = image
        self.text = text
        self.image_col = image_col
        self.text_col = text_col
        self.columns = columns
        self.encoders = encoders
        self.image_root = image_root
        self.picture_pooling = picture_pooling
        self.fusion = fusion
        self.dim = dim
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.modality_dropout = modality_dropout
        self.fusion_kwargs = fusion_kwargs
        self.unimodal_loss = unimodal_loss
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.backbone_lr = backbone_lr
        self.grad_clip = grad_clip
        self.warmup_epochs = warmup_epochs
        self.loss = loss
        self.standardize_target = standardize_target
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping_scoring = early_stopping_scoring
        self.callbacks = callbacks
        self.device = device
        self.precision = precision
        self.accelerator = accelerator
        self.on_error = on_error
        self.random_state = random_state
        self.verbose = verbose

    # -- fit ------------------------------------------------------------------------------
    def fit(self, X, y):
        """Fit encoders and train the fusion network on numeric targets.

        Parameters
        ----------
        X : DataFrame or array-like
            As for :meth:`skmm.FusionClassifier.fit`.
        y : array-like of shape (n_samples,) or (n_samples, n_targets), or DataFrame
            Numeric targets.

        Returns
        -------
        self
            The fitted regressor.
        """
        self._check_params()
        self._check_target_params()
        values, form = read_regression_target(y)
        check_consistent_length(X, values)  # before reading X, which compares its columns with y
        modalities = self._layout_fit_read(X, y if form.kind == "1d" else None)
        self._target_form = form
        self.n_targets_ = values.shape[1]
        self.target_names_ = form.columns
        if self.standardize_target:
            self.target_mean_ = values.mean(axis=0)
            scale = values.std(axis=0)
            self.target_scale_ = np.where(scale < 1e-12, 1.0, scale)
        else:
            self.target_mean_, self.target_scale_ = np.zeros(self.n_targets_), np.ones(self.n_targets_)
        scaled = ((values - self.target_mean_) / self.target_scale_).astype(np.float32)
        return self._fit_modalities(modalities, scaled, n_outputs=self.n_targets_)

    def _check_target_params(self):
        check_option("loss", self.loss, tuple(LOSSES))
        if not isinstance(self.standardize_target, (bool, np.bool_)):
            raise TypeError(f"standardize_target must be True or False, got {self.standardize_target!r}")

    def _training_target(self):
        return {"task": "regression", "loss": self.loss}

    # -- predict --------------------------------------------------------------------------
    def predict(self, X):
        """Predicted targets in ``y``'s units and form.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets), or DataFrame
            1-D for a 1-D ``y``; a DataFrame with ``y``'s columns (and X's
            index) for a DataFrame ``y``.  float64.
        """
        values = self.predict_from_inputs(self.model_inputs(X))
        return self._target_form.give_back(values, X.index if isinstance(X, pd.DataFrame) else None)

    def predict_from_inputs(self, inputs):
        """Predictions, (n_samples, n_targets) in ``y``'s units, from :meth:`model_inputs`' inputs.

        For inspecting the model: alter the inputs first (permute a modality
        across rows, or set its ``<name>_mask`` to False to treat it as missing).
        """
        check_is_fitted(self)
        values = self._outputs(inputs) * self.target_scale_ + self.target_mean_
        values[self._rows_without_any_modality(inputs)] = self.target_mean_
        return values

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    # -- plain-data state, for skmm.save / skmm.load (skmm/persistence) -------------------
    def __skmm_getstate__(self, context):
        state = super().__skmm_getstate__(context)
        if state is not None:
            state["target"] = {"mean": self.target_mean_, "scale": self.target_scale_,
                               "form": self._target_form.to_plain()}
        return state

    def __skmm_setstate__(self, state, context):
        target = state["target"]
        self.target_mean_ = np.asarray(target["mean"], dtype=np.float64)
        self.target_scale_ = np.asarray(target["scale"], dtype=np.float64)
        self._target_form = TargetForm(**target["form"])
        self.n_targets_, self.target_names_ = len(self.target_mean_), self._target_form.columns
        super().__skmm_setstate__(state, context)
        if not len(self.target_scale_) == self.n_targets_ == state["n_outputs"]:
            raise ValueError(f"{context.where}: the target statistics and the network disagree on the targets")
