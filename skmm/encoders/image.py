"""ImageEncoder: image files (or image arrays) to feature vectors, through a registered backbone."""

import math

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import cache as _cache
from ..backbones import Normalize
from ..backbones.onnx import check_backend
from ..io.images import DEFAULT_MAX_IMAGE_PIXELS, load_images_parallel, resolve_num_workers
from ..io.images.decode import RESIZE_MODES
from ..io.images.sampling import DECODE_CHUNK
from ..registry import image_backbones
from ..utils.optional import import_optional
from ..utils.seeding import seeded
from ..utils.validation import check_int, check_on_error, check_option
from .augmentation import ImageAugmentation, check_augment, require_vision, view_seed, vision_available
from .base import BaseEncoder, Batch, check_nonempty, column_of, is_path_like_array
from .streaming import LazyImages, check_paths

__all__ = ["DECODE_UPFRONT_MAX_BYTES", "ImageEncoder"]

#: With ``decode="auto"``, training pictures are decoded per batch when all of them would take more bytes.
DECODE_UPFRONT_MAX_BYTES = 1 << 30
# ImageEncoder(batch_size="auto") on the CPU and on a GPU (see its docstring)
CPU_BATCH_SIZE = 8
GPU_BATCH_SIZE = 64


class ImageEncoder(BaseEncoder):
    """Turn image files (or image arrays) into feature vectors with a registered backbone.

    Parameters
    ----------
    backbone : str, default="cnn"
        A name in :data:`skmm.registry.image_backbones`: ``"cnn"`` (a small CNN,
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
    augment : {"auto", "none", "light", "strong", "photometric"}, callable or None, default="auto"
        Train-time augmentation inside FusionClassifier.  A trainable branch:
        each training batch's pictures get their own random transform as the
        batch is drawn, so every epoch sees new versions of them (validation
        rows and predictions never do).  "light" is a random resized crop
        (60-100% of the area), a horizontal flip and a small colour jitter;
        "strong" crops down to 35% and jitters more; "photometric" changes
        colour, tone and sharpness only (colour jitter, greyscale, blur,
        solarize, invert; see :mod:`skmm.encoders.augmentation`);
        "light+photometric" and "strong+photometric" apply both; a callable
        (e.g. a ``torchvision.transforms.v2`` transform) maps one uint8 image
        tensor (3, S, S) to one of the same shape.  A frozen encoder: its
        features are computed once, so the classifier also encodes one
        transformed view of each training picture, once (cached), and trains
        on a mix of plain and viewed rows (:mod:`skmm.estimators.views`; not
        with ``validation_fraction``).  "auto" is "light+photometric" for a
        backbone trained from scratch (randomly initialised), "photometric"
        views for a frozen network (not for ``pixels``, which has none), when
        torchvision is installed, and off otherwise; "none" and None are off.
        On a few hundred rows at FusionClassifier's default 20 epochs an
        augmented CNN from scratch underfits: robust to recoloured pictures,
        but it learns little from them (an image-only model needs "none" or
        more epochs; BENCHMARKS.md, accuracy-scratch).
        Standalone ``transform`` never augments.  The presets need
        torchvision (``pip install "skmm[vision]"``).  The transforms of a
        trainable branch run in ``num_workers`` worker processes of the
        training loader (in the training process when 0); all draw from
        torch's RNG, which the classifier seeds from its ``random_state``.
    decode : {"auto", "upfront", "per_batch"}, default="auto"
        How a trainable branch inside FusionClassifier reads its training
        pictures.  "upfront" decodes them all before training and keeps the
        pixels (``3 * S * S`` bytes a row, cached, so a search decodes each
        file once); "per_batch" decodes each batch's pictures in
        ``num_workers`` loader workers as training draws it, every epoch, so
        the memory of a fit stays flat however many rows it has (each file's
        header is still opened first, so a missing or unreadable file fails
        before training; a file damaged past its header fails during it);
        "auto" is "per_batch" when the training pixels would take more than
        1 GiB (``DECODE_UPFRONT_MAX_BYTES``).  Prediction and standalone
        ``transform`` stream batches either way.
    batch_size : "auto" or int, default="auto"
        Images per forward pass of a frozen network.  "auto" is 8 on the
        CPU (``CPU_BATCH_SIZE``; a convolutional network's activations for a
        few 224 px pictures stay in the CPU's caches: EfficientNet-Lite0 and
        ResNet-18 ran 1.5-1.9x faster in batches of 8 than of 64 on this
        project's machine, a ViT as fast) and 64 on a GPU
        (``GPU_BATCH_SIZE``).  With decoding workers, each batch goes through
        the network as soon as its pictures are decoded, in whatever order
        that is.
    num_workers : "auto" or int, default="auto"
        DataLoader worker processes decoding and resizing images while the
        model runs; 0 decodes in this process, as do inputs of at most 8
        images whatever the setting (one prediction request).  "auto" is
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
    backend : {"torch", "onnxruntime"}, default="torch"
        What runs a frozen backbone: PyTorch, or ONNX Runtime's CPU kernels
        (float32 on the CPU only; ``pip install "skmm[onnx]"``).  With
        "onnxruntime" the module is exported once per fingerprint (in fit, or on
        load), kept for the process and, with ``cache_dir``, on disk; its
        features agree with PyTorch's to a cosine above 0.9999 (the two share
        cache entries).  A trainable backbone inside FusionClassifier always
        trains and predicts with PyTorch.  See docs/encoders.md for measurements.
    on_error : {"raise", "warn", "ignore"} or None, default=None
        What a missing, unreadable or oversized file does: stop with an error
        naming the row, the column and the path, or count as a missing image
        ("warn" says how many and which).  None means "raise" on its own, and
        the classifier's ``on_error`` inside a FusionClassifier.
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

    Notes
    -----
    A DataFrame (or 2-D array) of several image-path columns gives one
    feature block per column, from one backbone: the columns of a wide table
    need one ImageEncoder in a ColumnTransformer, and ``get_feature_names_out``
    names each block ``<column>_imageencoder<i>``.

    Examples
    --------
    >>> from skmm import ImageEncoder
    >>> from skmm.datasets import make_shapes
    >>> df = make_shapes(8, random_state=0)
    >>> ImageEncoder("pixels", image_size=8).fit_transform(df["image_path"]).shape
    (8, 192)
    """

    _registry = image_backbones

    def __init__(
        self,
        backbone="cnn",
        *,
        weights=None,
        image_size=None,
        resize="pad",
        trainable="auto",
        augment="auto",
        decode="auto",
        batch_size="auto",
        num_workers="auto",
        device="auto",
        precision="auto",
        backend="torch",
        on_error=None,
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
        self.augment = augment
        self.decode = decode
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.device = device
        self.precision = precision
        self.backend = backend
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
        if self.batch_size != "auto":
            check_int("batch_size", self.batch_size)
        resolve_num_workers(self.num_workers, 0, 1)  # a ValueError for anything but "auto" or an int >= 0
        check_int("image_size", self.image_size, allow_none=True)
        check_option("resize", self.resize, RESIZE_MODES)
        check_option("decode", self.decode, ("auto", "upfront", "per_batch"))
        check_int("max_image_pixels", self.max_image_pixels, allow_none=True)
        check_on_error(self.on_error, allow_none=True)
        check_augment(self.augment)
        if check_backend(self.backend, ("torch", "onnxruntime")) != "torch":
            import_optional("onnxruntime", "onnx", what=f"ImageEncoder(backend={self.backend!r})")

    def _branch_augmentation(self, trainable):
        augment = self.augment
        if augment == "auto":
            if trainable:
                # photometric changes too: a picture recoloured or redrawn at prediction time should not throw
                # the branch (shapes from scratch, pictures shifted: 1.000 against 0.442; BENCHMARKS.md)
                augment = "light+photometric" if self.backbone_.trainable and vision_available() else None
            else:  # a frozen network: extra training views, encoded once (skmm.estimators.views); not raw pixels
                module = self.backbone_.module
                network = module is not None and any(True for _ in module.parameters())
                augment = "photometric" if network and vision_available() else None
        if augment is None or augment == "none":
            return None
        if isinstance(augment, str):
            require_vision(augment)  # before any image is decoded or any training starts
        if not trainable:
            return ImageAugmentation(augment, image_size=self.backbone_.image_size)
        # the training loader's workers: the decoding workers' rule, for a loader that runs every epoch
        workers = resolve_num_workers(self.num_workers, 2**31, 1)
        return ImageAugmentation(augment, image_size=self.backbone_.image_size, num_workers=workers)

    def augmented_features(self, X, augmentation, *, seed=0):
        """Frozen features of randomly transformed copies of the pictures in ``X``.

        Each picture is decoded, transformed once by ``augmentation`` (an
        :class:`~skmm.encoders.augmentation.ImageAugmentation`) and encoded; the
        features of files are cached like the plain ones, under the transform
        and ``seed``.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out)
            Zeros where a picture is missing.
        present : ndarray of bool
            True where the row has a picture.
        """
        check_is_fitted(self)
        batch = self._read(X, reset=False)
        # each picture's view is drawn from a seed of its own (its file's identity), so it is the same whichever
        # rows came with it: a view computed in one fold of a search and read from the cache in another, or
        # computed again with the cache off, is one and the same
        ids = self._keys(batch)
        keys = ids if self.cache else None
        fingerprint = self.fingerprint() if keys is not None else None

        def compute(positions):
            positions = np.asarray(positions)
            out = np.full((len(positions), self._n_features_out), np.nan, dtype=np.float32)
            with seeded(seed):
                for start, pixels, ok in self._iter_prepared(batch, positions):
                    ok = np.asarray(ok, dtype=bool)
                    rows = positions[start : start + len(ok)]
                    seeds = [view_seed(seed, ids[r] if ids is not None else r) for r in rows]
                    feats = self._forward(augmentation(torch.as_tensor(np.asarray(pixels)), ok, seeds=seeds))
                    feats[~ok] = np.nan
                    out[start : start + len(ok)] = feats
            return out

        if fingerprint is None or not isinstance(augmentation.transform, str):
            features = compute(np.arange(batch.n))
        else:
            fingerprint = f"{fingerprint}|augmented={augmentation.transform}|seed={seed}|per-picture"
            features = np.array(_cache.get_cache(self.cache_dir).get_or_compute(fingerprint, keys, compute),
                                dtype=np.float32, copy=True)
        present = ~np.isnan(features).any(axis=1) if features.size else np.ones(batch.n, bool)
        features[~present] = 0.0
        return features, present

    @property
    def on_error_(self):
        """The policy in force: ``on_error``, or "raise" when it is None."""
        return self.on_error or "raise"

    def _read(self, X, reset):
        if is_path_like_array(X):
            validate_data(self, X, skip_check_array=True, reset=reset)
            col = column_of(X)
            if col is not None:
                values, index, column = col
            else:
                values, index, column = list(np.asarray(X, dtype=object).ravel()), None, None
            check_nonempty(len(values), type(self).__name__)
            return Batch("paths", values, index, column)
        if isinstance(X, pd.DataFrame) and any(X[c].dtype.kind in "OSU" or str(X[c].dtype) == "string" for c in X):
            raise ValueError(
                f"ImageEncoder takes one column of image paths, got a DataFrame with columns {list(X.columns)}; "
                "select one column (in a ColumnTransformer, name it as a string, not a list)"
            )
        arr = validate_data(self, X, reset=reset, allow_nd=True, dtype=None, ensure_min_samples=1)
        if arr.dtype.kind not in "biuf":
            arr = validate_data(self, X, reset=False, allow_nd=True, dtype=np.float64)
        return Batch("arrays", _arrays_to_images(arr))

    def _build_backbone(self):
        kwargs = dict(self.backbone_kwargs or {})
        family, spec = self._registry.split(self.backbone)
        factory = self._registry.get(self.backbone)
        return factory(spec, image_size=self.image_size, random_state=self.random_state, weights=self.weights, **kwargs)

    def _wrap_module(self, module):
        return torch.nn.Sequential(Normalize(self.backbone_.mean, self.backbone_.std), module)

    def _unwrap_module(self, module):
        return module[1]

    def _export_module(self):
        """The module and one uint8 image of the backbone's size (for exporting it to another backend)."""
        size = self.backbone_.image_size
        return self._module, torch.full((1, 3, size, size), 255, dtype=torch.uint8), None, None

    def _fingerprint_parts(self, fp):
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
            # uint8 rows (a quarter of float32's bytes); a missing or failed image is not
            # stored, so it is tried again next time
            rows = np.zeros((len(positions), 3 * size * size), dtype=np.uint8)
            present = np.zeros(len(positions), dtype=bool)
            for start, pixels, ok in self._iter_prepared(batch, np.asarray(positions)):
                ok = np.asarray(ok, dtype=bool)
                rows[start : start + len(ok)] = np.asarray(pixels).reshape(len(ok), -1)
                present[start : start + len(ok)] = ok
            return rows, present

        flat, present = _cache.get_cache(self.cache_dir).get_or_compute(
            fingerprint, keys, compute, dtype="uint8", return_present=True
        )
        flat = np.array(flat, dtype=np.uint8, copy=True)
        flat[~present] = 255
        return flat.reshape(batch.n, 3, size, size), present

    def training_inputs(self, X):
        """Inputs a trainable branch trains on: :meth:`prepare`'s, or pictures decoded per batch.

        With ``decode="per_batch"`` (or "auto" over ``DECODE_UPFRONT_MAX_BYTES``)
        a column of paths gives a :class:`~skmm.encoders.streaming.LazyImages`
        the training loader decodes batch by batch, and the rows whose file
        header opened.
        """
        check_is_fitted(self)
        batch = self._read(X, reset=False)
        size = self.backbone_.image_size
        per_batch = self.decode == "per_batch" or (
            self.decode == "auto" and batch.n * 3 * size * size > DECODE_UPFRONT_MAX_BYTES
        )
        if batch.kind != "paths" or not per_batch:
            return self._prepare_batch(batch)
        present = check_paths(batch.values, index=batch.index, column=batch.column,
                              max_image_pixels=self.max_image_pixels, on_error=self.on_error_)
        images = LazyImages(batch.values, size, resize=self.resize, max_image_pixels=self.max_image_pixels,
                            on_error=self.on_error_, index=batch.index, column=batch.column,
                            num_workers=resolve_num_workers(self.num_workers, 2**31, 1))
        return images, present

    def _rows_per_forward(self):
        """Images per forward pass: ``batch_size``, or what "auto" means on this encoder's device."""
        if self.batch_size != "auto":
            return int(self.batch_size)
        return CPU_BATCH_SIZE if str(getattr(self, "device_", "cpu")) == "cpu" else GPU_BATCH_SIZE

    def _iter_prepared(self, batch, positions):
        size, batch_size = self.backbone_.image_size, self._rows_per_forward()
        if batch.kind == "arrays":
            for start in range(0, len(positions), batch_size):
                idx = positions[start : start + batch_size]
                pix = _resize_arrays(batch.values[idx], size)
                yield start, pix, np.ones(len(idx), dtype=bool)
            return
        paths = [batch.values[i] for i in positions]
        index = [batch.index[i] for i in positions]
        # A few rows (one request of a web service) are one decoding chunk: a worker
        # would decode them alone, after a start that costs more than the decoding.
        workers = 0 if len(paths) <= DECODE_CHUNK else self.num_workers
        yield from load_images_parallel(
            paths,
            size,
            num_workers=workers,
            batch_size=batch_size,
            on_error=self.on_error_,
            max_image_pixels=self.max_image_pixels,
            resize=self.resize,
            column=batch.column,
            index=index,
            pin_memory=str(self.device_).startswith("cuda"),
            # every consumer puts a batch in its place: the model runs on the batches decoded while a huge
            # file still decodes (256 clipart pictures, batches of 64: 6.6 s against 7.1 s in order;
            # BENCHMARKS.md, onnx)
            ordered=False,
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
