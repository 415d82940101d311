"""Which rows each DataLoader worker decodes: batches cut into chunks, dealt by decoding cost."""

import numpy as np

from ...utils.validation import is_missing
from .errors import ImageLoadError
from .opening import open_image

__all__ = ["DECODE_CHUNK", "FILE_COST", "ChunkSampler", "decode_cost"]

# Images per DataLoader item when workers decode: small enough that one huge
# file holds up few others and every worker gets a share of each batch, large
# enough that the per-item inter-process overhead stays negligible.
DECODE_CHUNK = 8


# Decoding time is close to proportional to a file's pixels (on clipart the
# correlation is 0.999); this is what a file costs on top of its pixels
# (opening, the output resize), so many tiny files are dealt out evenly too.
FILE_COST = 50_000


def decode_cost(path):
    """Pixels in the file's header (a cheap, lazy open), plus a per-file constant."""
    if is_missing(path):
        return 0
    try:
        with open_image(path, None) as img:
            return img.width * img.height + FILE_COST
    except (ImageLoadError, TypeError, ValueError, OSError):
        return FILE_COST  # refused in a moment by the worker, without decoding


class ChunkSampler:
    """Index lists for the DataLoader: each batch of ``batch_size`` rows cut into chunks.

    No chunk straddles two batches, so every batch is a whole number of chunks.

    With ``paths`` and two or more workers, each batch's rows are dealt to the
    workers by decoding cost (the pixels in each file's header, read here in
    the main process just before the batch is handed out): largest first, each
    to the least loaded worker.  The DataLoader gives its ``k``-th chunk to
    worker ``k % num_workers``, so every worker gets the same number of chunks
    per batch (some may be empty) and they are yielded in worker order.  One
    100-megapixel file then has a worker to itself while the others decode the
    rest of the batch, instead of also waiting behind it.  Rows inside a
    batch come back in the order yielded, with their positions; the consumer
    puts every row back in its place.
    """

    def __init__(self, n, batch_size, chunk, num_workers=0, paths=None):
        self.n, self.batch_size, self.chunk = n, batch_size, chunk
        self.num_workers = num_workers
        self.paths = paths if num_workers > 1 else None

    def _per_worker(self, rows):
        return -(-rows // (self.num_workers * self.chunk))

    def __len__(self):
        total = 0
        for start in range(0, self.n, self.batch_size):
            rows = min(self.batch_size, self.n - start)
            if self.paths is None:
                total += -(-rows // self.chunk)
            else:
                total += self._per_worker(rows) * self.num_workers
        return total

    def _chunks(self, start, stop):
        if self.paths is None:
            return [list(range(first, min(first + self.chunk, stop))) for first in range(start, stop, self.chunk)]
        workers = self.num_workers
        costs = {i: decode_cost(self.paths[i]) for i in range(start, stop)}
        loads, dealt = [0] * workers, [[] for _ in range(workers)]
        for i in sorted(costs, key=lambda i: (-costs[i], i)):
            w = loads.index(min(loads))
            dealt[w].append(i)
            loads[w] += costs[i]
        k = self._per_worker(stop - start)
        pieces = [[part.tolist() for part in np.array_split(np.sort(rows).astype(int), k)] for rows in dealt]
        return [pieces[w][j] for j in range(k) for w in range(workers)]

    def __iter__(self):
        for start in range(0, self.n, self.batch_size):
            yield from self._chunks(start, min(start + self.batch_size, self.n))

