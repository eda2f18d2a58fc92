"""The knn step: k-NN versus the network at every recorded layer and epoch.

Which examples form which group:

* training set: ``split == "train"`` (with trained canaries); the k-NN index
  holds these points with the labels they were trained with;
* subsets ``all``, ``clean`` (neither flipped nor a canary) and ``flipped``
  (``is_noisy``), per split.

The search is exact, or an inverted-file index (``--knn ivf``; ``auto``: IVF from
``ivf.AUTO_EXACT_BELOW`` training points); every row of knn.parquet names the one used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from memdash.analysis.measures.curves import subset_masks
from memdash.analysis.measures.ivf import resolve_search
from memdash.analysis.measures.knn_recall import sample_recall
from memdash.analysis.measures.neighbors import agreement, knn_predict
from memdash.analysis.record.config import AnalysisConfig
from memdash.analysis.steps._common import Progress, _quiet
from memdash.analysis.steps.jobs import Jobs, LocalJobs
from memdash.analysis.store import Run

KNN_COLUMNS = (
    *("epoch", "layer", "split", "subset", "n", "knn_accuracy", "dnn_accuracy"),
    *("p_same", "ma", "md", "knn_true_accuracy", "dnn_true_accuracy"),
    *("method", "n_lists", "n_probes", "recall"),
)
KNN_EXAMPLE_COLUMNS = (
    *("example_id", "epoch", "layer", "knn_pred", "dnn_pred"),
    *("agrees", "knn_is_label", "knn_is_true"),
)
NEIGHBOR_COLUMNS = ("example_id", "rank", "neighbor_id", "distance", "epoch", "layer")
IVF_SEED = 0  # IVF's k-means sample and initial centroids (fixed: not in the step's key)


def _network_predictions(run: Run, epochs: list[int]) -> dict[int, np.ndarray]:
    """epoch -> the network's eval-pass prediction per example, -1 where not recorded."""
    trace = run.trace("eval", columns=["epoch", "example_id", "pred"], epochs=epochs)
    out = {}
    for epoch in epochs:
        rows = trace[trace["epoch"] == epoch]
        pred = np.full(run.n_examples(), -1, np.int64)
        pred[rows["example_id"].to_numpy()] = rows["pred"].to_numpy()
        out[epoch] = pred
    return out


def compute_knn(
    run: Run, config: AnalysisConfig, progress: Progress = _quiet, *, jobs: Jobs | None = None
) -> dict[str, pd.DataFrame]:
    """k-NN versus the network (Cohen et al. 2018) at every recorded layer and epoch.

    Each layer and epoch's search is a part of `jobs` (default: one after the other here;
    `memdash analyze --backend ray`: Ray tasks), assembled in order.

    Returns
    -------
    knn.parquet : per (epoch, layer, split, subset): n and the metrics of
        `memdash.analysis.measures.neighbors.agreement` against the labels trained with, plus
        ``knn_true_accuracy`` and ``dnn_true_accuracy`` against the true labels, and the
        search: ``method`` (``exact`` or ``ivf``), ``n_lists`` and ``n_probes`` (0 for exact),
        ``recall`` (IVF's recall@k on a seeded sample of training examples, `sample_recall`;
        1 for exact)
    knn_examples.parquet : per (example, layer) at the last recorded epoch:
        ``knn_pred``, ``dnn_pred``, ``agrees`` (k-NN = network),
        ``knn_is_label``, ``knn_is_true``
    neighbors.parquet : per (example, rank): the k nearest training examples
        (``neighbor_id``, ``distance``) at the last layer of the last epoch
    """
    examples = run.examples()
    index = run.embedding_index()
    train = (examples["split"] == "train").to_numpy()
    labels = examples["label"].to_numpy(np.int64)
    true = examples["true_label"].to_numpy(np.int64)
    splits = {s: (examples["split"] == s).to_numpy() for s in examples["split"].unique()}
    subsets = subset_masks(examples)
    predictions = _network_predictions(run, list(index))
    method, lists, probes = resolve_search(
        config.knn_method,
        n_points=int(train.sum()),
        metric=config.knn_metric,
        n_lists=config.knn_lists,
        n_probes=config.knn_probes,
    )
    search = {"method": method, "n_lists": lists, "n_probes": probes}
    last_epoch = max(index, default=None)
    cells = []  # (epoch, layer, whether its neighbours are kept: the last layer of the last epoch)
    for epoch, recorded in index.items():
        layers = run.in_layer_order(recorded)
        cells += [(epoch, layer, epoch == last_epoch and layer == layers[-1]) for layer in layers]
    found = (jobs or LocalJobs()).map(
        knn_part,
        run,
        [(epoch, layer, config, search, keep) for epoch, layer, keep in cells],
        labels=[f"epoch {epoch} {layer}" for epoch, layer, _ in cells],
        progress=progress,
    )
    rows, per_example = [], []
    neighbors = pd.DataFrame(columns=NEIGHBOR_COLUMNS)
    for (epoch, layer, keep), (knn, recall, ids, dist) in zip(cells, found, strict=True):
        dnn = predictions[epoch]
        seen = dnn >= 0
        for split, in_split in splits.items():
            for subset, in_subset in subsets.items():
                sel = in_split & in_subset & seen
                if sel.any():
                    rows.append(
                        {"epoch": epoch, "layer": layer, "split": split, "subset": subset}
                        | {"n": int(sel.sum())}
                        | agreement(knn[sel], dnn[sel], labels[sel])
                        | {
                            "knn_true_accuracy": float(np.mean(knn[sel] == true[sel])),
                            "dnn_true_accuracy": float(np.mean(dnn[sel] == true[sel])),
                        }
                        | search
                        | {"recall": recall}
                    )
        if epoch == last_epoch:
            per_example.append(_example_rows(epoch, layer, knn, dnn, labels, true))
        if keep:
            neighbors = _neighbor_rows(epoch, layer, ids, dist)
    knn_table = pd.DataFrame(rows, columns=KNN_COLUMNS)
    examples_table = (
        pd.concat(per_example, ignore_index=True)
        if per_example
        else pd.DataFrame(columns=KNN_EXAMPLE_COLUMNS)
    )
    return {
        "knn.parquet": knn_table,
        "knn_examples.parquet": examples_table,
        "neighbors.parquet": neighbors,
    }


