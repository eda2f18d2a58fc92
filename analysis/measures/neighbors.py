"""Exact k nearest neighbours with FAISS, and the DNN-versus-k-NN comparison.

References
----------
Cohen, Sapiro and Giryes 2018, "DNN or k-NN: That is the Generalize vs.
Memorize Question": at a layer's embedding, a k-NN classifier over the
training set (k=30, L1 distance, optional PCA to 64 dimensions) is compared
with the network's own prediction. Their code lets a training point vote for
itself; here the default leaves it out (``leave_one_out=True``) and the
other variant stays available. Their search is exact; ``method="ivf"`` (or
``"auto"`` on large sets) searches an inverted-file index instead
(`memdash.analysis.measures.ivf`), approximate with a measured recall. An exact
L2 search of many queries runs by blocked GEMM (`memdash.analysis.measures.gemm_knn`):
FAISS's neighbours, without its heap's cost at small dimension (issue #28).
"""

from __future__ import annotations

import numpy as np

from memdash.analysis.measures.gemm_knn import MAX_POINTS, gemm_knn
from memdash.analysis.measures.ivf import (
    DEFAULT_PROBES,
    KNN_METHODS,
    ivf_index,
    resolve_search,
)

# the distances a k-NN may use (Cohen et al. use L1)
METRICS = ("l2", "cosine", "l1")


def _as_matrix(X: np.ndarray, name: str) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"{name} must be a non-empty 2-D array (n_samples, n_features), got shape {X.shape}"
        )
    X = np.ascontiguousarray(X, dtype=np.float32)
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def check_knn_options(metric: str, method: str, lists: int | None, probes: int) -> None:
    """Raise ValueError, one line naming the value, for an unknown metric or method, lists
    or probes below 1, or more probes than lists (`lists` None: the rule's, `default_lists`)."""
    if metric not in METRICS:
        raise ValueError(f"unknown k-NN metric {metric!r}; valid: {', '.join(METRICS)}")
    if method not in KNN_METHODS:
        raise ValueError(f"unknown k-NN method {method!r}; valid: {', '.join(KNN_METHODS)}")
    if lists is not None and lists < 1:
        raise ValueError(f"--knn-lists must be at least 1, got {lists}")
    if probes < 1:
        raise ValueError(f"--knn-probes must be at least 1, got {probes}")
    if lists is not None and probes > lists:
        raise ValueError(
            f"--knn-probes {probes} exceeds --knn-lists {lists}: a query visits at most every list"
        )


