"""Loading a whole column of image paths, in this process or in DataLoader worker processes.

:func:`load_images` loads a column into one array; :func:`load_images_parallel`
streams batches through a :class:`torch.utils.data.DataLoader` so worker
processes can decode in parallel, in chunks of a few images so that one huge
file does not hold up a whole batch. Both apply the same ``on_error`` policy
and report every failure as an :class:`ImageLoadError` that names the row, the
column and the path.
"""

import inspect
import multiprocessing
import warnings

import numpy as np
import torch
from torch.utils.data import DataLoader

from ...utils.threads import available_cores
from ...utils.validation import check_int, check_on_error, is_int
from .dataset import Collate, ImageFolderDataset
from .errors import ImageLoadError, format_row
from .opening import DEFAULT_MAX_IMAGE_PIXELS
from .sampling import DECODE_CHUNK, ChunkSampler

__all__ = ["load_images", "load_images_parallel", "resolve_num_workers"]


# DataLoader(in_order=False) came with torch 2.6; with an older torch, batches come in row order.
_CAN_UNORDER = "in_order" in inspect.signature(DataLoader).parameters

# "auto" never starts more decoding processes than this: beyond four, decoding
# outpaces any CPU model and each worker only adds its memory.
_MAX_AUTO_WORKERS = 4


def resolve_num_workers(num_workers, n_items, batch_size):
    """The number of DataLoader worker processes to decode ``n_items`` images with.

    Parameters
    ----------
    num_workers : "auto" or int
        An int is returned as it is. ``"auto"`` means
        ``min(4, cores available to this process)``, except 0 (decode in
        this process) when only one core is available, when everything fits
        in one batch (starting the workers, about 0.1-0.3 s, costs more than
        a typical batch takes to decode), or when this process is itself a
        worker of a process pool (joblib, multiprocessing): the pool already
        uses the cores, and loky's workers cannot start DataLoader workers.
    n_items : int
        Images to load.
    batch_size : int
        Images per batch.

    Returns
    -------
    int

    Examples
    --------
    >>> from skmm.io.images import resolve_num_workers
    >>> resolve_num_workers(3, 1000, 64)
    3
    >>> resolve_num_workers("auto", 10, 64)
    0
    """
    if num_workers == "auto":
        cores = available_cores()
        if cores <= 1 or n_items <= batch_size or multiprocessing.parent_process() is not None:
            return 0
        return min(_MAX_AUTO_WORKERS, cores)
    if not is_int(num_workers) or num_workers < 0:
        raise ValueError(
            f"num_workers must be 'auto' or a non-negative integer, got {num_workers!r}."
        )
    return int(num_workers)


def _init_worker(worker_id):
    # Each decoding process is one of several sharing the cores with the model
    # in the main process; torch ops in Pillow-adjacent code (torch.stack,
    # from_numpy) must not each start a full intra-op thread pool.
    torch.set_num_threads(1)


