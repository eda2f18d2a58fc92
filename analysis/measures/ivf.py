"""Approximate nearest neighbours: FAISS's inverted-file index (IVF) and its measured recall.

An IVF index partitions the indexed points into `n_lists` cells by a coarse k-means
quantizer; a query visits only its `n_probes` nearest cells (nearest centroids), so a search
costs about ``n_lists + n_probes * n / n_lists`` distances instead of ``n``. Probing every
list is an exhaustive search: the same neighbours as the exact (flat) index.

References
----------
Jégou, Douze and Schmid 2011, "Product quantization for nearest neighbor search" (the
inverted file over a k-means coarse quantizer); Johnson, Douze and Jégou 2019,
"Billion-scale similarity search with GPUs" (FAISS).

FAISS supports IVF in L1 (``IndexIVFFlat(..., METRIC_L1)``), but it trains the coarse
k-means in L2 for every metric but inner product. For L1 the coarse quantizer here is L2
as well: the cells are the L2 k-means's Voronoi cells, a point goes to the list of its
nearest centroid in L2 and a query probes the lists of its `n_probes` nearest centroids in
L2 (a matrix product, several times cheaper than L1 distances to every centroid), while
the search inside the probed lists is in L1. So the distances returned are exact L1
distances; only which points are examined is approximate, and probing every list is exact.
Cosine is inner product on unit vectors (spherical k-means, an inner-product quantizer).
"""

from __future__ import annotations

import math

import numpy as np

# `method=` of the k-NN: exact (flat index), ivf (inverted file), auto (by size, below)
KNN_METHODS = ("exact", "ivf", "auto")
# n_lists = LISTS_PER_ROOT * sqrt(n). FAISS's guideline, 4..16 sqrt(n), minimizes the cost
# of a query on an index trained once; here every indexed point is also a query and the
# k-means (cost ~ lists^2) and the quantizer (lists distances per point) are paid at every
# layer and epoch, so fewer, larger lists win: on benchmarks/knn_ivf.py's 200,000 examples
# (166,535 indexed) 2 sqrt(n) = 816 lists with 16 probes gave recall@30 0.994 and took 50 s
# (exact: 2,507 s, 50 x longer), 4 sqrt(n) with 32 probes 0.9985 in about 80 s and with 16
# probes 0.974 in about 58 s
LISTS_PER_ROOT = 2
# below 39 training points per centroid FAISS's k-means warns: the rule keeps at least that
MIN_POINTS_PER_LIST = 39
# the k-means trains on a seeded sample of this many points per list (FAISS samples 256)
TRAIN_POINTS_PER_LIST = 64
# lists a query visits by default: recall@30 >= 0.95 on benchmarks/knn_ivf.py's 200,000
# (0.994 with 2 sqrt(n) lists; 8 probes gave 0.939, 12 gave 0.982). Embeddings without a
# low-dimensional structure need more: isotropic 128-D classes gave 0.51 at 16 probes and
# 0.994 at 64 (their k-NN predictions still equal exact's); the knn step measures the
# recall it got (`knn_recall.sample_recall`, knn.parquet's `recall`)
DEFAULT_PROBES = 16
# auto: exact below this many indexed points, IVF from here. benchmarks/knn_ivf.py measured
# where IVF (k-means, filling the lists and the search, leave-one-out) gets faster than the
# flat index: first at 5,000 points in L1 (twice), at 7,500 and 10,000 in L2 and at 7,500 in
# cosine (a matrix product: cheaper per pair). auto waits until about twice that, where IVF
# was faster in every measurement (L1 1.6-3.1 x at 10,000; L2 1.2-2.7 x and cosine 1.6 x at
# 20,000), so that the runs whose exact search takes seconds keep their exact neighbours
AUTO_EXACT_BELOW = {"l1": 10_000, "l2": 20_000, "cosine": 20_000}