class FaissKNN:
    """Nearest neighbours through a FAISS index: exact (flat) or an inverted file (IVF).

    A scikit-learn-like interface: ``fit(X)`` then ``kneighbors(...)``, with
    the distances scikit-learn's ``NearestNeighbors`` returns for the same
    metric (L2 distances are *not* squared).

    Parameters
    ----------
    n_neighbors : neighbours returned by default
    metric : ``"l2"`` (Euclidean), ``"cosine"`` (1 - cosine similarity) or
        ``"l1"`` (Manhattan, Cohen et al.'s choice)
    n_components : if set and smaller than the number of features, project
        onto the first `n_components` principal components of the fitted
        data first (Cohen et al. use 64); None keeps the raw features
    method : ``"exact"`` (a flat index: every point compared), ``"ivf"`` (an
        ``IndexIVFFlat``: a query compares the points of its `n_probes` nearest
        lists only) or ``"auto"`` (exact below ``ivf.AUTO_EXACT_BELOW[metric]``
        fitted points, IVF above)
    n_lists : IVF's lists (k-means cells); None: ``ivf.default_lists``, 2 sqrt(n)
    n_probes : lists a query visits (capped at the lists); all of them = exact
    random_state : seeds IVF's k-means (its sample and its initial centroids)

    Attributes
    ----------
    index_ : the FAISS index holding the fitted points
    method_ : ``"exact"`` or ``"ivf"``, what `method` resolved to
    n_lists_, n_probes_ : the lists and probes searched (0 for exact)
    n_samples_fit_ : number of fitted points
    n_features_in_ : number of input features
    mean_, components_ : the PCA (shape (D,) and (D, n_components)), or None
    """

    def __init__(
        self,
        n_neighbors: int = 30,
        *,
        metric: str = "l2",
        n_components: int | None = None,
        method: str = "exact",
        n_lists: int | None = None,
        n_probes: int = DEFAULT_PROBES,
        random_state: int = 0,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.n_components = n_components
        self.method = method
        self.n_lists = n_lists
        self.n_probes = n_probes
        self.random_state = random_state

    def fit(self, X: np.ndarray) -> FaissKNN:
        """Index the rows of X, shape (n_samples, n_features)."""
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; valid: {', '.join(METRICS)}")
        check_knn_options(self.metric, self.method, self.n_lists, self.n_probes)
        if self.n_components is not None and self.n_components < 1:
            raise ValueError(f"n_components must be at least 1 or None, got {self.n_components}")
        X = _as_matrix(X, "X")
        self.n_features_in_ = X.shape[1]
        self.mean_ = self.components_ = None
        if self.n_components is not None and self.n_components < X.shape[1]:
            self.mean_, self.components_ = _pca(X, self.n_components)
        X = self._project(X)
        import faiss  # imported when an index is built: the metrics above load without it

        n, d = X.shape
        self.method_, self.n_lists_, self.n_probes_ = resolve_search(
            self.method,
            n_points=n,
            metric=self.metric,
            n_lists=self.n_lists,
            n_probes=self.n_probes,
        )
        self._points = X  # the fitted points' queries (leave-one-out)
        self.n_samples_fit_ = n
        if self.method_ == "ivf":
            self.index_ = ivf_index(
                X,
                _FAISS_METRICS[self.metric](faiss),
                n_lists=self.n_lists_,
                n_probes=self.n_probes_,
                seed=self.random_state,
            )
            return self
        if self.metric == "l2":
            self.index_ = faiss.IndexFlatL2(d)
        elif self.metric == "cosine":
            self.index_ = faiss.IndexFlatIP(d)
        else:
            self.index_ = faiss.IndexFlat(d, faiss.METRIC_L1)
        self.index_.add(X)
        return self

    def _project(self, X: np.ndarray) -> np.ndarray:
        if self.components_ is not None:
            X = np.ascontiguousarray((X - self.mean_) @ self.components_, dtype=np.float32)
        if self.metric == "cosine":
            norms = np.linalg.norm(X, axis=1, keepdims=True)
            X = X / np.where(norms == 0, 1, norms)  # a zero vector is at distance 1 from all
        return X

    def kneighbors(
        self,
        X: np.ndarray | None = None,
        n_neighbors: int | None = None,
        *,
        return_distance: bool = True,
    ) -> tuple[np.ndarray, np.ndarray] | np.ndarray:
        """The nearest fitted points of each query, nearest first.

        Parameters
        ----------
        X : queries, shape (n_queries, n_features); None queries the fitted
            points themselves, each leaving itself out (scikit-learn's rule)
        n_neighbors : defaults to the constructor's value

        Returns
        -------
        distances : float32, shape (n_queries, n_neighbors), ascending
            (only when `return_distance`)
        indices : int64, shape (n_queries, n_neighbors), rows of the fitted data
        """
        if not hasattr(self, "index_"):
            raise ValueError("FaissKNN is not fitted; call fit(X) first")
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        leave_out = X is None
        available = self.n_samples_fit_ - int(leave_out)
        if not 1 <= k <= available:
            raise ValueError(f"n_neighbors={k} must be between 1 and {available} here")
        if leave_out:
            queries = self._points
        else:
            queries = _as_matrix(X, "X")
            if queries.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {queries.shape[1]} features; fitted on {self.n_features_in_}"
                )
            queries = self._project(queries)
        raw, ind = self._search(queries, k + int(leave_out))
        if leave_out:
            raw, ind = _drop_self(raw, ind)
        dist = self._distances(raw)
        return (dist, ind) if return_distance else ind

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._by_gemm(len(queries)):
            return gemm_knn(queries, self._points, k)
        raw, ind = self.index_.search(queries, k)
        short = (ind < 0).any(axis=1)
        if short.any():  # IVF: the probed lists held fewer than k points; search every list
            self.index_.nprobe = self.n_lists_
            raw[short], ind[short] = self.index_.search(np.ascontiguousarray(queries[short]), k)
            self.index_.nprobe = self.n_probes_
        return raw, ind

    def _by_gemm(self, n_queries: int) -> bool:
        """Whether `gemm_knn` searches: exact L2 where FAISS itself would multiply matrices
        (queries x dimension at least its BLAS threshold), FAISS's neighbours with the search
        within 0.96-1.29 x the GEMM limit where FAISS's took 2.0-3.3 x (D=64 after PCA;
        benchmarks/analytics.py --only knn, issue #28); below, FAISS's own distances."""
        import faiss

        return (
            self.method_ == "exact"
            and self.metric == "l2"
            and n_queries * self._points.shape[1] >= faiss.cvar.distance_compute_blas_threshold
            and self.n_samples_fit_ < MAX_POINTS
        )

    def _distances(self, raw: np.ndarray) -> np.ndarray:
        if self.metric == "l2":
            return np.sqrt(np.maximum(raw, 0))  # FAISS returns squared L2
        if self.metric == "cosine":
            return np.maximum(1 - raw, 0)
        return raw


# each metric's FAISS constant (a function of the module: faiss is imported on first use)
_FAISS_METRICS = {
    "l2": lambda faiss: faiss.METRIC_L2,
    "cosine": lambda faiss: faiss.METRIC_INNER_PRODUCT,
    "l1": lambda faiss: faiss.METRIC_L1,
}


