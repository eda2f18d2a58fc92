"""The recall of an approximate k-NN, measured where it ran: the exact neighbours of a seeded
sample of training examples against those the approximate search found.

References
----------
Recall@k as in the approximate-search literature (Jégou, Douze and Schmid 2011; Aumüller,
Bernhardsson and Faithfull 2020, "ANN-Benchmarks"): the share of the exact k nearest
neighbours that the approximate search returns. Cohen et al. 2018's k-NN (the step this
measures) is defined on the exact neighbours; the recall says how far an IVF search is from
it on this layer's own embeddings.
"""

from __future__ import annotations

import numpy as np

from memdash.analysis.measures.ivf import recall_at_k
from memdash.analysis.measures.neighbors import FaissKNN

# training examples whose exact neighbours the knn step compares with IVF's (each costs one
# exact query: 500 cost 0.3% of the exact all-against-all search at 166,000 training points)
RECALL_QUERIES = 500


def sample_recall(
    X: np.ndarray,
    train: np.ndarray,
    neighbors: np.ndarray,
    *,
    metric: str = "l1",
    n_components: int | None = None,
    leave_one_out: bool = True,
    n_queries: int = RECALL_QUERIES,
    seed: int = 0,
) -> float:
    """Recall@k of `neighbors` on a seeded sample of training examples.

    Parameters
    ----------
    X : shape (N, D), every example's embedding (as given to `knn_predict`)
    train : bool, shape (N,), the examples the index holds
    neighbors : int, shape (N, k), each example's neighbours (example ids) as
        `knn_predict` returned them with the search to measure
    metric, n_components, leave_one_out : as the `knn_predict` that found `neighbors`
    n_queries : training examples sampled (all of them when there are fewer)
    seed : the sample

    Returns
    -------
    float in [0, 1]; higher = closer to exact (1: every sampled example's exact k nearest
    found). An exact neighbour tied in distance with one found counts as missed, so ties
    can only lower it.
    """
    train = np.asarray(train, dtype=bool)
    neighbors = np.asarray(neighbors)
    if train.shape != (len(X),) or neighbors.ndim != 2 or len(neighbors) != len(X):
        raise ValueError(
            f"train must be a mask of shape ({len(X)},) and neighbors ({len(X)}, k), got "
            f"{train.shape} and {neighbors.shape}"
        )
    if n_queries < 1:
        raise ValueError(f"n_queries must be at least 1, got {n_queries}")
    train_ids = np.flatnonzero(train)
    k = neighbors.shape[1]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(train_ids, size=min(n_queries, len(train_ids)), replace=False))
    exact = FaissKNN(k, metric=metric, n_components=n_components).fit(X[train_ids])
    ind = exact.kneighbors(X[rows], k + int(leave_one_out), return_distance=False)
    if leave_one_out:  # the step's rule: a training example is not its own neighbour
        own = ind == np.searchsorted(train_ids, rows)[:, None]
        own[~own.any(axis=1), -1] = True  # not found (ties): drop the farthest instead
        ind = ind[~own].reshape(len(rows), k)
    return recall_at_k(neighbors[rows], train_ids[ind])
