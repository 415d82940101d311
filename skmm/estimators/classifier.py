"""FusionClassifier: the scikit-learn classifier over a skorch-trained FusionNet."""

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d
from skorch.helper import SliceDict

from ..utils.validation import check_fraction, check_number
from .base import BaseFusionEstimator

__all__ = ["FusionClassifier", "read_labels"]


class FusionClassifier(ClassifierMixin, BaseFusionEstimator):
    """Classify rows of images and texts with a fusion network trained through skorch.

    Each modality goes through an encoder (a CNN branch for images, a token model
    or a vectorizer for texts), is projected to ``dim`` features, fused by the
    strategy named in ``fusion`` and classified by an MLP head.

    Parameters
    ----------
    image : ImageEncoder, str or None, default=None
        The image encoder; a string is a backbone name.  None means
        ``ImageEncoder("cnn")``, trained end to end.
    text : TextEncoder, str or None, default=None
        The text encoder; None means ``TextEncoder("gru")``, trained end to end.
    image_col, text_col : str or None, default=None
        The columns of X holding image paths and texts.  None detects them: the
        column of image file paths, and the string column with the longest texts.
    fusion : str, default="concat"
        A name in :data:`skmm.registry.fusions`: "concat", "sum", "gated",
        "attention", "bilinear", "tensor", "film", "late", or the single-modality
        ablations "image" and "text".
    dim : int, default=128
        Width every modality is projected to before fusion.
    hidden_dim : int, default=128
        Hidden width of the classification head (0 for a linear head).
    dropout : float, default=0.1
        Dropout in the projections and the head.
    modality_dropout : float, default=0.2
        Probability of hiding a modality of a training row, so the model learns to
        cope without it, and does not lean on one modality alone (the default,
        0.2, was chosen with ``unimodal_loss=1.0`` on the accuracy suite,
        ``benchmarks/accuracy.py``: it helps most when one modality is broken at
        test time).
    fusion_kwargs : dict or None, default=None
        Options of the fusion module.
    unimodal_loss : float, default=1.0
        Weight of uni-modal auxiliary losses (0 turns them off).  When > 0, every modality the
        fusion uses also gets a class head of its own (``late`` fusion's
        per-modality heads; an extra linear head on the projected embedding,
        used in training only, for the other fusions), and the training loss
        becomes the fused loss plus ``unimodal_loss`` times the mean of the
        per-modality cross-entropies (rows without that modality left out).
        Jointly trained fusion nets tend to lean on the modality that fits the
        training rows fastest and leave the others under-trained; these losses
        make every branch learn the task on its own.  With ``fusion="late"``
        and a weight of a few units this approaches the classic late fusion of
        separately trained classifiers.  No effect on the single-modality
        ablations.
    max_epochs : int, default=20
        Passes over the training rows (fewer with early stopping).
    batch_size : int, default=32
        Rows per training step.
    lr : float, default=1e-3
        Learning rate of AdamW, cosine-annealed over ``max_epochs``.
    weight_decay : float, default=1e-4
        AdamW's decoupled weight decay.
    backbone_lr : float or None, default=None
        Learning rate of trainable encoders (None: ``lr``).
    grad_clip : float or None, default=None
        Clip the gradient norm to this value.
    warmup_epochs : int, default=0
        Epochs of linear learning-rate warm-up before the cosine decay (useful
        when fine-tuning pretrained backbones).
    label_smoothing : float in [0, 1), default=0.0
        Label smoothing of the cross-entropy loss (``torch.nn.CrossEntropyLoss``'s
        ``label_smoothing``): the target of each row becomes ``1 - label_smoothing``
        on its class plus ``label_smoothing / n_classes`` on every class, which
        keeps the network from pushing its logits without bound on training rows
        it already classifies (a regulariser; 0.1 is the usual value, mostly
        useful when a branch is trained from scratch).  The uni-modal auxiliary
        losses are smoothed the same way.
    class_weight : "balanced", dict or None, default=None
        Weights of the classes in the loss: "balanced" weighs each class by
        ``n_samples / (n_classes * count)``; a dict maps labels of ``y`` (as
        given, e.g. ``{"rare": 5.0}``) to weights, classes it leaves out weigh 1,
        and a key that is not a class of ``y`` is a ValueError.
    validation_fraction : float or None, default=None
        Hold out this fraction (stratified) and stop early when its loss has not
        improved for ``n_iter_no_change`` epochs, keeping the best epoch's weights.
    n_iter_no_change : int, default=5
        Epochs without improvement on the held-out rows before training stops
        (with ``validation_fraction``).
    early_stopping_scoring : str or None, default=None
        With ``validation_fraction``: stop on this scikit-learn scorer of the
        held-out rows (e.g. ``"f1_macro"``, higher is better) instead of their loss.
    callbacks : list or None, default=None
        Extra skorch callbacks.
    device : str, default="auto"
        "auto" (CUDA when present), "cpu", "cuda" or "cuda:<n>".  Encoders whose
        own ``device`` is "auto" run here too.
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        Arithmetic of the net's forward pass, in training and prediction:
        "auto" is bf16 autocast on CUDA and float32 elsewhere; "bfloat16" uses
        bf16 autocast on the CPU too (on CPUs with AMX or AVX512-BF16, trainable
        convolutional branches train about twice as fast); "float32" never uses
        bf16.  Losses and probabilities stay float32.  Encoders whose own
        ``precision`` is "auto" take this one.
    on_error : {"raise", "warn", "ignore"} or None, default=None
        Policy for image files that are missing, unreadable, truncated, not
        images or over the encoder's ``max_image_pixels``, at fit and at predict:
        "raise" stops (before any training) with an error naming the row, the
        column and the path; "warn" and "ignore" treat that row's image as
        missing, "warn" saying how many and which.  An image encoder whose own
        ``on_error`` is None takes this one; None here means "raise".  Set it
        before ``fit``: it is part of the fitted encoders.
    random_state : int, RandomState or None, default=None
        Seeds weights, shuffling and dropout: equal seeds give equal models.
        Encoders whose own ``random_state`` is None are seeded from it.
    verbose : int, default=0
        1 prints skorch's per-epoch table and encoding progress.

    Attributes
    ----------
    classes_ : ndarray
        The class labels seen in ``y``, sorted (``np.unique`` order, the columns
        of :meth:`predict_proba`), in the dtype ``y`` had.
    encoders_ : dict
        Fitted encoder per modality read from raw columns; a trainable one
        comes back around the module the network trained (the weights of
        ``net_``, stored once).
    branches_ : dict
        Per modality, the :class:`~skmm.encoders.Branch` that reads its inputs.
    input_layout_ : skmm.io.frame.InputLayout
        Which columns of X are which modality (``layout_``, ``image_col_``,
        ``text_col_`` repeat its decisions).
    modalities_ : list of str
        The modalities the model uses, in order.
    net_ : skorch.NeuralNetClassifier
        The trained network.
    class_prior_ : ndarray
        Class frequencies in training; rows with no modality at all get them.
    ignored_columns_ : list
        Columns of a DataFrame X that the model does not use (set when the
        image and text columns are detected or named).  A UserWarning names
        them, except the column equal to ``y`` (a label kept inside X), unless
        ``image_col`` and ``text_col`` are both named.

    Notes
    -----
    Missing inputs: an image path that is None, NaN or empty, a text that is
    None, NaN, empty or blank (and, under ``on_error="warn"``/``"ignore"``, an
    image file that fails to load) is a missing modality for that row, at fit
    and at predict.  The network replaces it with a learned "missing"
    embedding; ``modality_dropout`` hides present modalities at random during
    training so that embedding is learned even when few rows lack it.  Rows
    with no modality at all get ``class_prior_``.

    Labels: strings, integers, booleans and pandas Categoricals are accepted,
    and :meth:`predict` gives labels back as they came: integers in the same
    dtype, strings as strings, booleans as booleans, and a Categorical ``y``
    as a ``pandas.Categorical`` with ``y``'s categories (unused ones included)
    and order flag.  ``classes_`` holds only the labels seen in ``y``, sorted,
    as in every scikit-learn classifier: unused categories cannot be learned,
    and scorers such as ``neg_log_loss`` and ``roc_auc_ovr`` read the
    probability columns in sorted order.  Missing labels (None, NaN) are a
    ValueError naming the first such row.

    Threads: a network whose inputs are all features (frozen encoders, encoded
    blocks) trains on one torch thread, its operators being too small for a
    second one to pay; with image augmentation in loader workers, the network
    trains on the cores the workers leave; otherwise on torch's setting, which
    comes back after ``fit`` (see :mod:`skmm.utils.threads`).

    Examples
    --------
    >>> from skmm import FusionClassifier
    >>> from skmm.datasets import make_shapes
    >>> df = make_shapes(40, random_state=0)
    >>> clf = FusionClassifier(fusion="gated", max_epochs=2, random_state=0)
    >>> clf.fit(df, df["label"]).predict(df).shape
    (40,)
    """

    def __init__(
        self,
        *,
        image=None,
        text=None,
        image_col=None,
        text_col=None,
        fusion="concat",
        dim=128,
        hidden_dim=128,
        dropout=0.1,
        modality_dropout=0.2,
        fusion_kwargs=None,
        unimodal_loss=1.0,
        max_epochs=20,
        batch_size=32,
        lr=1e-3,
        weight_decay=1e-4,
        backbone_lr=None,
        grad_clip=None,
        warmup_epochs=0,
        label_smoothing=0.0,
        class_weight=None,
        validation_fraction=None,
        n_iter_no_change=5,
        early_stopping_scoring=None,
        callbacks=None,
        device="auto",
        precision="auto",
        on_error=None,
        random_state=None,
        verbose=0,
    ):
        self.image = image
        self.text = text
        self.image_col = image_col
        self.text_col = text_col
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
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping_scoring = early_stopping_scoring
        self.callbacks = callbacks
        self.device = device
        self.precision = precision
        self.on_error = on_error
        self.random_state = random_state
        self.verbose = verbose

    # -- fit ------------------------------------------------------------------------------
    def fit(self, X, y):
        """Fit encoders and train the fusion network.

        Parameters
        ----------
        X : DataFrame or array-like
            A DataFrame with an image-path column and/or a text column; a DataFrame
            of encoded blocks named ``<modality>__<feature>`` (a ColumnTransformer
            with ``set_output(transform="pandas")``); or a numeric array (one
            numeric modality).
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self
            The fitted classifier.
        """
        self._check_params()
        check_fraction("label_smoothing", self.label_smoothing)
        self._check_class_weight_param()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        y, self._label_dtype = read_labels(y)
        check_classification_targets(y)
        check_consistent_length(X, y)  # before reading X, which compares its columns with y
        modalities = self._layout_fit_read(X, y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            label = self.classes_[0].item() if hasattr(self.classes_[0], "item") else self.classes_[0]
            raise ValueError(f"y has 1 class ({label!r}); a classifier needs at least 2 classes")
        self.class_prior_ = np.bincount(y_enc, minlength=len(self.classes_)) / len(y_enc)
        class_weights = self._class_weights(y_enc)
        return self._fit_modalities(
            modalities, y_enc.astype(np.int64), n_outputs=len(self.classes_), class_weights=class_weights
        )

    def _check_class_weight_param(self):
        cw = self.class_weight
        if not (cw is None or isinstance(cw, Mapping) or (isinstance(cw, str) and cw == "balanced")):
            raise ValueError(
                f"class_weight must be None, 'balanced' or a dict mapping class labels to weights, got {cw!r}"
            )

    def _class_weights(self, y_enc):
        """Loss weight of each class (``classes_`` order), or None; dict keys are labels of y."""
        if self.class_weight is None:
            return None
        if isinstance(self.class_weight, str):  # "balanced" (checked in _check_class_weight_param)
            return compute_class_weight("balanced", classes=np.arange(len(self.classes_)), y=y_enc)
        position = {label: i for i, label in enumerate(self.classes_.tolist())}
        unknown = [key for key in self.class_weight if key not in position]
        if unknown:
            raise ValueError(
                f"class_weight has keys that are not classes of y: {unknown}; the classes are {list(position)}"
            )
        weights = np.ones(len(self.classes_))
        for key, weight in self.class_weight.items():
            check_number(f"class_weight[{key!r}]", weight, low=0)
            weights[position[key]] = weight
        return weights

    # -- predict --------------------------------------------------------------------------
    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order.

        Rows with no modality at all (missing image and missing text) get
        ``class_prior_``.
        """
        return self.proba_from_inputs(self.model_inputs(X))

    def proba_from_inputs(self, inputs):
        """Class probabilities from model inputs, as :meth:`model_inputs` gives them.

        For inspecting the model: alter the inputs first (permute a modality
        across rows, or set its ``<name>_mask`` to False to treat it as missing),
        as :func:`skmm.inspection.modality_importance` does.
        """
        check_is_fitted(self)
        proba = self.net_.predict_proba(SliceDict(**inputs)).astype(np.float64)
        # the net's softmax is float32: renormalised, rows sum to 1 at float64 precision (as
        # scikit-learn's metrics, e.g. log_loss, expect)
        proba /= proba.sum(axis=1, keepdims=True)
        proba[self._rows_without_any_modality(inputs)] = self.class_prior_
        return proba

    def predict(self, X):
        """Predicted class labels, of the kind ``y`` had in fit.

        An ndarray in the dtype of ``classes_``, or a ``pandas.Categorical`` with
        the categories of ``y`` when ``y`` was categorical.
        """
        check_is_fitted(self)
        labels = self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        if self._label_dtype is not None:
            return pd.Categorical(labels, dtype=self._label_dtype)
        return labels

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    # -- plain-data state, for skmm.save / skmm.load (skmm/persistence) -------------------
    def __skmm_getstate__(self, context):
        state = super().__skmm_getstate__(context)
        if state is not None:
            dtype = self._label_dtype
            state["labels"] = {
                "classes": self.classes_,
                "class_prior": self.class_prior_,
                "categorical": None if dtype is None else {
                    "categories": np.asarray(dtype.categories.to_numpy()), "ordered": bool(dtype.ordered)},
            }
        return state

    def __skmm_setstate__(self, state, context):
        labels = state["labels"]
        self.classes_ = np.asarray(labels["classes"])
        self.class_prior_ = np.asarray(labels["class_prior"], dtype=np.float64)
        categorical = labels["categorical"]
        self._label_dtype = None if categorical is None else pd.CategoricalDtype(
            categorical["categories"], ordered=bool(categorical["ordered"]))
        super().__skmm_setstate__(state, context)
        if not len(self.classes_) == len(self.class_prior_) == state["n_outputs"]:
            raise ValueError(f"{context.where}: classes_, class_prior_ and the network disagree on the classes")


def read_labels(y):
    """y -> (1-D ndarray of labels, the CategoricalDtype predictions are given back in, or None).

    Missing labels (None, NaN) are a ValueError naming the first such row.
    """
    dtype = getattr(y, "dtype", None)
    categorical = dtype if isinstance(dtype, pd.CategoricalDtype) else None
    values = y.to_numpy() if isinstance(y, (pd.Series, pd.Index)) else np.asarray(y)
    values = column_or_1d(values, warn=True)
    missing = pd.isna(values)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        # list(index) gives Python scalars: "row 3", not "row np.int64(3)"
        where = f"row {list(y.index)[i]!r} (position {i})" if isinstance(y, pd.Series) else f"position {i}"
        raise ValueError(
            f"y has {int(missing.sum())} missing label(s) (None or NaN), the first at {where}; "
            "drop those rows or give them a label"
        )
    return values, categorical
