"""FusionClassifier: the scikit-learn classifier over a skorch-trained FusionNet."""

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from ..utils.validation import check_fraction, check_number
from .base import BaseFusionEstimator
from .blend import blended, check_blend, fit_blend, training_holdout
from .calibration import fit_temperature, probabilities, tune_thresholds
from .docs import (
    CLASSIFIER_BLEND, CLASSIFIER_MODALITY_DROPOUT, CLASSIFIER_UNIMODAL_LOSS, SHARED_PARAMETERS, TRAINING_PARAMETERS,
    replace_entries,
)
from .multilabel import check_target_options, label_weights
from .stacked import check_stacking
from .targets import TargetForm, as_label_sets, read_multilabel

__all__ = ["FusionClassifier", "read_labels"]


class FusionClassifier(ClassifierMixin, BaseFusionEstimator):
    __doc__ = (
        """Classify rows of images and texts with a fusion network trained through skorch.

    Each modality goes through an encoder (a CNN branch for images, a token model
    or a vectorizer for texts), is projected to ``dim`` features, fused by the
    strategy named in ``fusion`` and classified by an MLP head.  ``y`` holds one
    class per row, or several labels per row (multilabel: a 2-D 0/1 array or
    DataFrame, or a list of label sets).

    Parameters
    ----------
"""
        + replace_entries(SHARED_PARAMETERS, CLASSIFIER_MODALITY_DROPOUT, CLASSIFIER_UNIMODAL_LOSS)
        + """    label_smoothing : float in [0, 1), default=0.0
        Label smoothing of the cross-entropy loss (``torch.nn.CrossEntropyLoss``'s
        ``label_smoothing``): the target of each row becomes ``1 - label_smoothing``
        on its class plus ``label_smoothing / n_classes`` on every class, which
        keeps the network from pushing its logits without bound on training rows
        it already classifies (a regulariser; 0.1 is the usual value, mostly
        useful when a branch is trained from scratch).  The uni-modal auxiliary
        losses are smoothed the same way.  One label per row only.
    stacking : "auto", None or classifier, default="auto"
        Out-of-fold linear text models as extra inputs (:mod:`skmm.estimators.stacked`).
        For each raw text column, a scikit-learn text classifier gives class
        probabilities -- out-of-fold in ``fit`` (each row's from a model fitted
        on the other folds of a stratified 5-fold split), from the model
        refitted on all rows in ``predict`` -- and the network reads their
        logarithm as one more modality, ``<text>_stack`` (kind "text": the
        ``"text"`` ablation keeps it, ``"image"`` drops it).  "auto" uses
        TF-IDF on words (1-2) and characters (char_wb 2-4) +
        ``LogisticRegression(C=10)``, the baseline a practitioner fits first,
        which a network trained on a few thousand rows seldom matches on its
        own (measured in BENCHMARKS.md); it stacks nothing for a multilabel
        ``y``, a table without raw text columns (encoded blocks, numbers), or
        a ``y`` with one row per class.  A classifier with ``predict_proba``
        (a Pipeline taking a 1-D array of strings) replaces the default model;
        None turns stacking off.  The fitted models are in ``stackers_``.
"""
        + CLASSIFIER_BLEND
        + """    class_weight : "balanced", dict or None, default=None
        Weights of the classes in the loss: "balanced" weighs each class by
        ``n_samples / (n_classes * count)``; a dict maps labels of ``y`` (as
        given, e.g. ``{"rare": 5.0}``) to weights, classes it leaves out weigh 1,
        and a key that is not a class of ``y`` is a ValueError.  With a
        multilabel ``y`` the weights are those of each label's positive rows
        (BCEWithLogitsLoss's ``pos_weight``): "balanced" gives each label
        ``n_negative / n_positive``, a dict maps label names to weights.
    threshold : float in (0, 1) or "tune", default=0.5
        Multilabel ``y`` only: a row is predicted to have a label when its
        probability is at least this.  "tune" chooses one threshold per label
        on the validation rows (``validation_fraction``), the one that
        maximises that label's F1 there (``thresholds_``).
    calibration : {"temperature"} or None, default=None
        "temperature" fits one temperature ``T`` on the validation rows
        (``validation_fraction``) after training, minimising their log-loss;
        :meth:`predict_proba` then gives the softmax (sigmoid, multilabel) of
        the logits divided by ``temperature_``.  Over-confident networks get
        ``T > 1``; the predicted class never changes, the probabilities'
        log-loss and calibration error on new rows usually fall (measured in
        BENCHMARKS.md).
"""
        + TRAINING_PARAMETERS
        + """
    Attributes
    ----------
    classes_ : ndarray
        The class labels seen in ``y``, sorted (``np.unique`` order, the columns
        of :meth:`predict_proba`), in the dtype ``y`` had.  Multilabel: the
        labels (a DataFrame's columns, the sorted labels of label sets, or
        ``0..n_labels-1`` for an array).
    multilabel_ : bool
        Whether ``y`` had several labels per row.
    thresholds_ : ndarray of shape (n_labels,)
        Multilabel only: each label's decision threshold.
    temperature_ : float
        The temperature dividing the logits (1.0 without ``calibration``).
    blend_weight_ : float
        The network's share in the blend with the stacked text models (``blend``); 1.0: the network alone.
    blend_scale_ : float
        The blend's sharpness (``blend``); 1.0 when it does not blend.
    stackers_ : dict
        Stacked modality name (``<text>_stack``) -> ``{"source": the text
        modality, "model": the text classifier fitted on all rows, "classes":
        the class indices it saw, "n_classes": ...}``; empty when nothing was
        stacked (``stacking``).
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
    net_ : skorch.NeuralNetClassifier or skorch.NeuralNetRegressor
        The trained network (a regressor net with sigmoid outputs for multilabel ``y``).
    class_prior_ : ndarray
        Class frequencies in training (multilabel: each label's frequency);
        rows with no modality at all get them.
    column_roles_ : dict
        With raw columns: every column of X -> the role it was read as
        ("image", "text", "numeric", "categorical"), or ``"ignored: <why>"``.
        ``verbose=1`` prints it as one line at fit.
    modality_kinds_ : list of str
        The kind of each modality in ``modalities_``.
    ignored_columns_ : list
        Columns of a DataFrame X that the model does not use (``column_roles_``
        says why).  A UserWarning names them, except the column equal to ``y``
        (a label kept inside X).

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

    Multilabel: a 2-D array or DataFrame of 0/1 (or boolean) with two or more
    columns, or a sequence of label sets (lists, tuples, sets; scikit-learn's
    ``sklearn.preprocessing.MultiLabelBinarizer`` semantics: a list of
    equal-length 0/1 lists is read as a 2-D array, as in scikit-learn).  A row
    without any label (all zeros, an empty set) is allowed.  The network gives
    one sigmoid per label trained with binary cross-entropy;
    :meth:`predict_proba` has shape (n_samples, n_labels) (scikit-learn's
    convention for multilabel probabilities, as in ``MLPClassifier``) and
    :meth:`predict` comes back in the form ``y`` came in: an array, a
    DataFrame with ``y``'s columns (and X's index), or a list of tuples of
    labels.  scikit-learn's metrics and scorers (``f1_samples``,
    ``f1_micro``, ...) take the array and DataFrame forms.

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
        stacking="auto",
        blend="auto",
        class_weight=None,
        threshold=0.5,
        calibration=None,
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
        self.label_smoothing = label_smoothing
        self.stacking = stacking
        self.blend = blend
        self.class_weight = class_weight
        self.threshold = threshold
        self.calibration = calibration
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
        """Fit encoders and train the fusion network.

        Parameters
        ----------
        X : DataFrame or array-like
            A DataFrame with an image-path column and/or a text column (or, with
            ``columns``, any number of image, text, numeric and categorical
            columns); a DataFrame
            of encoded blocks named ``<modality>__<feature>`` (a ColumnTransformer
            with ``set_output(transform="pandas")``); or a numeric array (one
            numeric modality).
        y : array-like of shape (n_samples,), 2-D array, DataFrame or sequence of label sets
            Class labels; or several labels per row (multilabel): a 2-D 0/1
            array or DataFrame, or a list of label sets.

        Returns
        -------
        self
            The fitted classifier.
        """
        self._check_params()
        check_fraction("label_smoothing", self.label_smoothing)
        check_stacking(self.stacking)
        check_blend(self.blend)
        self._check_class_weight_param()
        check_target_options(self)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        multilabel = read_multilabel(y)
        self.multilabel_ = multilabel is not None
        if self.multilabel_:
            return self._fit_multilabel(X, *multilabel)
        if self.threshold != 0.5:
            raise ValueError(
                f"threshold={self.threshold!r} applies to a multilabel y (several labels per row); this y has "
                "one label per row (for a binary decision threshold see sklearn's TunedThresholdClassifierCV)"
            )
        y, self._label_dtype = read_labels(y)
        self._target_form = None
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

    def _fit_multilabel(self, X, indicator, classes, form):
        if self.label_smoothing:
            raise ValueError(
                f"label_smoothing={self.label_smoothing!r} applies to one label per row; this y is multilabel"
            )
        check_consistent_length(X, indicator)
        modalities = self._layout_fit_read(X, None)  # y is a matrix or label sets, never a column of X
        self.classes_, self._label_dtype, self._target_form = classes, None, form
        self.class_prior_ = indicator.mean(axis=0)
        return self._fit_modalities(
            modalities, indicator.astype(np.float32), n_outputs=len(classes),
            class_weights=label_weights(self.class_weight, indicator, classes),
        )

    def _training_target(self):
        return {"task": "multilabel" if self.multilabel_ else "multiclass", "label_smoothing": self.label_smoothing}

    def _training_holdout(self, y_enc, seed):
        return training_holdout(self, y_enc, seed)

    def _after_training(self, data, y_enc):
        self.temperature_ = 1.0
        if self.calibration is not None or (self.multilabel_ and self.threshold == "tune"):
            logits, y_valid = self._validation_outputs(data, y_enc)
            if self.calibration == "temperature":
                self.temperature_ = fit_temperature(logits, y_valid, multilabel=self.multilabel_)
        if self.multilabel_:
            if self.threshold == "tune":
                proba = probabilities(logits, multilabel=True, temperature=self.temperature_)
                self.thresholds_ = tune_thresholds(proba, y_valid)
            else:
                self.thresholds_ = np.full(len(self.classes_), float(self.threshold))
        self.blend_weight_, self.blend_scale_ = fit_blend(self, data, y_enc)

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

        Multilabel: each label's probability (the rows need not sum to 1).
        Divided by ``temperature_`` before the softmax or sigmoid.  Rows with no
        modality at all (missing image and missing text) get ``class_prior_``.
        """
        return self.proba_from_inputs(self.model_inputs(X))

    def proba_from_inputs(self, inputs):
        """Class probabilities from model inputs, as :meth:`model_inputs` gives them.

        For inspecting the model: alter the inputs first (permute a modality
        across rows, or set its ``<name>_mask`` to False to treat it as missing),
        as :func:`skmm.inspection.modality_importance` does.
        """
        check_is_fitted(self)
        # softmax / sigmoid at float64: rows sum to 1 at the precision scikit-learn's metrics expect
        proba = probabilities(self._outputs(inputs), multilabel=self.multilabel_, temperature=self.temperature_)
        proba = blended(self, proba, inputs)  # with the stacked text models, by blend_weight_ (blend=)
        proba[self._rows_without_any_modality(inputs)] = self.class_prior_
        return proba

    def predict(self, X):
        """Predicted class labels, of the kind ``y`` had in fit.

        An ndarray in the dtype of ``classes_``, or a ``pandas.Categorical`` with
        the categories of ``y`` when ``y`` was categorical.  Multilabel: the
        labels whose probability reaches ``thresholds_``, in the form ``y`` came
        in (a 0/1 array, a DataFrame indexed like X, or a list of label tuples).
        """
        check_is_fitted(self)
        proba = self.predict_proba(X)
        if self.multilabel_:
            indicator = (proba >= self.thresholds_).astype(np.int64)
            if self._target_form.kind == "sets":
                return as_label_sets(indicator, self.classes_)
            return self._target_form.give_back(indicator, X.index if isinstance(X, pd.DataFrame) else None)
        labels = self.classes_[np.argmax(proba, axis=1)]
        if self._label_dtype is not None:
            return pd.Categorical(labels, dtype=self._label_dtype)
        return labels

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __setstate__(self, state):
        if "net_" in state:  # a model pickled before multilabel targets and calibration existed
            state = {"multilabel_": False, "temperature_": 1.0, "_target_form": None, **state}
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    # -- plain-data state, for skmm.save / skmm.load (skmm/persistence) -------------------
    def __skmm_getstate__(self, context):
        state = super().__skmm_getstate__(context)
        if state is not None:
            dtype = self._label_dtype
            state["labels"] = {
                "classes": self.classes_,
                "class_prior": self.class_prior_,
                "temperature": float(self.temperature_),
                **{k: float(getattr(self, f"{k}_", 1.0)) for k in ("blend_weight", "blend_scale")},
                "multilabel": None if not self.multilabel_ else {
                    "thresholds": self.thresholds_, "form": self._target_form.to_plain()},
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
        self.temperature_ = float(labels.get("temperature", 1.0))  # files saved before calibration existed
        self.blend_weight_, self.blend_scale_ = (float(labels.get(k, 1.0)) for k in ("blend_weight", "blend_scale"))
        multilabel = labels.get("multilabel")
        self.multilabel_ = multilabel is not None
        self._target_form = None if multilabel is None else TargetForm(**multilabel["form"])
        if self.multilabel_:
            self.thresholds_ = np.asarray(multilabel["thresholds"], dtype=np.float64)
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
