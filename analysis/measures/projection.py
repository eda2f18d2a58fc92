"""2-D UMAP projections of layer embeddings, aligned across epochs.

McInnes, Healy and Melville 2018, "UMAP: Uniform Manifold Approximation and
Projection". Each epoch is projected on its own from exact FAISS neighbours
passed through umap-learn's ``precomputed_knn`` (Euclidean distances, not
squared, each point its own first neighbour), which skips pynndescent. The
distances are computed again exactly (`exact_distances`), so a layout does not
change with the number of threads FAISS's BLAS ran on.
Alignment across epochs works backwards from the last epoch (spectral
initialization): each earlier epoch's optimization starts from the next
later epoch's layout, and its result is then moved onto that layout by the
similarity transform (rotation or reflection, uniform scale, shift) that
best matches the points' places. So a point keeps its place while a user
scrubs through epochs, unless its neighbourhood really changed; the
transform preserves every neighbourhood, so each projection's quality (its
trustworthiness) is its own.

Beyond a sample size (`aligned_projections`'s ``sample``), UMAP is fitted on a
seeded sample of the points (`sample_rows`, the same rows at every epoch) and
the others are placed by the fitted model's ``transform``: each joins the
layout at the weighted mean of its nearest fitted points' places (FAISS
neighbours again, through `SearchIndex`: exact, or an inverted file from the
size where the k-NN step's ``auto`` turns to one), then moves under their
attraction alone. The alignment's similarity transform is fitted on the
sampled points and applied to every point.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from memdash.analysis.measures.neighbors import FaissKNN, knn_graph

_CACHE_ENABLED = False


def enable_numba_cache() -> int:
    """Let umap-learn's numba functions cache their machine code on disk.

    umap-learn marks almost none of them ``cache=True``, so every new
    process recompiles them (tens of seconds) before its first projection.
    Returns the number of functions switched to caching (0 on later calls).
    """
    global _CACHE_ENABLED
    if _CACHE_ENABLED:
        return 0
    import umap.distances
    import umap.layouts
    import umap.umap_
    import umap.utils
    from numba.core.registry import CPUDispatcher

    count = 0
    for module in (umap.umap_, umap.layouts, umap.utils, umap.distances):
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher) and hasattr(value, "enable_caching"):
                value.enable_caching()
                count += 1
    _CACHE_ENABLED = True
    return count


def sample_rows(n: int, size: int, *, seed: int) -> np.ndarray | None:
    """The rows UMAP is fitted on when `n` points exceed `size` (0: every point).

    ``numpy.random.default_rng(seed).choice(n, size, replace=False)``, sorted.

    Returns
    -------
    int64, shape (size,), ascending; None when every point is fitted
    (``size == 0`` or ``n <= size``)
    """
    if size < 0 or n < 0:
        raise ValueError(f"sample size and point count must be >= 0, got {size} of {n}")
    if size == 0 or n <= size:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False)).astype(np.int64)


def exact_distances(
    X: np.ndarray, Y: np.ndarray, ind: np.ndarray, *, chunk: int = 1 << 22
) -> tuple[np.ndarray, np.ndarray]:
    """Each row of X's neighbours among Y's rows with their Euclidean distances computed
    again, exactly, and in a fixed order: the same on any machine and thread count.

    FAISS computes Euclidean distances as ||x||^2 + ||y||^2 - 2 x.y with BLAS, whose last
    bits change with the number of threads (a Ray worker has one); UMAP's layout is chaotic
    in them. Here each distance is the square root of a float64 sum of squared differences,
    and each row is sorted by (distance, index).

    Parameters
    ----------
    X : shape (N, D), the queries
    Y : shape (M, D), the points searched
    ind : int, shape (N, k), each query's neighbours, rows of Y
    chunk : at most this many floats of differences at once

    Returns
    -------
    indices : int64, shape (N, k), by ascending distance, ties by index
    distances : float32, shape (N, k), ascending
    """
    ind = np.asarray(ind, dtype=np.int64)
    n, k = ind.shape
    dist = np.empty((n, k), np.float64)
    step = max(1, chunk // max(1, k * X.shape[1]))
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        diff = Y[ind[lo:hi]].astype(np.float64) - X[lo:hi, None, :].astype(np.float64)
        dist[lo:hi] = np.sqrt(np.square(diff).sum(axis=2))
    order = np.lexsort((ind, dist), axis=1) if n else np.empty((0, k), np.int64)
    rows = np.arange(n)[:, None]
    return ind[rows, order], dist[rows, order].astype(np.float32)


class SearchIndex:
    """FAISS search standing in for pynndescent's NNDescent in umap-learn's ``transform``.

    umap-learn's ``transform`` asks the fitted model's search index (the third
    item of ``precomputed_knn``) for each new point's nearest fitted points
    through ``query(X, k, epsilon=...)`` and reads ``_angular_trees``. This
    answers with FAISS's Euclidean neighbours, searched as the k-NN step's
    ``method="auto"`` searches (`memdash.analysis.measures.ivf`): exact below
    ``ivf.AUTO_EXACT_BELOW["l2"]`` fitted points, an inverted file (its default
    lists and probes, k-means seeded by `random_state`) from there. ``epsilon``
    is NNDescent's and is ignored.

    Parameters
    ----------
    X : shape (n_fitted, D), the points UMAP was fitted on
    random_state : seeds the inverted file's k-means
    """

    _angular_trees = False  # umap-learn picks NNDescent's epsilon by it

    def __init__(self, X: np.ndarray, *, random_state: int = 0) -> None:
        self.X = np.asarray(X)
        self.knn_ = FaissKNN(1, metric="l2", method="auto", random_state=random_state).fit(X)

    def query(
        self, X: np.ndarray, k: int = 10, epsilon: float = 0.1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each row of X's `k` nearest fitted points: int64 indices and float32 Euclidean
        distances, both shape (len(X), k), nearest first."""
        dist, ind = self.knn_.kneighbors(X, k)
        return exact_distances(X, self.X, ind)


