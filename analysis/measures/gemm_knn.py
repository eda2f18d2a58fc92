"""Exact L2 k nearest neighbours by blocks of matrix products, FAISS's results faster.

FAISS's flat index multiplies blocks of queries by blocks of points, turns every product
into a distance in one single-threaded pass and offers each distance to a heap per query.
At small dimension (64 after PCA) those passes, not the product, take most of the time: the
k-NN after PCA took 3.01 x its GEMM limit (issue #28). Here a block of 256 queries multiplies
a tile of 512 points in one GEMM with the squared norms folded in as two extra columns (the
product *is* the squared distance; 256 x 512 products stay in the L2 cache), and one numba
pass over the tile (`memdash.analysis.measures._knn_kernel`) keeps the entries below each
query's running k-th distance: 64 at a time counted in one vectorized loop, and only where
some are below looked at one by one, each kept entry written as a 64-bit key (query,
distance, point) and lowering its query's threshold at once (a max-heap of k per query).
The keys still at most their query's final k-th are sorted. Blocks of queries run on worker
threads, each with a one-thread BLAS; the kernel holds no GIL.

The result is FAISS's: the k smallest squared distances by the same formula
(``|x|^2 + |y|^2 - 2 x.y``, clamped at 0), ascending, a tie going to the smaller point id
(FAISS's max-heap evicts the larger id of a tie and refuses an equal distance that comes
later). Only a distance's last bits, which depend on the BLAS that sums the products, may
differ from FAISS's own (it links another BLAS). Cosine stays with FAISS: its min-heap keeps
a tie's larger ids when a nearer point evicts one, an order no sort reproduces.

Measured (benchmarks/analytics.py --only knn; 50,000 points, k=30, leave-one-out, on the
2-core VM shared with other work, load average 2-7): after PCA to 64, 1.42, 1.49, 1.25 and
1.53 x the GEMM limit in four runs (goal 1.5, not reliably met; single rounds 1.21-1.67 x;
FAISS's flat index 2.00-3.34 x). In the three runs that print them apart the search took
0.96-1.29 x and the fit 0.23-0.43 x: the PCA (`neighbors._pca`: a float64 covariance by a
two-thread dgemm, 0.74-1.04 s at load 4 against 0.24 s on one thread, whose result differs
in the last bit, so it stays) bounds the rest. Raw 256-D: 0.97 and 1.09 x in the last two
runs (FAISS 1.46 and 1.50 x; the first two measured the GEMM rate at 180 and 31 GFLOP/s as
the load changed, so their 2.05 and 0.73 x say little). Side by side with the previous numpy
passes, outputs equal to the bit: one thread (process time, 1,024 queries) a block costs
1.08-1.15 x the one-thread GEMM limit at D=64 (the numpy passes 1.41-1.44 x) and 1.07 x at
D=256 (1.24 x); two threads (8,192 queries, the limit at two BLAS threads) 1.16-1.27 x at
D=64 (1.56-1.63 x) and 1.16-1.18 x at D=256 (1.24-1.36 x) at load 1.4-1.8, two workers
1.85-1.91 x as fast as one. What is left, one thread at D=64: the product, 1.6 ns an entry
(66 columns, not 64), and the kernel, 0.37 ns an entry over the later tiles, 0.16 ns where
none is kept (so about 70 ns a kept entry, k ln(N/k) a query), the first tile's selection
and the sort of the few keys left. The first call of a process loads numba and the compiled
kernels (0.5-0.7 s; 1.1 s when numba's cache is empty and it compiles them).

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
FIRST_TILE = 512  # points of the first tile at least (k at least): its k-th starts the threshold
TILE = 512  # points per later tile (FAISS: 1,024): 256 x 512 products stay in the L2 cache


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
    it (an equal distance loses: its point id is larger than every id kept so far) and each
    entry kept lowers it at once (`_knn_kernel`: a max-heap per row). Every kept entry is a
    candidate, written as a sort key (row, distance clamped at 0, point); the k best of those
    are the answer (any other point has k candidates before it). Thresholds are on the
    products; FAISS's clamp at 0 (a tie among all values below 0) is applied where it changes
    the answer: to the first tile's threshold and to the candidates.
    """
    from memdash.analysis.measures import _knn_kernel as kernel  # numba: loaded on first use

    rows, n = len(lhs), rhs.shape[1]
    first = min(n, max(FIRST_TILE, k))
    buffer = np.empty(rows * max(first, min(n, TILE)), np.float32)  # reused: no page faults
    heap = np.empty((rows, k), np.float32)  # each row's k smallest raw values, a max-heap
    keys = np.empty(rows * (len(buffer) // rows + 8 * k), np.uint64)
    count, start, width = 0, 0, first
    while start < n:
        width = min(width, n - start)
        if len(keys) < count + rows * width:
            keys = np.concatenate([keys[:count], np.empty(count + 2 * rows * width, np.uint64)])
        tile = buffer[: rows * width].reshape(rows, width)
        np.matmul(lhs, rhs[:, start : start + width], out=tile)
        if start:
            count = kernel.scan_tile(tile, tile.view(np.uint32), start, heap, keys, count)
        else:  # the k smallest, descending: a max-heap whose top is the k-th
            heap[:] = np.sort(np.partition(tile, k - 1, axis=1)[:, :k], axis=1)[:, ::-1]
            count = kernel.first_tile(tile, tile.view(np.uint32), np.maximum(heap[:, 0], 0), keys)
        start, width = start + width, TILE
    kth = (np.maximum(heap[:, 0], 0) + np.float32(0)).view(np.uint32).astype(np.uint64)
    bounds = (
        (np.arange(rows, dtype=np.uint64) << np.uint64(32 + POINT_BITS))
        | ((kth | np.uint64(1 << 31)) << np.uint64(POINT_BITS))
        | np.uint64(MAX_POINTS - 1)
    )
    keys = keys[: kernel.final_keys(keys[:count], bounds)]
    keys.sort()
    values, ids = _unpack(_first_k(keys, rows, k))
    return values.reshape(rows, k), ids.reshape(rows, k)


def _unpack(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float32 values and int64 ids of `_knn_kernel.scan_tile`'s keys: the value's bits
    with the sign bit set (values are clamped at 0), the point's id in the low bits."""
    bits = (keys >> np.uint64(POINT_BITS)) & np.uint64(0x7FFFFFFF)
    values = bits.astype(np.uint32).view(np.float32)
    ids = (keys & np.uint64(MAX_POINTS - 1)).astype(np.int64)
    return values, ids


def _first_k(keys: np.ndarray, rows: int, k: int) -> np.ndarray:
    """The first k of every row's sorted keys (each row has at least k)."""
    counts = np.bincount((keys >> np.uint64(32 + POINT_BITS)).astype(np.int64), minlength=rows)
    return keys[((np.cumsum(counts) - counts)[:, None] + np.arange(k)).ravel()]
