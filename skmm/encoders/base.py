"""ImageEncoder and TextEncoder: backbones behind the scikit-learn transformer API.

An encoder is the same object whether it runs alone (a frozen feature extractor
in any Pipeline or ColumnTransformer, its embeddings cached) or inside
:class:`skmm.FusionClassifier` (where a trainable backbone's module becomes a
branch of the FusionNet and learns end to end).
"""

import copy
import math
import numbers
import uuid

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data
from tqdm.auto import tqdm

from .. import cache as _cache
from ..utils.device import autocast, check_precision, resolve_device, uses_bf16
from ..utils.serialization import dump_module, load_module
from ..io.images import DEFAULT_MAX_IMAGE_PIXELS, is_missing, load_images_parallel, resolve_num_workers
from ..io.text import to_texts
from ..registry import image_encoders, text_encoders
from ._backbone import Normalize

__all__ = ["ImageEncoder", "TextEncoder"]

_ON_ERROR = ("raise", "warn", "ignore")


def _check_trainable(trainable):
    if trainable in ("auto", True, False):
        return trainable
    if isinstance(trainable, str) and trainable.startswith("last:"):
        n = trainable[5:]
        if n.isdigit() and int(n) > 0:
            return trainable
    raise ValueError(f"trainable must be 'auto', True, False or 'last:<n>' with n >= 1, got {trainable!r}")


def _column_of(X):
    """Raw values, their index labels and the column name of a 1-column input."""
    if isinstance(X, pd.DataFrame):
        if X.shape[1] != 1:
            return None
        return list(X.iloc[:, 0]), list(X.index), str(X.columns[0])
    if isinstance(X, pd.Series):
        return list(X), list(X.index), None if X.name is None else str(X.name)
    return None


def _is_path_like_array(X):
    """True for inputs made of paths/strings/missing values rather than numbers."""
    col = _column_of(X)
    if col is not None:
        values = col[0]
    elif isinstance(X, (list, tuple)):
        values = X
    elif isinstance(X, np.ndarray) and X.dtype.kind in "OUS" and X.ndim <= 2 and (X.ndim == 1 or X.shape[1] == 1):
        values = X.ravel().tolist()
    else:
        return False
    return any(isinstance(v, (str, bytes)) or hasattr(v, "__fspath__") for v in values) or all(
        is_missing(v) for v in values
    )