def umap_2d(
    X: np.ndarray,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    random_state: int = 0,
    init: np.ndarray | None = None,
    fit_rows: np.ndarray | None = None,
) -> np.ndarray:
    """A seeded 2-D UMAP of the rows of X, from exact FAISS neighbours.

    Parameters
    ----------
    X : shape (N, D), N > n_neighbors
    init : shape (N, 2), a layout to start from (default: spectral); with
        `fit_rows`, only those rows' places are used
    fit_rows : shape (n_fit,), n_fit > n_neighbors, the rows UMAP is fitted on
        (`sample_rows`); the other rows are placed by the fitted model's
        ``transform`` (default: every row is fitted)

    Returns
    -------
    float32, shape (N, 2)
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    if fit_rows is not None:
        return _fit_and_transform(
            X,
            np.asarray(fit_rows),
            n_neighbors=n_neighbors,
            min_dist=min_dist,
            random_state=random_state,
            init=init,
        )
    if X.ndim != 2 or len(X) <= n_neighbors:
        raise ValueError(
            f"UMAP needs more than n_neighbors={n_neighbors} rows, got shape {X.shape}"
        )
    reducer = _reducer(X, n_neighbors, min_dist, random_state, init, search_index=None)
    with _expected_warnings():
        return reducer.fit_transform(X).astype(np.float32)


def _reducer(
    X: np.ndarray,
    n_neighbors: int,
    min_dist: float,
    random_state: int,
    init: np.ndarray | None,
    *,
    search_index: SearchIndex | None,
) -> Any:
    """An unfitted umap-learn UMAP of X's exact neighbours (search_index: for transform)."""
    enable_numba_cache()
    import umap

    ind, dist = knn_graph(X, n_neighbors, metric="l2")
    ind[:, 1:], dist[:, 1:] = exact_distances(X, X, ind[:, 1:])  # each point first, itself
    return umap.UMAP(
        n_neighbors=n_neighbors,
        n_components=2,
        min_dist=min_dist,
        metric="euclidean",
        random_state=random_state,
        transform_seed=random_state,
        precomputed_knn=(ind, dist, search_index),
        init="spectral" if init is None else np.asarray(init, dtype=np.float32),
    )


