"""2-D UMAP projections of layer embeddings, aligned across epochs.

McInnes, Healy and Melville 2018, "UMAP: Uniform Manifold Approximation and
Projection". Each epoch is projected on its own from exact FAISS neighbours
passed through umap-learn's ``precomputed_knn`` (Euclidean distances, not
squared, each point its own first neighbour), which skips pynndescent.
Alignment across epochs works backwards from the last epoch (spectral
initialization): each earlier epoch's optimization starts from the next
later epoch's layout, and its result is then moved onto that layout by the
similarity transform (rotation or reflection, uniform scale, shift) that
best matches the points' places. So a point keeps its place while a user
scrubs through epochs, unless its neighbourhood really changed; the
transform preserves every neighbourhood, so each projection's quality (its
trustworthiness) is its own.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from memdash.analysis.measures.neighbors import knn_graph

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


def umap_2d(
    X: np.ndarray,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    random_state: int = 0,
    init: np.ndarray | None = None,
) -> np.ndarray:
    """A seeded 2-D UMAP of the rows of X, from exact FAISS neighbours.

    Parameters
    ----------
    X : shape (N, D), N > n_neighbors
    init : shape (N, 2), a layout to start from (default: spectral)

    Returns
    -------
    float32, shape (N, 2)
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2 or len(X) <= n_neighbors:
        raise ValueError(
            f"UMAP needs more than n_neighbors={n_neighbors} rows, got shape {X.shape}"
        )
    enable_numba_cache()
    import umap

    ind, dist = knn_graph(X, n_neighbors, metric="l2")
    reducer = umap.UMAP(
        n_neighbors=n_neighbors,
        n_components=2,
        min_dist=min_dist,
        metric="euclidean",
        random_state=random_state,
        precomputed_knn=(ind, dist, None),
        init="spectral" if init is None else np.asarray(init, dtype=np.float32),
    )
    with warnings.catch_warnings():
        # no search index (transform() is never used) and n_jobs=1 under a seed: both expected
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        warnings.filterwarnings("ignore", message=".*n_jobs.*overridden.*")
        return reducer.fit_transform(X).astype(np.float32)


def procrustes_align(Y: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Move Y onto target by the best similarity transform (least squares).

    Finds the orthogonal R, scale s and shift t minimizing
    ||s Y R + t - target||^2 (Schoenemann's solution through an SVD).

    Parameters
    ----------
    Y, target : shape (N, d), the same points in the same order

    Returns
    -------
    shape (N, d), float32
    """
    Y = np.asarray(Y, dtype=np.float64)
    T = np.asarray(target, dtype=np.float64)
    if Y.shape != T.shape:
        raise ValueError(f"shapes differ: {Y.shape} and {T.shape}")
    y0, t0 = Y - Y.mean(axis=0), T - T.mean(axis=0)
    u, sigma, vt = np.linalg.svd(y0.T @ t0)
    rotation = u @ vt
    norm = (y0**2).sum()
    scale = sigma.sum() / norm if norm > 0 else 1.0
    return (scale * y0 @ rotation + T.mean(axis=0)).astype(np.float32)


def aligned_projections(
    embeddings: dict[int, np.ndarray],
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    random_state: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[int, np.ndarray]:
    """UMAP each epoch's embedding, each aligned to the next later epoch's (see module).

    Parameters
    ----------
    embeddings : epoch -> shape (N, D_epoch), the same N points at every epoch
    progress : called with each epoch once it is projected

    Returns
    -------
    epoch -> float32, shape (N, 2)
    """
    if not embeddings:
        return {}
    epochs = sorted(embeddings)
    sizes = {len(embeddings[e]) for e in epochs}
    if len(sizes) != 1:
        raise ValueError(f"every epoch must hold the same points; row counts {sorted(sizes)}")
    out: dict[int, np.ndarray] = {}
    later = None
    for epoch in reversed(epochs):
        Y = umap_2d(
            embeddings[epoch],
            n_neighbors=n_neighbors,
            min_dist=min_dist,
            random_state=random_state,
            init=later,
        )
        out[epoch] = later = Y if later is None else procrustes_align(Y, later)
        if progress is not None:
            progress(epoch)
    return dict(sorted(out.items()))