def _pca(X: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and the top principal directions (D, n_components), from the covariance."""
    mean = X.mean(axis=0, dtype=np.float64)
    centered = X - mean.astype(np.float32)
    cov = centered.T.astype(np.float64) @ centered.astype(np.float64)
    _, vecs = np.linalg.eigh(cov)  # ascending eigenvalues
    return mean.astype(np.float32), np.ascontiguousarray(
        vecs[:, ::-1][:, :n_components], np.float32
    )


def _drop_self(raw: np.ndarray, ind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove each query's own row from its k+1 results (else its farthest, when ties hid it)."""
    n, k1 = ind.shape
    own = ind == np.arange(n)[:, None]
    own[~own.any(axis=1), -1] = True
    keep = ~own
    return raw[keep].reshape(n, k1 - 1), ind[keep].reshape(n, k1 - 1)


def knn_graph(
    X: np.ndarray, n_neighbors: int, *, metric: str = "l2"
) -> tuple[np.ndarray, np.ndarray]:
    """Every point's `n_neighbors` nearest points, itself first at distance 0.

    The form umap-learn's ``precomputed_knn`` expects.

    Returns
    -------
    indices : int64, shape (N, n_neighbors); column 0 is the point itself
    distances : float32, shape (N, n_neighbors), ascending
    """
    knn = FaissKNN(n_neighbors - 1, metric=metric).fit(X)
    dist, ind = knn.kneighbors()
    n = len(ind)
    ind = np.concatenate([np.arange(n)[:, None], ind], axis=1)
    dist = np.concatenate([np.zeros((n, 1), np.float32), dist], axis=1)
    return ind, dist


def vote(neighbor_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Majority vote of each row's neighbour labels; a tie goes to the smallest label.

    Parameters
    ----------
    neighbor_labels : int, shape (N, k), values in 0..n_classes-1

    Returns
    -------
    int64, shape (N,)
    """
    labels = np.asarray(neighbor_labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"neighbour labels must lie in 0..{n_classes - 1}")
    n = len(labels)
    flat = (np.arange(n)[:, None] * n_classes + labels).ravel()
    counts = np.bincount(flat, minlength=n * n_classes).reshape(n, n_classes)
    return counts.argmax(axis=1)


def knn_predict(
    X: np.ndarray,
    train: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    n_neighbors: int = 30,
    metric: str = "l1",
    n_components: int | None = None,
    leave_one_out: bool = True,
    method: str = "exact",
    n_lists: int | None = None,
    n_probes: int = DEFAULT_PROBES,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k-NN classification of every point by the labels of its nearest training points.

    Parameters
    ----------
    X : shape (N, D), every example's embedding at one layer and epoch
    train : bool, shape (N,), the points the index holds (the training set)
    labels : int, shape (N,), the labels the network was trained with
    leave_one_out : a training point is not its own neighbour (default); if
        False it votes for itself, as in Cohen et al.'s code
    method, n_lists, n_probes, random_state : the search, as `FaissKNN`'s (exact
        by default; ``ivf.resolve_search`` tells what ``auto`` and None become)

    Returns
    -------
    prediction : int64, shape (N,)
    neighbors : int64, shape (N, n_neighbors), example ids (rows of X)
    distances : float32, shape (N, n_neighbors), ascending
    """
    train = np.asarray(train, dtype=bool)
    if train.shape != (len(X),):
        raise ValueError(f"train must be a boolean mask of shape ({len(X)},), got {train.shape}")
    train_ids = np.flatnonzero(train)
    knn = FaissKNN(
        n_neighbors,
        metric=metric,
        n_components=n_components,
        method=method,
        n_lists=n_lists,
        n_probes=n_probes,
        random_state=random_state,
    ).fit(X[train_ids])
    dist = np.empty((len(X), n_neighbors), np.float32)
    ind = np.empty((len(X), n_neighbors), np.int64)
    queries = np.flatnonzero(~train) if leave_one_out else np.arange(len(X))
    if len(queries):
        dist[queries], ind[queries] = knn.kneighbors(X[queries])
    if leave_one_out:
        dist[train_ids], ind[train_ids] = knn.kneighbors()
    neighbors = train_ids[ind]
    return vote(np.asarray(labels)[neighbors], n_classes), neighbors, dist


def agreement(knn_pred: np.ndarray, dnn_pred: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """Cohen et al.'s metrics over a set of points (NaN where a denominator is empty).

    Returns
    -------
    knn_accuracy : fraction where the k-NN predicts `label`
    dnn_accuracy : fraction where the network predicts `label`
    p_same : fraction where the two agree
    ma : agreement among points the network gets right
    md : agreement among points the network gets wrong
    """
    knn_pred, dnn_pred, label = (np.asarray(a) for a in (knn_pred, dnn_pred, label))
    same = knn_pred == dnn_pred
    right = dnn_pred == label

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if values.size else float("nan")

    return {
        "knn_accuracy": mean(knn_pred == label),
        "dnn_accuracy": mean(right),
        "p_same": mean(same),
        "ma": mean(same[right]),
        "md": mean(same[~right]),
    }
