"""Exact L2 k nearest neighbours by blocks of matrix products, FAISS's results faster.

FAISS's flat index multiplies blocks of queries by blocks of points, turns every product
into a distance in one single-threaded pass and offers each distance to a heap per query.
At small dimension (64 after PCA) those passes, not the product, take most of the time: the
k-NN after PCA took 3.01 x its GEMM limit (issue #28). Here a block of queries multiplies
a tile of the points in one GEMM with the squared norms folded in as two extra columns (the
product *is* the squared distance), keeps the entries below each query's running k-th
distance (one comparison and a ``flatnonzero`` over the tile) and sorts those few by
(query, distance, point) packed into one 64-bit key. Blocks of queries run on worker
threads, each with a one-thread BLAS.

The result is FAISS's: the k smallest squared distances by the same formula
(``|x|^2 + |y|^2 - 2 x.y``, clamped at 0), ascending, a tie going to the smaller point id
(FAISS's max-heap evicts the larger id of a tie and refuses an equal distance that comes
later). Only a distance's last bits, which depend on the BLAS that sums the products, may
differ from FAISS's own (it links another BLAS). Cosine stays with FAISS: its min-heap keeps
a tie's larger ids when a nearer point evicts one, an order no sort reproduces.

Measured (benchmarks/analytics.py --only knn; 50,000 points, k=30, leave-one-out, on a
2-core VM shared with other work): after PCA to 64, 1.52 and 1.89 x the GEMM limit in two
runs (goal 1.5, not reliably met; FAISS's flat index 3.22 and 3.09 x, so 2.1 and 1.6 x
faster); raw 256-D, 1.20 and 1.16 x (FAISS 1.32 and 1.64 x). What bounds it, on one
thread: a block costs 1.33-1.37 x its GEMMs alone, the comparison (0.3 ns an entry) and the
flatnonzero (0.2 ns) against the product's 1.8 ns at D=64; the PCA adds 0.07-0.18 x.

References
----------
Johnson, Douze and Jegou 2019, "Billion-scale similarity search with GPUs" (FAISS): the
blocked GEMM search with the norms expansion; the running threshold is the k-selection of
their GPU kernels, here as a comparison against each query's current k-th distance.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

BLOCK = 256  # queries per block: a query's row fills the key's top 8 bits
POINT_BITS = 24  # a point's id fills the key's low 24 bits
MAX_POINTS = 1 << POINT_BITS  # 16,777,216 points at most
FIRST_TILE = 512  # points of the first tile: its k-th distance starts the threshold
TILE = 4096  # points per later tile at most (doubling from the first; FAISS: 1,024)
_LOW32 = np.uint64(0xFFFFFFFF)


def gemm_knn(
    queries: np.ndarray,
    points: np.ndarray,
    k: int,
    *,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The `k` nearest points (L2) of every query by blocked GEMM: ``IndexFlatL2.search``'s.

    Parameters
    ----------
    queries : float32, shape (Q, D)
    points : float32, shape (N, D), fewer than 2**24 rows
    k : neighbours per query, 1 <= k <= N
    workers : threads over blocks of 256 queries; None: the CPUs this process may use.
        While it runs, every BLAS of the process is held to one thread (threadpoolctl)

    Returns
    -------
    squared : float32, shape (Q, k), squared L2 distances ascending (lower = nearer)
    indices : int64, shape (Q, k), rows of `points`; among equal distances the smaller row
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    points = np.ascontiguousarray(points, dtype=np.float32)
    if queries.ndim != 2 or points.ndim != 2 or queries.shape[1] != points.shape[1]:
        raise ValueError(
            f"queries and points must be 2-D with as many columns, got {queries.shape} "
            f"and {points.shape}"
        )
    n = len(points)
    if not 1 <= n < MAX_POINTS:
        raise ValueError(f"points must have between 1 and {MAX_POINTS - 1:,} rows, got {n:,}")
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and {n} (the points)")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1 or None, got {workers}")
    lhs, rhs = _augment(queries, points)
    values = np.empty((len(queries), k), np.float32)
    ids = np.empty((len(queries), k), np.int64)

    def run(start: int) -> None:
        stop = min(start + BLOCK, len(queries))
        values[start:stop], ids[start:stop] = _search_block(lhs[start:stop], rhs, k)

    from threadpoolctl import threadpool_limits  # scikit-learn's dependency

    starts = range(0, len(queries), BLOCK)
    threads = min(len(starts), workers or _usable_cpus())
    # one BLAS thread per worker: a threaded BLAS on these thin products runs 3-6 x slower
    with threadpool_limits(limits=1, user_api="blas"):
        if threads == 1:
            for start in starts:
                run(start)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(run, starts))  # list(): a worker's exception is raised here
    return values, ids


def _usable_cpus() -> int:
    """The CPUs this process may run on (all of them where the OS does not say)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _augment(queries: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left (Q, D+2) and right (D+2, N) factors whose product is the squared distance
    ``|x|^2 + |y|^2 - 2 x.y``: the norms as two extra columns (-2y is exact)."""
    d = queries.shape[1]
    lhs = np.empty((len(queries), d + 2), np.float32)
    lhs[:, :d] = queries
    lhs[:, d] = np.einsum("ij,ij->i", queries, queries)
    lhs[:, d + 1] = 1
    rhs = np.empty((d + 2, len(points)), np.float32)
    rhs[:d] = -2 * points.T
    rhs[d] = 1
    rhs[d + 1] = np.einsum("ij,ij->i", points, points)
    return lhs, rhs


def _search_block(lhs: np.ndarray, rhs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One block of at most 256 queries against every point: (values, ids), shape (B, k).

    The first tile's k-th value per row starts a threshold; a later tile keeps what is below
    it (an equal distance loses: its point id is larger than every id kept so far), and the
    k smallest of the row's kept values lower it. Every kept entry is a candidate; the k best
    of those by (distance, id) are the answer (any other point has k candidates before it).
    Thresholds are on the products; FAISS's clamp at 0 (a tie among all values below 0) is
    applied where it changes the answer: to the first tile's threshold and to the candidates.
    """
    rows, n = len(lhs), rhs.shape[1]
    size = rows * max(FIRST_TILE, k, TILE)
    buffer, below = np.empty(size, np.float32), np.empty(size, bool)  # reused: no page faults
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (row, id, raw value)
    best = threshold = None  # the row's k smallest raw values so far, and the largest of them
    pending: list[tuple[np.ndarray, np.ndarray]] = []  # (row, value) not yet in `best`
    start, width = 0, min(n, max(FIRST_TILE, k))
    while start < n:
        width = min(width, n - start)
        tile = buffer[: rows * width].reshape(rows, width)
        mask = below[: rows * width].reshape(rows, width)
        np.matmul(lhs, rhs[:, start : start + width], out=tile)
        if best is None:  # every value up to the k-th, clamped: below 0 all tie at 0
            best = np.partition(tile, k - 1, axis=1)[:, :k]
            threshold = best.max(axis=1, keepdims=True)
            np.less_equal(tile, np.maximum(threshold, 0), out=mask)
        else:
            np.less(tile, threshold, out=mask)
        flat = np.flatnonzero(mask)
        row, value = flat // width, tile.ravel()[flat]
        found.append((row, flat % width + start, value))
        if start:  # lower the thresholds once the tiles since the last time found k/2 a row
            pending.append((row, value))
            if sum(len(r) for r, _ in pending) >= max(1, rows * k // 2):
                _lower(
                    best,
                    threshold,
                    *(np.concatenate(parts) for parts in zip(*pending, strict=True)),
                )
                pending = []
        start, width = start + width, min(TILE, 2 * (start + width))
    row, ids, value = (np.concatenate(parts) for parts in zip(*found, strict=True))
    value = np.maximum(value, 0) + np.float32(0)  # FAISS's clamp ("roundoff"); -0.0 -> 0.0
    keep = value <= np.maximum(threshold[row, 0], 0)
    keys = _pack(value[keep], row[keep], ids[keep])
    keys.sort()
    values, ids = _unpack(_first_k(keys, rows, k))
    return values.reshape(rows, k), ids.reshape(rows, k)


def _lower(best: np.ndarray, threshold: np.ndarray, row: np.ndarray, value: np.ndarray) -> None:
    """In place, each row's k smallest of its `best` (rows, k) and its new values, and their
    largest, `threshold` (rows, 1): only the rows with new values."""
    k = best.shape[1]
    order = np.argsort(row.astype(np.int16), kind="stable")  # a radix sort
    row, value = row[order], value[order]
    new_row = np.empty(len(row), bool)
    new_row[0], new_row[1:] = True, row[1:] != row[:-1]
    hit, slot = row[new_row], np.cumsum(new_row) - 1
    counts = np.bincount(slot)
    pooled = np.full((len(hit), k + counts.max()), np.inf, np.float32)
    pooled[:, :k] = best[hit]
    pooled[slot, k + np.arange(len(row)) - (np.cumsum(counts) - counts)[slot]] = value
    best[hit] = np.partition(pooled, k - 1, axis=1)[:, :k]
    threshold[hit, 0] = best[hit].max(axis=1)


def _pack(values: np.ndarray, rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Keys that sort as (row, value, id): 8 bits of row, the value's 32 bits mapped to an
    order-preserving unsigned integer, 24 bits of id."""
    values = np.maximum(values, 0)  # FAISS: "negative values can occur ... due to roundoff"
    values = values + np.float32(0)  # -0.0 becomes 0.0: equal distances, one key
    bits = values.view(np.uint32).astype(np.uint64)
    negative = bits >> np.uint64(31) == 1
    ordered = np.where(negative, ~bits & _LOW32, bits | np.uint64(0x80000000))
    return (
        (rows.astype(np.uint64) << np.uint64(32 + POINT_BITS))
        | (ordered << np.uint64(POINT_BITS))
        | ids.astype(np.uint64)
    )


def _unpack(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float32 values and int64 ids of `_pack`'s keys."""
    ordered = (keys >> np.uint64(POINT_BITS)) & _LOW32
    positive = ordered >> np.uint64(31) == 1
    bits = np.where(positive, ordered & np.uint64(0x7FFFFFFF), ~ordered & _LOW32)
    values = bits.astype(np.uint32).view(np.float32)
    ids = (keys & np.uint64(MAX_POINTS - 1)).astype(np.int64)
    return values, ids


def _first_k(keys: np.ndarray, rows: int, k: int) -> np.ndarray:
    """The first k of every row's sorted keys (each row has at least k)."""
    counts = np.bincount((keys >> np.uint64(32 + POINT_BITS)).astype(np.int64), minlength=rows)
    return keys[((np.cumsum(counts) - counts)[:, None] + np.arange(k)).ravel()]
