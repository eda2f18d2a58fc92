"""The numba passes of `measures.gemm_knn` over each tile of squared distances.

After the GEMM, numpy needed three passes over every entry of a tile (a comparison into a
mask, ``flatnonzero``, a gather) and a batched threshold update. `scan_tile` reads the tile
once: per row, 64 entries at a time it counts those below the row's current k-th distance
(a loop LLVM vectorizes), and only in a chunk with some does it look at them one by one,
writing each one's sort key and lowering the row's threshold at once (a max-heap of the k
smallest values seen so far). `first_tile` writes the first tile's candidates, `final_keys`
drops the keys above their row's final k-th before the sort. They hold no GIL (``nogil``):
`gemm_knn`'s worker threads run them side by side. Compiled once into numba's on-disk cache
(``cache=True``, next to this file; ``make install`` compiles them): the first call of a
process loads numba and the cache (0.5-0.7 s measured; 1.1 s when it compiles them).
"""

from __future__ import annotations

import numba
import numpy as np

CHUNK = 64  # entries counted at once before any is looked at (one vectorized loop)
VALUE_SHIFT = 24  # a key: the row's 8 bits, the value's 32, the point's 24 (gemm_knn.POINT_BITS)
ROW_SHIFT = 32 + VALUE_SHIFT
POSITIVE = 0x80000000  # a non-negative float's bits with the sign bit set sort as it does


@numba.njit(cache=True, nogil=True)
def first_tile(tile, bits, bounds, keys):  # pragma: no cover - compiled
    """Write the keys of the first tile's entries at most their row's bound.

    Parameters
    ----------
    tile : float32, shape (B, W), C order: raw squared distances of the B queries to
        points ``0 .. W - 1``
    bits : uint32, shape (B, W): `tile`'s bits (``tile.view(np.uint32)``)
    bounds : float32, shape (B,): the row's k-th smallest value of the tile, or 0 where that
        is below 0 (FAISS clamps those to 0: they tie, and the smaller ids win)
    keys : uint64, shape (at least B * W,)

    Returns
    -------
    The keys written.
    """
    rows, width = tile.shape
    count = 0
    for r in range(rows):
        row = tile[r]
        bound = bounds[r]
        prefix = np.uint64(r) << np.uint64(ROW_SHIFT)
        for i in range(width):
            if row[i] <= bound:
                count = _keep(keys, count, prefix, row[i], bits[r, i], i)
    return count


@numba.njit(cache=True, nogil=True)
def scan_tile(tile, bits, start, heap, keys, count):  # pragma: no cover - compiled
    """Append the keys of a later tile's entries below their row's running k-th value.

    Parameters
    ----------
    tile : float32, shape (B, W), C order: raw squared distances of the B queries to points
        ``start .. start + W - 1`` (after `first_tile`, the points in increasing order)
    bits : uint32, shape (B, W): `tile`'s bits
    start : the first point's id
    heap : float32, shape (B, k): per row a max-heap of the k smallest raw values so far,
        lowered in place by every entry kept
    keys : uint64, shape (at least count + B * W,): written from `count` on
    count : keys already written

    Returns
    -------
    The keys written in all, `count` included. An entry is kept only if it is below the
    row's k-th smallest value so far: an equal one loses to k points with smaller ids.
    """
    rows, width = tile.shape
    for r in range(rows):
        row = tile[r]
        h = heap[r]
        prefix = np.uint64(r) << np.uint64(ROW_SHIFT)
        threshold = h[0]
        for j in range(0, width, CHUNK):
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
    return count


@numba.njit(cache=True, nogil=True)
def final_keys(keys, bounds):  # pragma: no cover - compiled
    """Keep, in place and in order, the keys at most their row's bound (uint64, shape (B,):
    the key of its final k-th value clamped at 0, with the largest point id): the only ones
    that can be among its k nearest. Returns how many."""
    count = 0
    for i in range(len(keys)):
        if keys[i] <= bounds[keys[i] >> np.uint64(ROW_SHIFT)]:
            keys[count] = keys[i]
            count += 1
    return count


@numba.njit(cache=True, nogil=True, inline="always")
def _keep(keys, count, prefix, value, bits, point):  # pragma: no cover - compiled
    """Write one key at `count`; return count + 1."""
    keys[count] = _key(prefix, value, bits, point)
    return count + 1


@numba.njit(cache=True, nogil=True, inline="always")
def _key(prefix, value, bits, point):  # pragma: no cover - compiled
    """(row prefix, value clamped at 0, point) as one key: a value above 0 as its `bits`,
    any other as +0.0's, with the sign bit set (non-negative floats sort as their bits)."""
    clamped = np.uint64(bits) if value > 0 else np.uint64(0)
    return prefix | ((clamped | np.uint64(POSITIVE)) << np.uint64(VALUE_SHIFT)) | np.uint64(point)


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