def load_images_parallel(
    paths,
    image_size,
    *,
    num_workers=0,
    batch_size=64,
    on_error="raise",
    max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS,
    resize="pad",
    column=None,
    index=None,
    pin_memory=False,
    ordered=True,
):
    """Stream batches of loaded images, decoding in worker processes.

    Parameters
    ----------
    paths : sequence of str, os.PathLike or missing values
        One entry per row. Missing entries (see :func:`is_missing`) come back
        white and not present.
    image_size : int
        Side ``S`` of the square images.
    num_workers : "auto" or int, default=0
        Worker processes for the DataLoader; 0 loads in this process; "auto"
        picks a number from the cores available (see
        :func:`resolve_num_workers`). Order is kept either way. Workers
        decode chunks of at most 8 images (see Notes), together at most
        about two batches ahead of the consumer, so the decoded pixels alive
        at once do not grow with the number of paths.
    batch_size : int, default=64
        Rows per yielded batch.
    on_error : {"raise", "warn", "ignore"}, default="raise"
        What to do with a file that cannot be loaded. ``"raise"`` raises
        :class:`ImageLoadError` (a ValueError) for the first failing row in
        order (with ``ordered=False`` too: once every batch before it is
        decoded); ``"warn"`` marks it not present and, once the stream is
        exhausted, emits one UserWarning counting the failures and listing the
        first few; ``"ignore"`` marks it not present silently.
    max_image_pixels : int or None, default=DEFAULT_MAX_IMAGE_PIXELS
        See :func:`load_image`.
    resize : {"pad", "stretch", "crop"}, default="pad"
        See :func:`load_image`.
    column : str, optional
        Column name, used in error messages.
    index : sequence, optional
        Row labels (e.g. ``df.index``), used in error messages instead of
        positions.
    pin_memory : bool, default=False
        Put the batches in page-locked memory (faster, asynchronous copies to
        a CUDA device).
    ordered : bool, default=True
        Yield the batches in row order.  False yields each batch as soon as
        its pictures are decoded (``start`` says where it goes): with worker
        processes, the batch that holds a huge file then comes last instead
        of holding up every batch after it, and the consumer's model keeps
        running meanwhile.  The batches themselves (rows ``start`` to
        ``start + batch_size``) are the same either way.  (Needs torch 2.6 or
        later; with an older torch, and without workers, batches come in
        order.)

    Returns
    -------
    generator of (int, Tensor, Tensor)
        ``(start, pixels, present)`` per batch: the position of the batch's
        first row, a ``torch.uint8`` tensor ``(B, 3, S, S)`` and a
        ``torch.bool`` tensor ``(B,)``.

    Notes
    -----
    With worker processes, each batch is split into chunks of at most
    ``8`` images that the workers decode independently and that are joined
    again, in order, into batches of ``batch_size``.  Decoding time follows a
    file's pixel count, which its header tells cheaply, so each batch's rows
    are dealt to the workers largest first, each to the least loaded one: one
    slow file (a 100-MP PNG takes most of a second) has a worker to itself
    while the others decode the rest of the batch and the chunks after it.
    (The batch holding the slow file still cannot be ready before that file
    is; with ``ordered=False`` the batches after it are yielded first.)

    Raises
    ------
    ValueError
        Invalid options, raised at the call, before any file is read.
    TypeError
        An entry is neither missing nor a path; raised at the call.
    ImageLoadError
        Under ``on_error="raise"``, while iterating.

    Examples
    --------
    >>> from skmm.io.images import load_images_parallel
    >>> batches = load_images_parallel([None, None, None], 8, batch_size=2)
    >>> [(start, tuple(pixels.shape), present.tolist())
    ...  for start, pixels, present in batches]
    [(0, (2, 3, 8, 8), [False, False]), (2, (1, 3, 8, 8), [False])]
    """
    # Validate everything now: a generator body would only run at first next().
    check_on_error(on_error)
    batch_size = check_int("batch_size", batch_size)
    paths = list(paths)
    num_workers = resolve_num_workers(num_workers, len(paths), batch_size)
    dataset = ImageFolderDataset(
        paths,
        image_size,
        max_image_pixels=max_image_pixels,
        resize=resize,
        column=column,
        index=index,
    )
    return _stream(
        dataset, num_workers, int(batch_size), on_error, column, index, bool(pin_memory), bool(ordered)
    )


# How many failures the single on_error="warn" warning spells out.
_MAX_LISTED_FAILURES = 5