class _BaseEncoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared machinery: backbone construction, batched frozen inference, cache, pickling."""

    _registry = None  # set by subclasses

    # -- hooks the subclasses implement -------------------------------------------------
    def _read(self, X, reset):
        """Validate X -> a _Batch of raw inputs."""
        raise NotImplementedError

    def _build_backbone(self):
        raise NotImplementedError

    def _fit_backbone(self, batch):
        pass

    def _check_params(self):
        pass

    def _iter_prepared(self, batch, positions):
        """Yield (start, model_inputs, present) over ``positions`` of ``batch``, streaming."""
        raise NotImplementedError

    def _keys(self, batch):
        return None  # no caching by default

    # -- scikit-learn API ---------------------------------------------------------------
    def fit(self, X, y=None):
        """Build the backbone and learn what it learns from ``X`` (a vocabulary, a vectorizer).

        Parameters
        ----------
        X : DataFrame column, Series, list or array
            The inputs (see the class docstring).
        y : ignored

        Returns
        -------
        self
        """
        _check_trainable(self.trainable)
        if self.batch_size is None or not isinstance(self.batch_size, numbers.Integral) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        check_precision(self.precision)
        self._check_params()
        batch = self._read(X, reset=True)
        self.device_ = resolve_device(self.device)
        self.backbone_ = self._build_backbone()
        self._fit_backbone(batch)
        self._n_features_out = int(self.backbone_.out_dim)
        self._setup_module()
        return self

    def transform(self, X):
        """Encode ``X`` into a float32 array of shape (n_samples, n_features_out).

        Rows whose input is missing (or failed to load under ``on_error`` 'warn' /
        'ignore') are all zeros.
        """
        check_is_fitted(self)
        features, _ = self._encode(self._read(X, reset=False))
        return features

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = False
        return tags

    # -- the pieces FusionClassifier uses ----------------------------------------------
    @property
    def is_trainable_(self):
        """Whether FusionClassifier should train this encoder's module end to end."""
        check_is_fitted(self)
        if self.trainable == "auto":
            return bool(self.backbone_.trainable) and self.backbone_.module is not None
        return self.trainable is not False and self.backbone_.module is not None

    def module_for_training(self):
        """The module FusionClassifier trains, with the requested parts frozen.

        Returns a module mapping :meth:`prepare` output to features, or ``None`` when
        the prepared inputs already are the features.
        """
        check_is_fitted(self)
        module = self._full_module()
        if module is None:
            return None
        if isinstance(self.trainable, str) and self.trainable.startswith("last:"):
            n = int(self.trainable[5:])
            blocks = list(getattr(self.backbone_, "blocks", None) or [])
            if not blocks:
                raise ValueError(f"trainable={self.trainable!r}: backbone {self.backbone!r} names no blocks")
            for p in self.backbone_.module.parameters():
                p.requires_grad_(False)
            for block in blocks[-n:]:
                for p in block.parameters():
                    p.requires_grad_(True)
        return module

    def _mark_trained(self):
        """Called by FusionClassifier once it trained this encoder's module: its features
        no longer match the untrained backbone's, so they must not share cache entries."""
        self.trained_tag_ = uuid.uuid4().hex

    def prepare(self, X):
        """Model inputs for a trainable branch: (array of inputs, bool array of present rows)."""
        check_is_fitted(self)
        return self._prepare_batch(self._read(X, reset=False))

    def _prepare_batch(self, batch):
        parts, present = [], np.zeros(batch.n, dtype=bool)
        for start, inputs, ok in self._iter_prepared(batch, np.arange(batch.n)):
            parts.append(np.asarray(inputs))
            present[start : start + len(ok)] = np.asarray(ok)
        return np.concatenate(parts) if parts else np.empty((0,)), present

    def encode(self, X):
        """Features and a bool array telling which rows had an input."""
        check_is_fitted(self)
        return self._encode(self._read(X, reset=False))

    # -- frozen inference ----------------------------------------------------------------
    def _wrap_module(self, module):
        """The backbone's module with what runs before it (image normalisation)."""
        return module

    def _full_module(self):
        return self._module

    def _setup_module(self):
        # Done once in fit (and on load), so transform never changes the estimator's state.
        module = self.backbone_.module
        if module is not None:
            module.to(self.device_)
            module = self._wrap_module(module).to(self.device_)
        # NHWC pays on GPUs and, on the CPU, with bf16 (oneDNN's AMX kernels); float32
        # CPU convolutions gain nothing from it.
        self._channels_last = bool(
            module is not None
            and getattr(self.backbone_, "channels_last", False)
            and (self.device_ != "cpu" or uses_bf16(self.device_, self.precision))
        )
        if self._channels_last:
            module.to(memory_format=torch.channels_last)
        self._module = module

    def _fingerprint(self):
        return None

    def _forward(self, inputs):
        module = self._module
        if module is None:
            return np.asarray(inputs, dtype=np.float32)
        module.eval()
        x = torch.as_tensor(np.asarray(inputs) if not torch.is_tensor(inputs) else inputs)
        x = x.to(self.device_, non_blocking=True)
        if getattr(self, "_channels_last", False) and x.ndim == 4:
            # The convolutions only run in NHWC when their input is NHWC too.
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(self.device_, self.precision):
            out = module(x)
        return out.float().cpu().numpy()

    def _compute(self, batch, positions):
        """Features of ``positions`` of ``batch``; NaN rows where the input is missing."""
        out = np.full((len(positions), self._n_features_out), np.nan, dtype=np.float32)
        with tqdm(total=len(positions), disable=not self.verbose, desc=f"{type(self).__name__}({self.backbone})") as bar:
            for start, inputs, ok in self._iter_prepared(batch, positions):
                ok = np.asarray(ok, dtype=bool)
                feats = self._forward(inputs)
                feats[~ok] = np.nan
                out[start : start + len(ok)] = feats
                bar.update(len(ok))
        return out

    def _encode(self, batch):
        keys = self._keys(batch) if self.cache else None
        fingerprint = self._fingerprint() if keys is not None else None
        if fingerprint is not None and getattr(self, "trained_tag_", None):
            fingerprint = f"{fingerprint}|trained={self.trained_tag_}"
        if fingerprint is not None and self._module is not None and uses_bf16(self.device_, self.precision):
            # bf16 embeddings differ from float32 ones: never answer one with the other.
            fingerprint = f"{fingerprint}|bf16"
        positions = np.arange(batch.n)
        if fingerprint is None:
            features = self._compute(batch, positions)
        else:
            store = _cache.get_cache(self.cache_dir)
            features = store.get_or_compute(fingerprint, keys, lambda pos: self._compute(batch, np.asarray(pos)))
            features = np.array(features, dtype=np.float32, copy=True)
        present = ~np.isnan(features).any(axis=1) if features.size else np.ones(batch.n, bool)
        features[~present] = 0.0
        return features, present

    # -- persistence: modules travel as torch bytes so CUDA-trained models load on CPU ----
    def _detached_from_net(self):
        """A copy to pickle without its module, which FusionClassifier's net already holds."""
        twin = copy.copy(self)
        twin._module_in_net = True
        return twin

    def _relink(self, net_module, device):
        """Take the trained module back from the FusionNet branch ``net_module`` after loading."""
        del self._module_in_net
        _set_module(self.backbone_, self._unwrap_module(net_module))
        self.device_ = device
        self._setup_module()

    def _unwrap_module(self, module):
        """Inverse of :meth:`_wrap_module`."""
        return module

    def __getstate__(self):
        state = self.__dict__.copy()
        backbone = state.get("backbone_")
        if backbone is not None and getattr(backbone, "module", None) is not None:
            if not state.get("_module_in_net"):
                state["_module_bytes"] = dump_module(backbone.module)
            state["backbone_"] = _without_module(backbone)
        state.pop("_module", None)
        state.pop("_channels_last", None)
        return state

    def __setstate__(self, state):
        data = state.pop("_module_bytes", None)
        self.__dict__.update(state)
        if data is not None:
            module, device = load_module(data, self.device_)
            self.device_ = device
            _set_module(self.backbone_, module)
        elif str(state.get("device_", "")).startswith("cuda") and not torch.cuda.is_available():
            self.device_ = "cpu"
        if "backbone_" in state and not state.get("_module_in_net"):
            self._setup_module()