def default_lists(n_points: int) -> int:
    """The number of lists for `n_points` indexed points: ``round(2 sqrt(n))``, at most
    ``n / 39`` (FAISS's fewest training points per centroid), at least 1."""
    if n_points < 1:
        raise ValueError(f"n_points must be at least 1, got {n_points}")
    rule = round(LISTS_PER_ROOT * math.sqrt(n_points))
    return max(1, min(rule, n_points // MIN_POINTS_PER_LIST))


def resolve_method(method: str, *, n_points: int, metric: str) -> str:
    """``exact`` or ``ivf``: `method` itself, or for ``auto`` exact below
    ``AUTO_EXACT_BELOW[metric]`` indexed points and IVF from there."""
    if method not in KNN_METHODS:
        raise ValueError(f"unknown k-NN method {method!r}; valid: {', '.join(KNN_METHODS)}")
    if method != "auto":
        return method
    if metric not in AUTO_EXACT_BELOW:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(AUTO_EXACT_BELOW)}")
    return "exact" if n_points < AUTO_EXACT_BELOW[metric] else "ivf"


def resolve_search(
    method: str, *, n_points: int, metric: str, n_lists: int | None, n_probes: int
) -> tuple[str, int, int]:
    """What a k-NN over `n_points` indexed points searches: (``exact`` or ``ivf``, lists,
    probes), the lists from `default_lists` when `n_lists` is None and the probes capped at
    the lists; lists and probes are 0 for exact."""
    resolved = resolve_method(method, n_points=n_points, metric=metric)
    if resolved == "exact":
        return resolved, 0, 0
    lists = default_lists(n_points) if n_lists is None else n_lists
    return resolved, lists, min(n_probes, lists)


def ivf_index(X: np.ndarray, faiss_metric: int, *, n_lists: int, n_probes: int, seed: int):
    """A trained and filled ``faiss.IndexIVFFlat`` over the rows of X.

    Parameters
    ----------
    X : float32, C-contiguous, shape (n, d): the points (already projected / normalized)
    faiss_metric : ``faiss.METRIC_L1``, ``METRIC_L2`` or ``METRIC_INNER_PRODUCT``
    n_lists : cells of the coarse quantizer, 1..n
    n_probes : cells a query visits, 1..n_lists
    seed : the k-means's sample of ``64 * n_lists`` points and its initial centroids

    Returns
    -------
    faiss.IndexIVFFlat with ``nprobe = n_probes``
    """
    import faiss

    n, d = X.shape
    if not 1 <= n_lists <= n:
        raise ValueError(f"--knn-lists {n_lists} must lie in 1..{n} (the points indexed)")
    if not 1 <= n_probes <= n_lists:
        raise ValueError(f"--knn-probes {n_probes} must lie in 1..{n_lists} (--knn-lists)")
    inner = faiss_metric == faiss.METRIC_INNER_PRODUCT  # cosine; L1 and L2: an L2 quantizer
    quantizer = faiss.IndexFlat(d, faiss.METRIC_INNER_PRODUCT if inner else faiss.METRIC_L2)
    index = faiss.IndexIVFFlat(quantizer, d, n_lists, faiss_metric)  # keeps a reference
    cp = index.cp
    cp.seed = seed % 2**31
    cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST  # our sample: FAISS draws no other
    cp.min_points_per_centroid = 1  # a few points per list is the user's choice, not a warning
    size = min(n, TRAIN_POINTS_PER_LIST * n_lists)
    sample = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    index.train(X[sample])
    index.add(X)
    index.nprobe = n_probes
    return index


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Recall@k of approximate neighbours: the mean share of each query's exact k nearest
    that the approximate search found.

    Parameters
    ----------
    found : int, shape (n_queries, k): approximate neighbour ids, distinct within a row
    exact : int, shape (n_queries, k): the exact neighbour ids, distinct within a row

    Returns
    -------
    float in [0, 1]; higher = closer to the exact search (1: every neighbour found)
    """
    found, exact = np.asarray(found), np.asarray(exact)
    if found.shape != exact.shape or found.ndim != 2 or found.size == 0:
        raise ValueError(
            f"found and exact must be non-empty (n_queries, k) arrays of one shape, got "
            f"{found.shape} and {exact.shape}"
        )
    both = np.sort(np.concatenate([found, exact], axis=1), axis=1)
    shared = (both[:, 1:] == both[:, :-1]).sum(axis=1)  # ids in both rows appear twice
    return float(shared.mean() / found.shape[1])