@contextmanager
def _expected_warnings() -> Iterator[None]:
    """Silence umap-learn's two expected warnings: a search index that is not pynndescent's
    (none, or `SearchIndex`) and n_jobs=1 under a seed."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        warnings.filterwarnings("ignore", message=".*n_jobs.*overridden.*")
        yield


def _fit_and_transform(
    X: np.ndarray,
    fit_rows: np.ndarray,
    *,
    n_neighbors: int,
    min_dist: float,
    random_state: int,
    init: np.ndarray | None,
) -> np.ndarray:
    """`umap_2d` fitted on X[fit_rows], the other rows placed by the model's ``transform``."""
    n = len(X)
    if fit_rows.ndim != 1 or not np.issubdtype(fit_rows.dtype, np.integer):
        raise ValueError(f"fit_rows must be a 1-D array of row numbers, got {fit_rows.dtype}")
    if len(fit_rows) <= n_neighbors:
        raise ValueError(
            f"UMAP needs more than n_neighbors={n_neighbors} fitted rows, got {len(fit_rows)}"
        )
    if fit_rows.min() < 0 or fit_rows.max() >= n:
        raise ValueError(f"fit_rows must lie in 0..{n - 1}")
    if len(np.unique(fit_rows)) != len(fit_rows):
        raise ValueError("fit_rows must not repeat a row")
    if init is not None and np.shape(init) != (n, 2):
        raise ValueError(f"init must have shape ({n}, 2), got {np.shape(init)}")
    fitted = X[fit_rows]
    start = None if init is None else np.asarray(init)[fit_rows]
    index = SearchIndex(fitted, random_state=random_state)
    reducer = _reducer(fitted, n_neighbors, min_dist, random_state, start, search_index=index)
    rest = np.ones(n, bool)
    rest[fit_rows] = False
    Y = np.empty((n, 2), np.float32)
    with _expected_warnings():
        reducer.fit(fitted)
        Y[fit_rows] = reducer.embedding_
        if rest.any():
            Y[rest] = reducer.transform(X[rest])
    return Y


def procrustes_align(
    Y: np.ndarray, target: np.ndarray, *, rows: np.ndarray | None = None
) -> np.ndarray:
    """Move Y onto target by the best similarity transform (least squares).

    Finds the orthogonal R, scale s and shift t minimizing
    ||s Y R + t - target||^2 over `rows` (Schoenemann's solution through an
    SVD) and applies it to every row of Y.

    Parameters
    ----------
    Y, target : shape (N, d), the same points in the same order
    rows : the rows the transform is fitted on (default: all)

    Returns
    -------
    shape (N, d), float32
    """
    Y = np.asarray(Y, dtype=np.float64)
    T = np.asarray(target, dtype=np.float64)
    if Y.shape != T.shape:
        raise ValueError(f"shapes differ: {Y.shape} and {T.shape}")
    fit_y, fit_t = (Y, T) if rows is None else (Y[rows], T[rows])
    y0, t0 = fit_y - fit_y.mean(axis=0), fit_t - fit_t.mean(axis=0)
    u, sigma, vt = np.linalg.svd(y0.T @ t0)
    rotation = u @ vt
    norm = (y0**2).sum()
    scale = sigma.sum() / norm if norm > 0 else 1.0
    moved = y0 if rows is None else Y - fit_y.mean(axis=0)
    return (scale * moved @ rotation + fit_t.mean(axis=0)).astype(np.float32)


def aligned_projections(
    embeddings: dict[int, np.ndarray],
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    random_state: int = 0,
    sample: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[int, np.ndarray]:
    """UMAP each epoch's embedding, each aligned to the next later epoch's (see module).

    Parameters
    ----------
    embeddings : epoch -> shape (N, D_epoch), the same N points at every epoch
    sample : above this many points, fit on ``sample_rows(N, sample, seed=random_state)``
        (the same rows at every epoch; the alignment is fitted on them) and place the
        others by ``transform``; 0 or N <= sample: fit every point
    progress : called with each epoch once it is projected

    Returns
    -------
    epoch -> float32, shape (N, 2)
    """
    if sample != 0 and not n_neighbors < sample:
        raise ValueError(
            f"the UMAP sample must be 0 (fit every point) or more than "
            f"n_neighbors={n_neighbors}, got {sample}"
        )
    if not embeddings:
        return {}
    epochs = sorted(embeddings)
    sizes = {len(embeddings[e]) for e in epochs}
    if len(sizes) != 1:
        raise ValueError(f"every epoch must hold the same points; row counts {sorted(sizes)}")
    rows = sample_rows(sizes.pop(), sample, seed=random_state)
    out: dict[int, np.ndarray] = {}
    later = None
    for epoch in reversed(epochs):
        Y = umap_2d(
            embeddings[epoch],
            n_neighbors=n_neighbors,
            min_dist=min_dist,
            random_state=random_state,
            init=later,
            fit_rows=rows,
        )
        out[epoch] = later = Y if later is None else procrustes_align(Y, later, rows=rows)
        if progress is not None:
            progress(epoch)
    return dict(sorted(out.items()))
