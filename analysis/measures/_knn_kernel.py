"""One numba pass over a tile of squared distances, for `measures.gemm_knn`.

After the GEMM, numpy needed three passes over every entry of a tile (a comparison into a
mask, ``flatnonzero``, a gather) and a batched threshold update. This kernel reads the tile
once: per row, 64 entries at a time it counts those below the row's current k-th distance
(a loop LLVM vectorizes), and only in a chunk with some does it look at them one by one,
writing each one's sort key and lowering the row's threshold at once (a max-heap of the k
smallest values seen so far). It holds no GIL (``nogil``): `gemm_knn`'s worker threads run
it side by side. Compiled once into numba's on-disk cache (``cache=True``).
"""

from __future__ import annotations

import numba
import numpy as np

CHUNK = 64  # entries counted at once before any is looked at (one vectorized loop)
VALUE_SHIFT = 24  # a key: the row's 8 bits, the value's 32, the point's 24 (gemm_knn.POINT_BITS)
ROW_SHIFT = 32 + VALUE_SHIFT
POSITIVE = 0x80000000  # a non-negative float's bits with the sign bit set sort as it does


@numba.njit(cache=True, nogil=True)
def scan_tile(tile, bits, start, heap, filled, keys, count):  # pragma: no cover - compiled
    """Append the keys of the entries of `tile` that may be among their row's k nearest.

    Parameters
    ----------
    tile : float32, shape (B, W), C order: products, raw squared distances of the B queries
        to points ``start .. start + W - 1`` (points in increasing order across calls)
    bits : uint32, shape (B, W): `tile`'s bits (``tile.view(np.uint32)``)
    start : the first point's id
    heap : float32, shape (B, k): per row a max-heap of the k smallest raw values so far
        (its first ``filled[row]`` entries), updated in place
    filled : int64, shape (B,): how many of each row's heap are filled, updated in place
    keys : uint64, shape (at least count + B * W,): the keys written from `count` on
    count : keys already written

    Returns
    -------
    The keys written in all, `count` included. A row's first k entries are all kept; after
    that an entry is kept only if its value is below the row's k-th smallest so far (an
    equal one loses to k points with smaller ids). A key sorts as (row, distance, point),
    the distance clamped at 0 as FAISS clamps it (``|x|^2 + |y|^2 - 2 x.y`` below 0 is
    roundoff): every value up to 0 has the bits of +0.0.
    """
    rows, width = tile.shape
    k = heap.shape[1]
    for r in range(rows):
        row = tile[r]
        h = heap[r]
        prefix = np.uint64(r) << np.uint64(ROW_SHIFT)
        j = 0
        size = filled[r]
        while size < k and j < width:  # the row's first k entries: all kept, heap filled
            count = _keep(keys, count, prefix, row[j], bits[r, j], start + j)
            _push(h, size, row[j])
            size += 1
            j += 1
        filled[r] = size
        threshold = h[0]
        while j < width:
            stop = min(j + CHUNK, width)
            chunk = row[j:stop]
            hits = 0
            for i in range(stop - j):
                hits += chunk[i] < threshold
            if hits:
                for i in range(j, stop):
                    if row[i] < threshold:
                        count = _keep(keys, count, prefix, row[i], bits[r, i], start + i)
                        _replace_top(h, row[i])
                        threshold = h[0]
            j = stop
    return count


@numba.njit(cache=True, nogil=True, inline="always")
def _keep(keys, count, prefix, value, bits, point):  # pragma: no cover - compiled
    """Write one key at `count`; return count + 1."""
    clamped = np.uint64(bits) if value > 0 else np.uint64(0)  # -0.0 and below: +0.0
    keys[count] = (
        prefix | ((clamped | np.uint64(POSITIVE)) << np.uint64(VALUE_SHIFT)) | np.uint64(point)
    )
    return count + 1


@numba.njit(cache=True, nogil=True, inline="always")
def _push(heap, size, value):  # pragma: no cover - compiled
    """Add `value` to the max-heap in ``heap[:size]`` (it becomes ``heap[:size + 1]``)."""
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if heap[parent] >= value:
            break
        heap[i] = heap[parent]
        i = parent
    heap[i] = value


@numba.njit(cache=True, nogil=True, inline="always")
def _replace_top(heap, value):  # pragma: no cover - compiled
    """Replace the full max-heap's largest value by the smaller `value`."""
    size = len(heap)
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and heap[child + 1] > heap[child]:
            child += 1
        if heap[child] <= value:
            break
        heap[i] = heap[child]
        i = child
    heap[i] = value
