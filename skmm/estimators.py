"""FusionClassifier: the scikit-learn face over a skorch-trained FusionNet."""

import math
import numbers
import os
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import get_scorer
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d, validate_data
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping, EpochScoring, GradientNormClipping, LRScheduler
from skorch.dataset import ValidSplit
from skorch.helper import SliceDict
from skorch.utils import to_tensor

from .utils.device import autocast, check_precision, resolve_device
from .utils.seeding import seed_of, seeded
from .encoders.base import ImageEncoder, TextEncoder
from .fusion.net import FusionNet
from .io.columns import _same_as_target, detect_columns
from .io.images import is_missing
from .registry import fusions

__all__ = ["FusionClassifier"]

_PREFIX_SEP = "__"


class _Modality:
    """One modality of X: its kind ('image', 'text' or 'dense') and its raw values."""

    def __init__(self, kind, values):
        self.kind, self.values = kind, values


class FusionClassifier(ClassifierMixin, BaseEstimator):
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
    modality_dropout : float, default=0.0
        Probability of hiding a modality of a training row, so the model learns to
        cope without it.
    fusion_kwargs : dict or None, default=None
        Options of the fusion module.
    unimodal_loss : float, default=0.0
        Weight of uni-modal auxiliary losses.  When > 0, every modality the
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
    batch_size : int, default=32
    lr : float, default=1e-3
        Learning rate of AdamW, cosine-annealed over ``max_epochs``.
    weight_decay : float, default=1e-4
    backbone_lr : float or None, default=None
        Learning rate of trainable encoders (None: ``lr``).
    grad_clip : float or None, default=None
        Clip the gradient norm to this value.
    warmup_epochs : int, default=0
        Epochs of linear learning-rate warm-up before the cosine decay (useful
        when fine-tuning pretrained backbones).
    class_weight : "balanced", dict or None, default=None
        Weights of the classes in the loss: "balanced" weighs each class by
        ``n_samples / (n_classes * count)``; a dict maps labels of ``y`` (as
        given, e.g. ``{"rare": 5.0}``) to weights, classes it leaves out weigh 1,
        and a key that is not a class of ``y`` is a ValueError.
    validation_fraction : float or None, default=None
        Hold out this fraction (stratified) and stop early when its loss has not
        improved for ``n_iter_no_change`` epochs, keeping the best epoch's weights.
    n_iter_no_change : int, default=5
    early_stopping_scoring : str or None, default=None
        With ``validation_fraction``: stop on this scikit-learn scorer of the
        held-out rows (e.g. ``"f1_macro"``, higher is better) instead of their loss.
    callbacks : list or None, default=None
        Extra skorch callbacks.
    device : str, default="auto"
        "auto" (CUDA when present), "cpu", "cuda" or "cuda:<n>".
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
        missing, "warn" saying how many and which.  None keeps the image
        encoder's setting (whose default is "raise").
    random_state : int, RandomState or None, default=None
        Seeds weights, shuffling and dropout: equal seeds give equal models.
    verbose : int, default=0
        1 prints skorch's per-epoch table and encoding progress.

    Attributes
    ----------
    classes_ : ndarray
        The class labels seen in ``y``, sorted (``np.unique`` order, the columns
        of :meth:`predict_proba`), in the dtype ``y`` had.
    encoders_ : dict
        Fitted encoder per modality.
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

    # -- parameters ---------------------------------------------------------------------
    def _check_params(self):
        def positive_int(name):
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")

        for name in ("dim", "max_epochs", "batch_size", "n_iter_no_change"):
            positive_int(name)
        if not isinstance(self.hidden_dim, numbers.Integral) or self.hidden_dim < 0:
            raise ValueError(f"hidden_dim must be an integer >= 0, got {self.hidden_dim!r}")
        for name in ("dropout", "modality_dropout"):
            v = getattr(self, name)
            if not isinstance(v, numbers.Real) or not 0 <= v < 1:
                raise ValueError(f"{name} must be in [0, 1), got {v!r}")
        u = self.unimodal_loss
        if isinstance(u, bool) or not isinstance(u, numbers.Real) or not 0 <= u < np.inf:
            raise ValueError(f"unimodal_loss must be a finite number >= 0, got {u!r}")
        if not isinstance(self.warmup_epochs, numbers.Integral) or not 0 <= self.warmup_epochs < self.max_epochs:
            raise ValueError(f"warmup_epochs must be an integer in [0, max_epochs), got {self.warmup_epochs!r}")
        for name in ("lr", "backbone_lr", "grad_clip"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, numbers.Real) or v <= 0):
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        if self.validation_fraction is not None and not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1) or None, got {self.validation_fraction!r}")
        if self.early_stopping_scoring is not None:
            if self.validation_fraction is None:
                raise ValueError("early_stopping_scoring needs validation_fraction (the rows it scores)")
            get_scorer(self.early_stopping_scoring)  # an unknown name: sklearn's error lists the valid ones
        cw = self.class_weight
        if not (cw is None or isinstance(cw, Mapping) or (isinstance(cw, str) and cw == "balanced")):
            raise ValueError(
                f"class_weight must be None, 'balanced' or a dict mapping class labels to weights, "
                f"got {self.class_weight!r}"
            )
        if self.on_error not in (None, "raise", "warn", "ignore"):
            raise ValueError(f"on_error must be None, 'raise', 'warn' or 'ignore', got {self.on_error!r}")
        if not isinstance(self.fusion, str):
            raise TypeError(f"fusion must be a registered name (str), got {type(self.fusion).__name__}")
        fusions.get(self.fusion)  # unknown name: a ValueError listing the known ones
        resolve_device(self.device)
        check_precision(self.precision)

    def _make_encoder(self, kind, seed):
        spec, cls, default = (self.image, ImageEncoder, "cnn") if kind == "image" else (self.text, TextEncoder, "gru")
        if spec is None:
            spec = default
        if isinstance(spec, str):
            encoder = cls(spec)
        elif isinstance(spec, cls):
            encoder = clone(spec)
        else:
            raise TypeError(f"{kind} must be a {cls.__name__}, a backbone name or None, got {type(spec).__name__}")
        params = {"device": self.device_}
        if encoder.random_state is None:
            params["random_state"] = seed
        if encoder.precision == "auto" and self.precision != "auto":
            params["precision"] = self.precision
        if kind == "image" and self.on_error is not None:
            params["on_error"] = self.on_error
        if self.verbose:
            params["verbose"] = self.verbose
        return encoder.set_params(**params)

    # -- reading X ------------------------------------------------------------------------
    def _read_X(self, X, y=None, reset=True):
        """Split X into modalities. At fit (reset=True) decide the layout; later follow it."""
        if not isinstance(X, pd.DataFrame):
            if self.image_col is not None or self.text_col is not None:
                raise TypeError(
                    f"X must be a pandas DataFrame when image_col/text_col name columns, got {type(X).__name__}"
                )
            if reset:
                self.layout_ = "dense"
            elif self.layout_ != "dense":
                raise TypeError(f"X must be a pandas DataFrame like the one seen in fit, got {type(X).__name__}")
            arr = validate_data(self, X, reset=reset, dtype=np.float32)
            return {"numeric": _Modality("dense", arr)}
        if reset:
            self.layout_ = self._decide_layout(X, y)
        if self.layout_ == "dense":
            arr = validate_data(self, X, reset=reset, dtype=np.float32)
            return {"numeric": _Modality("dense", arr)}
        if self.layout_ == "blocks":
            validate_data(self, X, reset=reset, skip_check_array=True)
            out = {}
            for name, cols in self.blocks_.items():
                block = X[cols]
                bad = [c for c in cols if not pd.api.types.is_numeric_dtype(block[c])]
                if bad:
                    raise TypeError(f"encoded column {bad[0]!r} is not numeric ({block[bad[0]].dtype})")
                arr = block.to_numpy(dtype=np.float32)
                if not np.isfinite(arr).all():
                    row, col = np.argwhere(~np.isfinite(arr))[0]
                    raise ValueError(f"X has a NaN or infinite value in column {cols[col]!r}, row {X.index[row]!r}")
                out[name] = _Modality("dense", arr)
            return out
        # raw image/text columns
        if reset:
            self.n_features_in_ = X.shape[1]
        for param, col in (("image_col", self.image_col_), ("text_col", self.text_col_)):
            if col is not None and col not in X.columns:
                raise ValueError(f"column {col!r} ({param} in fit) is missing from X; columns are {list(X.columns)}")
        out = {}
        if self.image_col_ is not None:
            _check_paths(X[self.image_col_], self.image_col_)
            out["image"] = _Modality("image", X[self.image_col_])
        if self.text_col_ is not None:
            out["text"] = _Modality("text", X[self.text_col_])
        if len(X) == 0:
            raise ValueError("X has 0 rows; at least 1 is required")
        return out

    def _decide_layout(self, X, y):
        cols = [str(c) for c in X.columns]
        if self.image_col is None and self.text_col is None:
            if all(pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c]) for c in X.columns):
                if all(_PREFIX_SEP in c for c in cols) and len(X.columns):
                    blocks = {}
                    for c in X.columns:
                        blocks.setdefault(_modality_name(str(c).split(_PREFIX_SEP, 1)[0]), []).append(c)
                    self.blocks_ = blocks
                    return "blocks"
                return "dense"
        self.image_col_, self.text_col_, ignored = detect_columns(X, self.image_col, self.text_col, y)
        if self.image_col_ is None and self.text_col_ is None:
            raise ValueError(
                f"found no image-path or text column in X (columns {cols}); name them with image_col= and text_col="
            )
        self.ignored_columns_ = ignored
        if ignored and self.verbose:
            print(f"FusionClassifier: image_col={self.image_col_!r}, text_col={self.text_col_!r}; not used: {ignored}")
        # Nothing a user gave is dropped silently. Expected, so not warned about: a label kept inside X
        # (the column equal to y), and columns left over once image_col and text_col are both named.
        unused = [c for c in ignored if not _same_as_target(X[c], y)]
        if unused and (self.image_col is None or self.text_col is None):
            warnings.warn(
                f"{type(self).__name__} uses image_col={self.image_col_!r} and text_col={self.text_col_!r} and "
                f"ignores the other columns of X: {unused}. Name the columns to use with image_col= and text_col=, "
                "or drop the others from X, to silence this warning.",
                UserWarning,
                stacklevel=4,
            )
        return "columns"

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
        """
        self._check_params()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        y, self._label_dtype = _read_labels(y)
        check_classification_targets(y)
        check_consistent_length(X, y)  # before reading X, which compares its columns with y
        modalities = self._read_X(X, y=y, reset=True)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            label = self.classes_[0].item() if hasattr(self.classes_[0], "item") else self.classes_[0]
            raise ValueError(f"y has 1 class ({label!r}); a classifier needs at least 2 classes")
        self.class_prior_ = np.bincount(y_enc, minlength=len(self.classes_)) / len(y_enc)
        class_weights = self._class_weights(y_enc)
        self._check_fusion_fits(list(modalities))
        self.device_ = resolve_device(self.device)
        seed, _ = seed_of(self.random_state)
        with seeded(seed):
            self.encoders_, self.scalers_, branches = {}, {}, {}
            data = self._encode_fit(modalities, branches, seed)
            self.modalities_ = list(branches)
            module = FusionNet(
                branches, len(self.classes_), fusion=self.fusion, dim=self.dim, hidden_dim=self.hidden_dim,
                dropout=self.dropout, modality_dropout=self.modality_dropout, fusion_kwargs=self.fusion_kwargs,
                unimodal_loss=self.unimodal_loss,
            )
            self.net_ = self._make_net(module, class_weights, seed)
            self.net_.fit(SliceDict(**data), y_enc.astype(np.int64))
        for encoder in self.encoders_.values():
            if encoder.is_trainable_:
                encoder._mark_trained()
        return self

    def _check_fusion_fits(self, names):
        # Build the fusion on paper first: an ablation without its modality fails here, before any encoding.
        try:
            fusions.get(self.fusion)(names, 4, 2, **(self.fusion_kwargs or {}))
        except ValueError as exc:
            raise ValueError(f"fusion={self.fusion!r} cannot use the modalities of X {names}: {exc}") from exc

    def _encode_fit(self, modalities, branches, seed):
        data = {}
        for name, mod in modalities.items():
            if mod.kind == "dense":
                mean = mod.values.mean(axis=0)
                scale = mod.values.std(axis=0)
                scale[scale < 1e-12] = 1.0
                self.scalers_[name] = (mean.astype(np.float32), scale.astype(np.float32))
                data[name] = ((mod.values - mean) / scale).astype(np.float32)
                branches[name] = (None, mod.values.shape[1])
                continue
            encoder = self._make_encoder(mod.kind, seed).fit(mod.values)
            self.encoders_[name] = encoder
            if encoder.is_trainable_:
                inputs, present = encoder.prepare(mod.values)
                branches[name] = (encoder.module_for_training(), encoder.backbone_.out_dim)
            else:
                inputs, present = encoder.encode(mod.values)
                branches[name] = (None, inputs.shape[1])
            data[name], data[f"{name}_mask"] = inputs, present
        return data

    def _class_weights(self, y_enc):
        """Loss weight of each class (``classes_`` order), or None; dict keys are labels of y."""
        if self.class_weight is None:
            return None
        if isinstance(self.class_weight, str):  # "balanced" (checked in _check_params)
            return compute_class_weight("balanced", classes=np.arange(len(self.classes_)), y=y_enc)
        position = {label: i for i, label in enumerate(self.classes_.tolist())}
        unknown = [key for key in self.class_weight if key not in position]
        if unknown:
            raise ValueError(
                f"class_weight has keys that are not classes of y: {unknown}; the classes are {list(position)}"
            )
        weights = np.ones(len(self.classes_))
        for key, weight in self.class_weight.items():
            if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not 0 <= weight < np.inf:
                raise ValueError(f"class_weight[{key!r}] must be a finite number >= 0, got {weight!r}")
            weights[position[key]] = weight
        return weights

    def _make_net(self, module, class_weights, seed):
        schedule = WarmupCosine(self.warmup_epochs, self.max_epochs)
        callbacks = [("lr_schedule", LRScheduler(policy=torch.optim.lr_scheduler.LambdaLR, lr_lambda=schedule))]
        if self.grad_clip is not None:
            callbacks.append(("grad_clip", GradientNormClipping(gradient_clip_value=self.grad_clip)))
        train_split = None
        if self.validation_fraction is not None:
            train_split = ValidSplit(self.validation_fraction, stratified=True, random_state=seed)
            monitor, lower_is_better = "valid_loss", True
            if self.early_stopping_scoring is not None:
                monitor, lower_is_better = "valid_score", False
                callbacks.append((monitor, EpochScoring(self.early_stopping_scoring, lower_is_better=False, name=monitor)))
            callbacks.append(("early_stopping", EarlyStopping(
                monitor=monitor, lower_is_better=lower_is_better, patience=self.n_iter_no_change, load_best=True)))
        callbacks.extend(self.callbacks or [])
        kwargs = {}
        if class_weights is not None:
            kwargs["criterion__weight"] = torch.tensor(class_weights, dtype=torch.float32)
        if self.backbone_lr is not None:
            kwargs["optimizer__param_groups"] = [("encoders.*", {"lr": self.backbone_lr})]
        if str(self.device_).startswith("cuda"):
            kwargs.update(iterator_train__pin_memory=True, iterator_valid__pin_memory=True)
        return _AutocastNet(
            module,
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=torch.optim.AdamW,
            optimizer__weight_decay=self.weight_decay,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=train_split,
            callbacks=callbacks,
            iterator_train__shuffle=True,
            classes=np.arange(len(self.classes_)),
            device=self.device_,
            precision=self.precision,
            verbose=self.verbose,
            **kwargs,
        )

    # -- predict --------------------------------------------------------------------------
    def _inputs(self, X):
        check_is_fitted(self)
        modalities = self._read_X(X, reset=False)
        data = {}
        for name in self.modalities_:
            mod = modalities[name]
            if mod.kind == "dense":
                mean, scale = self.scalers_[name]
                data[name] = ((mod.values - mean) / scale).astype(np.float32)
                continue
            encoder = self.encoders_[name]
            inputs, present = encoder.prepare(mod.values) if encoder.is_trainable_ else encoder.encode(mod.values)
            data[name], data[f"{name}_mask"] = inputs, present
        return data

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_`` order.

        Rows with no modality at all (missing image and missing text) get
        ``class_prior_``.
        """
        data = self._inputs(X)
        proba = self.net_.predict_proba(SliceDict(**data)).astype(np.float64)
        # the net's softmax is float32: renormalised, rows sum to 1 at float64 precision (as
        # scikit-learn's metrics, e.g. log_loss, expect)
        proba /= proba.sum(axis=1, keepdims=True)
        masks = [data[f"{n}_mask"] for n in self.modalities_ if f"{n}_mask" in data]
        if masks and len(masks) == len(self.modalities_):
            none = ~np.any(np.stack(masks), axis=0)
            proba[none] = self.class_prior_
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

    def __getstate__(self):
        state = self.__dict__.copy()
        if "net_" in state and state.get("encoders_"):
            # A trained encoder's module lives inside net_, which skorch saves; the
            # encoder's copy is left out and relinked on load, so weights are stored once.
            state["encoders_"] = {
                name: enc._detached_from_net() if enc.is_trainable_ else enc for name, enc in state["encoders_"].items()
            }
        return state

    def __setstate__(self, state):
        # A model trained on CUDA loads anywhere: skorch moves the net to the CPU with
        # a warning, the encoders do the same, and this records where it now runs.
        self.__dict__.update(state)
        if str(state.get("device_", "")).startswith("cuda") and not torch.cuda.is_available():
            self.device_ = "cpu"
        for name, encoder in (state.get("encoders_") or {}).items():
            if getattr(encoder, "_module_in_net", False):
                encoder._relink(self.net_.module_.encoders[name], self.device_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        return tags


def _read_labels(y):
    """y -> (1-D ndarray of labels, the CategoricalDtype predictions are given back in, or None)."""
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


def _check_paths(column, name):
    """An image column holds paths or missing values; anything else is a TypeError naming the row."""
    if pd.api.types.is_string_dtype(column.dtype) and column.dtype != object:
        return  # a pandas string column holds only strings and missing values
    for position, (label, value) in enumerate(column.items()):
        if not (is_missing(value) or isinstance(value, (str, os.PathLike))):
            raise TypeError(
                f"column {name!r} (the image column) must hold image file paths or missing values; "
                f"row {label!r} (position {position}) holds {type(value).__name__} {value!r}"
            )


class _AutocastNet(NeuralNetClassifier):
    """skorch's classifier with the forward pass under bf16 autocast where ``precision``
    asks for it (by default on CUDA only).

    bf16 keeps float32's range, so no gradient scaling is needed; logits come back as
    float32 so the loss and the probabilities are computed at full precision.

    In training, a FusionNet with uni-modal auxiliary losses returns
    ``(logits, modality_logits, mask)``; :meth:`get_loss` then adds
    ``module_.unimodal_loss`` times the mean of the per-modality cross-entropies,
    each over the rows that had the modality, weighted by the criterion's class
    weights.
    """

    def __init__(self, module, *, precision="auto", **kwargs):
        super().__init__(module, **kwargs)
        self.precision = precision

    def infer(self, x, **fit_params):
        with autocast(self.device, self.precision):
            out = super().infer(x, **fit_params)
        if isinstance(out, tuple):
            logits, per, mask = out
            return logits.float(), per.float(), mask
        return out.float()

    def get_loss(self, y_pred, y_true, X=None, training=False):
        if not isinstance(y_pred, tuple):
            return super().get_loss(y_pred, y_true, X=X, training=training)
        logits, per, mask = y_pred
        loss = super().get_loss(logits, y_true, X=X, training=training)
        y_true = to_tensor(y_true, device=self.device)
        weight = self.criterion_.weight
        losses = []
        for m in range(per.shape[1]):
            rows = mask[:, m]
            if not rows.any():
                continue
            y = y_true[rows]
            # the (weighted) mean CrossEntropyLoss(weight) computes; a 0/0 is skipped
            total = weight[y].sum() if weight is not None else y.new_tensor(len(y), dtype=per.dtype)
            if total > 0:
                losses.append(F.cross_entropy(per[rows, m], y, weight=weight, reduction="sum") / total)
        if losses:
            loss = loss + self.module_.unimodal_loss * torch.stack(losses).mean()
        return loss


class WarmupCosine:
    """Learning-rate factor per epoch: linear warm-up, then cosine decay to zero.

    A class rather than a lambda so that fitted models pickle.
    """

    def __init__(self, warmup_epochs, max_epochs):
        self.warmup_epochs, self.max_epochs = int(warmup_epochs), int(max_epochs)

    def __call__(self, epoch):
        if epoch < self.warmup_epochs:
            return (epoch + 1) / self.warmup_epochs
        span = max(1, self.max_epochs - self.warmup_epochs)
        return 0.5 * (1 + math.cos(math.pi * min(epoch - self.warmup_epochs, span) / span))


def _modality_name(prefix):
    """ColumnTransformer block names -> modality roles ('imageencoder' -> 'image')."""
    lowered = prefix.lower()
    if "image" in lowered:
        return "image"
    if "text" in lowered:
        return "text"
    return prefix