def _without_module(backbone):
    clone = copy.copy(backbone)
    # Blocks are sub-modules of the module; they are restored from it on load.
    blocks = getattr(backbone, "blocks", None)
    if blocks:
        ids = {id(m): name for name, m in backbone.module.named_modules()}
        clone.blocks = [ids[id(b)] for b in blocks]
    clone.module = None
    return clone


def _set_module(backbone, module):
    backbone.module = module
    blocks = getattr(backbone, "blocks", None)
    if blocks and isinstance(blocks[0], str):
        named = dict(module.named_modules())
        backbone.blocks = [named[name] for name in blocks]


class _Batch:
    """Validated raw inputs: values, their index labels, the column name, the kind."""

    def __init__(self, kind, values, index=None, column=None):
        self.kind = kind
        self.values = values
        self.n = len(values)
        self.index = list(range(self.n)) if index is None else index
        self.column = column


def _check_nonempty(n, name):
    if n == 0:
        raise ValueError(f"{name} got 0 samples; at least 1 is required")


class ImageEncoder(_BaseEncoder):
    """Turn image files (or image arrays) into feature vectors with a registered backbone.

    Parameters
    ----------
    backbone : str, default="cnn"
        A name in :data:`skmm.registry.image_encoders`: ``"cnn"`` (a small CNN,
        randomly initialised from ``random_state``; trained end to end inside
        FusionClassifier), ``"pixels"`` (resized pixels), or a family-prefixed name
        such as ``"torchvision:resnet18"``, ``"timm:convnext_tiny"``, ``"hf:<dir>"``.
    weights : str or None, default=None
        Weights for the backbone: a name its family knows (``"DEFAULT"``,
        ``"IMAGENET1K_V1"``) or a local file.  None means random initialisation
        for ``cnn``, ``torchvision:`` and ``timm:``, and the checkpoint the name
        points to for ``hf:`` and ``clip:`` (see docs/pretrained.md).
    image_size : int or None, default=None
        Side of the square images the backbone sees; None takes the backbone's own.
    resize : {"pad", "stretch", "crop"}, default="pad"
        How images are fitted into the square: letterboxed on white, stretched, or
        centre-cropped.
    trainable : "auto", bool or "last:<n>", default="auto"
        Inside FusionClassifier: whether the backbone learns end to end ("auto"
        lets the backbone decide: nets trained from scratch do, pretrained ones
        stay frozen), or only its last n blocks do.  Standalone transforms never
        train.
    batch_size : int, default=64
        Images per forward pass.
    num_workers : "auto" or int, default="auto"
        DataLoader worker processes decoding and resizing images while the
        model runs; 0 decodes in this process.  "auto" is
        ``min(4, cores available)``, and 0 when one core is available, when the
        images fit in one batch, or inside a worker of a process pool (a
        GridSearchCV with ``n_jobs``); see
        :func:`skmm.io.images.resolve_num_workers`.  Workers run one torch
        thread each and decode at most two batches ahead of the model, so the
        decoded pixels alive at once do not grow with the number of images.
    device : str, default="auto"
        "auto" (CUDA when present), "cpu", "cuda" or "cuda:<n>".
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        Arithmetic of the forward pass: "auto" is bf16 autocast on CUDA and
        float32 elsewhere; "bfloat16" uses bf16 autocast on any device (on CPUs
        with AMX or AVX512-BF16 several times faster than float32, embeddings
        within about 1e-2 of float32's); "float32" never uses bf16.  Embeddings
        come back as float32 either way, and the cache keeps the two apart.
    on_error : {"raise", "warn", "ignore"}, default="raise"
        What a missing, unreadable or oversized file does: stop with an error
        naming the row, the column and the path, or count as a missing image.
    max_image_pixels : int or None
        Files with more pixels than this are refused (decompression-bomb guard).
    cache : bool, default=True
        Reuse embeddings of files already encoded by an identical frozen backbone.
    cache_dir : str or None, default=None
        Keep the cache on disk here (shared between processes) instead of in memory.
    random_state : int, RandomState or None, default=None
        Seeds randomly initialised weights.
    backbone_kwargs : dict or None, default=None
        Extra options for the backbone factory (e.g. ``{"channels": (16, 32)}``).
    verbose : int, default=0
        Show a progress bar while encoding.

    Attributes
    ----------
    backbone_ : ImageBackbone
        The backbone built in ``fit``.
    device_ : str
        The device inference runs on.

    Examples
    --------
    >>> from skmm import ImageEncoder
    >>> from skmm.datasets import make_shapes
    >>> df = make_shapes(8, random_state=0)
    >>> ImageEncoder("pixels", image_size=8).fit_transform(df["image_path"]).shape
    (8, 192)
    """

    _registry = image_encoders

    def __init__(
        self,
        backbone="cnn",
        *,
        weights=None,
        image_size=None,
        resize="pad",
        trainable="auto",
        batch_size=64,
        num_workers="auto",
        device="auto",
        precision="auto",
        on_error="raise",
        max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS,
        cache=True,
        cache_dir=None,
        random_state=None,
        backbone_kwargs=None,
        verbose=0,
    ):
        self.backbone = backbone
        self.weights = weights
        self.image_size = image_size
        self.resize = resize
        self.trainable = trainable
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.device = device
        self.precision = precision
        self.on_error = on_error
        self.max_image_pixels = max_image_pixels
        self.cache = cache
        self.cache_dir = cache_dir
        self.random_state = random_state
        self.backbone_kwargs = backbone_kwargs
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

    def _check_params(self):
        resolve_num_workers(self.num_workers, 0, 1)  # a ValueError for anything but "auto" or an int >= 0

    def _read(self, X, reset):
        if self.on_error not in _ON_ERROR:
            raise ValueError(f"on_error must be one of {_ON_ERROR}, got {self.on_error!r}")
        if _is_path_like_array(X):
            validate_data(self, X, skip_check_array=True, reset=reset)
            col = _column_of(X)
            if col is not None:
                values, index, column = col
            else:
                values, index, column = list(np.asarray(X, dtype=object).ravel()), None, None
            _check_nonempty(len(values), type(self).__name__)
            return _Batch("paths", values, index, column)
        if isinstance(X, pd.DataFrame) and any(X[c].dtype.kind in "OSU" or str(X[c].dtype) == "string" for c in X):
            raise ValueError(
                f"ImageEncoder takes one column of image paths, got a DataFrame with columns {list(X.columns)}; "
                "select one column (in a ColumnTransformer, name it as a string, not a list)"
            )
        arr = validate_data(self, X, reset=reset, allow_nd=True, dtype=None, ensure_min_samples=1)
        if arr.dtype.kind not in "biuf":
            arr = validate_data(self, X, reset=False, allow_nd=True, dtype=np.float64)
        return _Batch("arrays", _arrays_to_images(arr))

    def _build_backbone(self):
        kwargs = dict(self.backbone_kwargs or {})
        family, spec = self._registry.split(self.backbone)
        factory = self._registry.get(self.backbone)
        return factory(spec, image_size=self.image_size, random_state=self.random_state, weights=self.weights, **kwargs)

    def _wrap_module(self, module):
        return torch.nn.Sequential(Normalize(self.backbone_.mean, self.backbone_.std), module)

    def _unwrap_module(self, module):
        return module[1]

    def _fingerprint(self):
        fp = getattr(self.backbone_, "fingerprint", "")
        if not fp or "unseeded=" in fp:
            return None
        return f"image|{fp}|resize={self.resize}|max_pixels={self.max_image_pixels}"

    def _keys(self, batch):
        if batch.kind != "paths":
            return None
        return [_cache.image_key(p) for p in batch.values]

    def _prepare_batch(self, batch):
        # A trainable branch needs pixels, not embeddings. Decoding is the slow part
        # (big PNGs take seconds), so decoded pixels are cached like embeddings, keyed by
        # file identity and preprocessing only: every fold and grid point of a search
        # over a trainable CNN then decodes each file once.
        keys = self._keys(batch) if self.cache else None
        if keys is None:
            return super()._prepare_batch(batch)
        size = self.backbone_.image_size
        fingerprint = f"decoded-pixels|size={size}|resize={self.resize}|max_pixels={self.max_image_pixels}"

        def compute(positions):
            rows = np.full((len(positions), 3 * size * size), np.nan, dtype=np.float32)
            for start, pixels, ok in self._iter_prepared(batch, np.asarray(positions)):
                ok = np.asarray(ok, dtype=bool)
                flat = np.asarray(pixels).reshape(len(ok), -1).astype(np.float32)
                flat[~ok] = np.nan  # not stored: a missing or failed image is tried again next time
                rows[start : start + len(ok)] = flat
            return rows

        flat = _cache.get_cache(self.cache_dir).get_or_compute(fingerprint, keys, compute)
        present = ~np.isnan(flat).any(axis=1)
        flat[~present] = 255.0
        return flat.reshape(batch.n, 3, size, size).astype(np.uint8), present

    def _iter_prepared(self, batch, positions):
        size = self.backbone_.image_size
        if batch.kind == "arrays":
            for start in range(0, len(positions), self.batch_size):
                idx = positions[start : start + self.batch_size]
                pix = _resize_arrays(batch.values[idx], size)
                yield start, pix, np.ones(len(idx), dtype=bool)
            return
        paths = [batch.values[i] for i in positions]
        index = [batch.index[i] for i in positions]
        yield from load_images_parallel(
            paths,
            size,
            num_workers=self.num_workers,
            batch_size=self.batch_size,
            on_error=self.on_error,
            max_image_pixels=self.max_image_pixels,
            resize=self.resize,
            column=batch.column,
            index=index,
            pin_memory=str(self.device_).startswith("cuda"),
        )