class _RowsDataset(torch.utils.data.Dataset):
    """The dataset as the loader's workers see it: each chunk's rows travel with its pictures.

    (The DataLoader's fetcher hands a chunk's indices to ``__getitems__`` and
    its result to the collate function.)
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitems__(self, rows):
        return list(rows), [self.dataset[i] for i in rows]


class _RowsCollate:
    """``(rows, items) -> (rows, pixels, present, errors)``."""

    def __init__(self, image_size):
        self.collate = Collate(image_size)

    def __call__(self, chunk):
        rows, items = chunk
        return (rows, *self.collate(items))


def _stream(dataset, num_workers, batch_size, on_error, column, index, pin_memory, ordered=True):
    n = len(dataset)
    ordered = ordered or not _CAN_UNORDER or num_workers == 0
    # In this process, chunks would only add overhead: decode whole batches.
    chunk = min(batch_size, DECODE_CHUNK) if num_workers > 0 else batch_size
    chunks_per_batch = -(-batch_size // chunk)
    workers = {}
    if num_workers > 0:
        workers = dict(
            worker_init_fn=_init_worker,
            # Chunks queued per worker: together about two batches (at least
            # two chunks each), which keeps the model fed, lets the other
            # workers run on while one decodes a huge file, and bounds the
            # decoded pixels alive at once.
            prefetch_factor=max(2, -(-2 * chunks_per_batch // num_workers)),
            # The workers live for this one pass over the paths and are reused
            # for all its batches; keeping them past it would need a loader
            # owned by the estimator (unpicklable, holding processes between
            # transforms), which costs more than the ~0.1 s a fork takes.
            persistent_workers=False,
        )
        if not ordered:
            # A chunk comes back as soon as a worker has decoded it, and the
            # next one goes to whichever worker has room.
            workers["in_order"] = False
    # In order, each batch's rows are dealt to the workers by decoding cost, so
    # the batch with a huge file is not late by much; out of order, plain runs
    # of rows: the batch with the huge file is simply yielded last.
    sampler = ChunkSampler(n, batch_size, chunk, num_workers, dataset.paths if ordered else None)
    loader = DataLoader(
        _RowsDataset(dataset),
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=_RowsCollate(dataset.image_size),
        # The loader draws its workers' base seed from this generator rather
        # than from torch's global RNG, so loading images (or skipping the
        # loading on a cache hit) never shifts the seeds of a model trained
        # afterwards.
        generator=torch.Generator().manual_seed(0),
        **workers,
    )
    pin_memory = pin_memory and torch.cuda.is_available()
    failures = []  # (position, ImageLoadError) under on_error="warn"
    failed = None  # under on_error="raise": (position, error) of the first failing row seen so far
    pending = {}  # first row of a batch -> its chunks so far: (rows, pixels, present, errors)
    done = set()  # first rows of the batches assembled
    before = 0  # every batch starting below this row is assembled
    # The loader's iterator lives only on this loop's stack, never in a local:
    # an exception (whose traceback keeps this frame) or close() frees it at
    # once, and with it its worker processes.
    for rows, pixels, present, errors in loader:
        if not rows:  # an empty chunk the sampler dealt to a worker with nothing left to decode
            continue
        # No chunk straddles two batches.
        start = min(rows) // batch_size * batch_size
        parts = pending.setdefault(start, ([], [], [], []))
        for part, value in zip(parts, (rows, [pixels], [present], errors)):
            part.extend(value)
        stop = min(start + batch_size, n)
        if len(parts[0]) < stop - start:
            continue
        del pending[start]
        rows, batch, batch_present, batch_errors = parts
        batch = batch[0] if len(batch) == 1 else torch.cat(batch)
        batch_present = batch_present[0] if len(batch_present) == 1 else torch.cat(batch_present)
        order = np.asarray(rows) - start
        if not np.array_equal(order, np.arange(stop - start)):
            # Rows were decoded out of order: put each back in its place.
            inverse = torch.as_tensor(np.argsort(order))
            batch, batch_present = batch[inverse], batch_present[inverse]
            batch_errors = [batch_errors[i] for i in inverse.tolist()]
        done.add(start)
        while before in done:
            before += batch_size
        # The on_error policy, row by row in order, whatever the chunking.
        for offset, reason in enumerate(batch_errors):
            if not reason:
                continue
            position = start + offset
            row = index[position] if index is not None else position
            error = ImageLoadError(dataset.paths[position], reason, row=row, column=column)
            if on_error == "raise":
                if failed is None or position < failed[0]:
                    failed = (position, error)
                break
            failures.append((position, error))
        if failed is not None:
            # The first failing row in order is raised once every batch before it is in.
            if failed[0] < before:
                raise failed[1]
            continue
        del pixels, present
        if pin_memory:
            batch = batch.pin_memory()
        yield start, batch, batch_present
        del batch, batch_present

    if failures and on_error == "warn":
        failures = [error for _, error in sorted(failures, key=lambda item: item[0])]
        listed = "; ".join(
            f"row {format_row(err.row)}: {err.path!r}: {err.reason}"
            for err in failures[:_MAX_LISTED_FAILURES]
        )
        more = len(failures) - _MAX_LISTED_FAILURES
        if more > 0:
            listed += f"; and {more} more"
        where = f" in column {column!r}" if column is not None else ""
        warnings.warn(
            # No total here: with the embedding cache, only the files not cached yet are read.
            f"{len(failures)} image{'s' if len(failures) != 1 else ''}{where} could not be "
            f"loaded and {'are' if len(failures) != 1 else 'is'} treated as missing: {listed}.",
            UserWarning,
            stacklevel=2,
        )


def load_images(
    paths,
    image_size,
    *,
    on_error="raise",
    max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS,
    resize="pad",
    column=None,
    index=None,
    num_workers=0,
):
    """Load a column of image paths into one array.

    Parameters
    ----------
    paths : sequence of str, os.PathLike or missing values
        One entry per row, e.g. ``df["image_path"]``. Missing entries (see
        :func:`is_missing`) come back white and not present.
    image_size : int
        Side ``S`` of the square images.
    on_error : {"raise", "warn", "ignore"}, default="raise"
        What to do with a file that cannot be loaded, see
        :func:`load_images_parallel`.
    max_image_pixels : int or None, default=DEFAULT_MAX_IMAGE_PIXELS
        See :func:`load_image`.
    resize : {"pad", "stretch", "crop"}, default="pad"
        See :func:`load_image`.
    column : str, optional
        Column name, used in error messages.
    index : sequence, optional
        Row labels (e.g. ``df.index``), used in error messages instead of
        positions.
    num_workers : int, default=0
        Worker processes used to decode; 0 loads in this process.

    Returns
    -------
    pixels : ndarray of shape (n_paths, 3, image_size, image_size), dtype uint8
        The images, channels first, RGB; white where not present.
    present : ndarray of shape (n_paths,), dtype bool
        Whether each image was loaded.

    Raises
    ------
    ImageLoadError
        Under ``on_error="raise"``, for the first row that fails; the message
        names the row, the column and the path. It is a ValueError.
    TypeError
        An entry is neither missing nor a path.
    ValueError
        An invalid option.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> from PIL import Image
    >>> from skmm.io.images import load_images
    >>> path = os.path.join(tempfile.mkdtemp(), "blue.png")
    >>> Image.new("RGB", (10, 10), "blue").save(path)
    >>> df = pd.DataFrame({"image_path": [path, None]}, index=["a", "b"])
    >>> pixels, present = load_images(df["image_path"], 4, column="image_path",
    ...                               index=df.index)
    >>> pixels.shape, present.tolist()
    ((2, 3, 4, 4), [True, False])
    """
    paths = list(paths)
    stream = load_images_parallel(
        paths,
        image_size,
        num_workers=num_workers,
        on_error=on_error,
        max_image_pixels=max_image_pixels,
        resize=resize,
        column=column,
        index=index,
    )
    size = int(image_size)
    pixels = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    present = np.zeros(len(paths), dtype=bool)
    for start, batch_pixels, batch_present in stream:
        stop = start + len(batch_present)
        pixels[start:stop] = batch_pixels.numpy()
        present[start:stop] = batch_present.numpy()
    return pixels, present