def knn_part(
    run: Run,
    epoch: int,
    layer: str,
    config: AnalysisConfig,
    search: dict,
    keep: bool,
    *,
    progress: Progress = _quiet,
) -> tuple[np.ndarray, float, np.ndarray | None, np.ndarray | None]:
    """One layer and epoch's k-NN prediction of every example (a part of `compute_knn`).

    Returns
    -------
    prediction : int64, shape (N,), `knn_predict`'s
    recall : IVF's sampled recall@k (`sample_recall`), 1.0 for an exact search
    neighbors, distances : shape (N, k), only if `keep` (the last layer of the last epoch,
        for neighbors.parquet), else None
    """
    examples = run.examples(columns=["split", "label"])
    train = (examples["split"] == "train").to_numpy()
    X = run.embedding(epoch, layer, mmap=False)
    knn, ids, dist = knn_predict(
        X,
        train,
        examples["label"].to_numpy(np.int64),
        run.n_classes,
        n_neighbors=config.knn_k,
        metric=config.knn_metric,
        n_components=config.knn_pca,
        leave_one_out=config.knn_leave_one_out,
        method=search["method"],
        n_lists=search["n_lists"] or None,
        n_probes=search["n_probes"] or config.knn_probes,
        random_state=IVF_SEED,
    )
    recall = 1.0
    if search["method"] == "ivf":
        progress("recall on a sample")
        recall = sample_recall(
            X,
            train,
            ids,
            metric=config.knn_metric,
            n_components=config.knn_pca,
            leave_one_out=config.knn_leave_one_out,
            seed=IVF_SEED,
        )
    return knn, recall, (ids if keep else None), (dist if keep else None)


def _example_rows(
    epoch: int, layer: str, knn: np.ndarray, dnn: np.ndarray, labels: np.ndarray, true: np.ndarray
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "example_id": np.arange(len(knn), dtype=np.int64),
            "epoch": epoch,
            "layer": layer,
            "knn_pred": knn,
            "dnn_pred": dnn,
            "agrees": knn == dnn,
            "knn_is_label": knn == labels,
            "knn_is_true": knn == true,
        }
    )


def _neighbor_rows(epoch: int, layer: str, ids: np.ndarray, dist: np.ndarray) -> pd.DataFrame:
    n, k = ids.shape
    return pd.DataFrame(
        {
            "example_id": np.repeat(np.arange(n, dtype=np.int64), k),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int16), n),
            "neighbor_id": ids.ravel(),
            "distance": dist.ravel(),
            "epoch": epoch,
            "layer": layer,
        }
    )