def _arrays_to_images(arr):
    """Numeric arrays -> uint8 images (N, C, H, W).

    (N, F) rows are flattened grey images (square when F is a perfect square, else a
    1-pixel-high strip), (N, H, W) grey images, (N, H, W, C) or (N, C, H, W) with
    C in {1, 3, 4}.  uint8 is taken as 0-255, floats within [0, 1] as intensities,
    anything else is min-max scaled per image.
    """
    if arr.ndim == 2:
        side = math.isqrt(arr.shape[1])
        shape = (side, side) if side * side == arr.shape[1] else (1, arr.shape[1])
        arr = arr.reshape(len(arr), 1, *shape)
    elif arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4:
        if arr.shape[-1] in (1, 3, 4) and arr.shape[1] not in (1, 3, 4):
            arr = np.moveaxis(arr, -1, 1)
    else:
        raise ValueError(f"ImageEncoder takes image arrays of 2 to 4 dimensions, got shape {arr.shape}")
    if arr.shape[1] == 4:
        arr = arr[:, :3]
    if arr.dtype == np.uint8:
        return arr
    arr = arr.astype(np.float64)
    if not (arr.min() >= 0 and arr.max() <= 1):
        lo = arr.min(axis=(1, 2, 3), keepdims=True)
        span = arr.max(axis=(1, 2, 3), keepdims=True) - lo
        arr = np.divide(arr - lo, span, out=np.full_like(arr, 0.5), where=span > 0)
    return np.round(arr * 255).astype(np.uint8)


def _resize_arrays(images, size):
    x = torch.from_numpy(np.ascontiguousarray(images)).float()
    if x.shape[-2:] != (size, size):
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.round().clamp_(0, 255).to(torch.uint8)


class TextEncoder(_BaseEncoder):
    """Turn texts into feature vectors with a registered backbone.

    Parameters
    ----------
    backbone : str, default="tfidf"
        A name in :data:`skmm.registry.text_encoders`: ``"tfidf"``, ``"hashing"``
        (scikit-learn vectorizers, optionally reduced to ``n_components`` with
        TruncatedSVD), ``"embedding-bag"``, ``"gru"``, ``"lstm"`` (token models with
        their own tokenizer and vocabulary learned in fit; trained end to end inside
        FusionClassifier), or a family-prefixed name such as ``"hf:<dir>"``.
    weights : str or None, default=None
        Weights for pretrained families.
    n_components : int or None, default=None
        Reduce vectorizer output to this many dimensions (TruncatedSVD).
    max_length : int, default=128
        Tokens kept per text (longer texts are truncated).
    dim : int, default=64
        Embedding / hidden size of the token models.
    trainable : "auto", bool or "last:<n>", default="auto"
        See :class:`ImageEncoder`.
    batch_size : int, default=256
        Texts per forward pass.
    device : str, default="auto"
        "auto", "cpu", "cuda" or "cuda:<n>".
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        See :class:`ImageEncoder`.
    cache : bool, default=True
        Reuse embeddings of texts already encoded with the same fitted state.
    cache_dir : str or None, default=None
        Keep the cache on disk here.
    random_state : int, RandomState or None, default=None
        Seeds SVD and randomly initialised weights.
    backbone_kwargs : dict or None, default=None
        Extra options for the backbone (e.g. ``{"analyzer": "char_wb",
        "ngram_range": (2, 4)}`` for tfidf).
    verbose : int, default=0
        Show a progress bar while encoding.

    Notes
    -----
    A 2-D input (several columns) makes one text per row from its non-missing
    cells joined by spaces; numbers are written as text.  Missing or empty texts
    encode as all-zero rows.

    Examples
    --------
    >>> from skmm import TextEncoder
    >>> TextEncoder("tfidf").fit_transform(["a red ball", "a blue box", "red box"]).shape
    (3, 5)
    """

    _registry = text_encoders

    def __init__(
        self,
        backbone="tfidf",
        *,
        weights=None,
        n_components=None,
        max_length=128,
        dim=64,
        trainable="auto",
        batch_size=256,
        device="auto",
        precision="auto",
        cache=True,
        cache_dir=None,
        random_state=None,
        backbone_kwargs=None,
        verbose=0,
    ):
        self.backbone = backbone
        self.weights = weights
        self.n_components = n_components
        self.max_length = max_length
        self.dim = dim
        self.trainable = trainable
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.cache = cache
        self.cache_dir = cache_dir
        self.random_state = random_state
        self.backbone_kwargs = backbone_kwargs
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # a missing cell is a missing text
        return tags

    def _read(self, X, reset):
        if isinstance(X, (str, bytes)):
            raise TypeError("TextEncoder takes a column of texts (list, Series, array), not a single string")
        if not isinstance(X, (list, tuple, pd.Series, pd.DataFrame, np.ndarray)) and hasattr(X, "__array__"):
            X = np.asarray(X)
        if sp.issparse(X) or (isinstance(X, np.ndarray) and X.dtype.kind in "biufc"):
            # Numbers are written as text; the usual array checks (sparse, complex,
            # infinite values, shape) still apply first.
            X = validate_data(self, X, reset=reset, ensure_all_finite="allow-nan", dtype=None)
        else:
            validate_data(self, X, skip_check_array=True, reset=reset)
        col = _column_of(X)
        if col is not None:
            values, index, column = col
        else:
            if isinstance(X, pd.DataFrame):
                values, index, column = X, list(X.index), None
            else:
                values, index, column = X, None, None
        texts, present = to_texts(values, column=column, index=index)
        _check_nonempty(len(texts), type(self).__name__)
        batch = _Batch("texts", texts, index, column)
        batch.present = np.asarray(present, dtype=bool)
        return batch

    def _build_backbone(self):
        kwargs = dict(self.backbone_kwargs or {})
        if self.weights is not None:
            kwargs["weights"] = self.weights
        family, spec = self._registry.split(self.backbone)
        factory = self._registry.get(self.backbone)
        return factory(
            spec, max_length=self.max_length, n_components=self.n_components, dim=self.dim,
            random_state=self.random_state, **kwargs,
        )

    def _fit_backbone(self, batch):
        self.backbone_.fit(batch.values)

    def _fingerprint(self):
        fp = self.backbone_.fingerprint()
        if not fp or "unseeded=" in fp:
            return None
        return f"text|{fp}"

    def _keys(self, batch):
        return [_cache.text_key(t) if ok else None for t, ok in zip(batch.values, batch.present)]

    def _iter_prepared(self, batch, positions):
        for start in range(0, len(positions), self.batch_size):
            idx = positions[start : start + self.batch_size]
            texts = [batch.values[i] for i in idx]
            yield start, self.backbone_.prepare(texts), batch.present[idx]
