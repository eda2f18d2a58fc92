"""The analysis steps: read what a run recorded, compute with the pure modules, return tables.

Each step returns ``{derived file name: DataFrame}``; `memdash.analysis.steps.pipeline`
caches them under RUN/derived/. Which examples form which group:

* training set: ``split == "train"`` (with trained canaries); the k-NN index
  holds these points with the labels they were trained with;
* subsets ``all``, ``clean`` (neither flipped nor a canary) and ``flipped``
  (``is_noisy``), per split;
* canaries: trained canaries; references: ``split == "reference"``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import pandas as pd

from memdash.analysis.measures.curves import subset_masks
from memdash.analysis.measures.dynamics import trace_scores
from memdash.analysis.measures.exposure import (
    SPACES,
    exposure_interpolation,
    extrapolated_exposure,
    fit_references,
    reference_exposure,
)
from memdash.analysis.measures.neighbors import agreement, knn_predict
from memdash.analysis.measures.projection import aligned_projections
from memdash.analysis.record.config import AnalysisConfig
from memdash.analysis.store import Run

Progress = Callable[[str], None]
SCORE_COLUMNS = ("correct", "prob_label", "margin", "loss")
KNN_COLUMNS = (
    *("epoch", "layer", "split", "subset", "n", "knn_accuracy", "dnn_accuracy"),
    *("p_same", "ma", "md", "knn_true_accuracy", "dnn_true_accuracy"),
)
KNN_EXAMPLE_COLUMNS = (
    *("example_id", "epoch", "layer", "knn_pred", "dnn_pred"),
    *("agrees", "knn_is_label", "knn_is_true"),
)
NEIGHBOR_COLUMNS = ("example_id", "rank", "neighbor_id", "distance", "epoch", "layer")


def _quiet(message: str) -> None:
    del message


def compute_scores(
    run: Run, config: AnalysisConfig | None = None, progress: Progress = _quiet
) -> dict[str, pd.DataFrame]:
    """derived/scores.parquet: one row per example, the trace scores of `measures.dynamics`.

    Columns from the eval source over epochs 1..E, and the same from the
    training-minibatch source with a ``_train`` suffix where the run recorded it.
    """
    n = run.n_examples()
    out = pd.DataFrame({"example_id": np.arange(n, dtype=np.int64)})
    for source in run.trace_sources():
        progress(f"{source} trace")
        epochs, m = run.trace_grids(source, SCORE_COLUMNS)  # part by part: bounded memory
        if not len(epochs):
            continue
        scores = trace_scores(
            correct=m["correct"],
            prob_label=m["prob_label"],
            margin=m["margin"],
            loss=m["loss"],
            epochs=epochs,
        )
        suffix = "" if source == "eval" else f"_{source}"
        out = out.join(scores.add_suffix(suffix))
    return {"scores.parquet": out}


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
    run: Run, config: AnalysisConfig, progress: Progress = _quiet
) -> dict[str, pd.DataFrame]:
    """k-NN versus the network (Cohen et al. 2018) at every recorded layer and epoch.

    Returns
    -------
    knn.parquet : per (epoch, layer, split, subset): n and the metrics of
        `memdash.analysis.measures.neighbors.agreement` against the labels trained with, plus
        ``knn_true_accuracy`` and ``dnn_true_accuracy`` against the true labels
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
    rows, per_example = [], []
    neighbors = pd.DataFrame(columns=NEIGHBOR_COLUMNS)
    last_epoch = max(index, default=None)
    for epoch, recorded in index.items():
        layers = run.in_layer_order(recorded)
        for layer in layers:
            progress(f"epoch {epoch} {layer}")
            knn, ids, dist = knn_predict(
                run.embedding(epoch, layer, mmap=False),
                train,
                labels,
                run.n_classes,
                n_neighbors=config.knn_k,
                metric=config.knn_metric,
                n_components=config.knn_pca,
                leave_one_out=config.knn_leave_one_out,
            )
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
                        )
            if epoch == last_epoch:
                per_example.append(_example_rows(epoch, layer, knn, dnn, labels, true))
                if layer == layers[-1]:
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


def compute_umap(
    run: Run, config: AnalysisConfig, progress: Progress = _quiet
) -> dict[str, pd.DataFrame]:
    """derived/umap/LAYER.parquet: every example's 2-D place at each recorded epoch.

    Columns ``epoch``, ``example_id``, ``x``, ``y``; the epochs of a layer are
    aligned to its last recorded epoch (`memdash.analysis.measures.projection`).
    """
    index = run.embedding_index()
    recorded = sorted({layer for layers in index.values() for layer in layers})
    out = {}
    for layer in run.in_layer_order(recorded):
        epochs = [e for e, layers in index.items() if layer in layers]
        embeddings = {e: run.embedding(e, layer, mmap=False) for e in epochs}
        projections = aligned_projections(
            embeddings,
            n_neighbors=config.umap_neighbors,
            min_dist=config.umap_min_dist,
            random_state=config.seed,
            progress=lambda epoch, layer=layer: progress(f"{layer} epoch {epoch}"),
        )
        n = run.n_examples()
        out[f"umap/{layer}.parquet"] = pd.DataFrame(
            {
                "epoch": np.repeat(np.array(epochs, np.int32), n),
                "example_id": np.tile(np.arange(n, dtype=np.int64), len(epochs)),
                "x": np.concatenate([projections[e][:, 0] for e in epochs]),
                "y": np.concatenate([projections[e][:, 1] for e in epochs]),
            }
        )
    return out


EXPOSURE_COLUMNS = ("epoch", "example_id", "kind", "repeats", "loss")
EXPOSURE_FIT_COLUMNS = ("epoch", "space", "n_references", "shape", "loc", "scale", "floored")
# the column of each extrapolation (exposure.SPACES: the losses, the paper's; their logs)
EXTRAPOLATIONS = {"loss": "exposure_extrapolation", "log_loss": "exposure_extrapolation_log"}


def compute_exposure(
    run: Run, config: AnalysisConfig | None = None, progress: Progress = _quiet
) -> dict[str, pd.DataFrame]:
    """derived/exposure.parquet and exposure_fits.parquet, per recorded epoch (0 included).

    ``exposure.parquet``, per canary and reference: ``epoch``, ``example_id``,
    ``kind`` (canary or reference), ``repeats`` (0 for references), ``loss``,
    ``exposure_interpolation``, ``exposure_extrapolation`` (the paper's:
    skew-normal of the losses), ``exposure_extrapolation_log`` (skew-normal of
    the log-losses), ``ceiling`` (log2 #references) and ``fit_floored`` (the
    epoch's loss-space fit sits on the references' loss floor, so its
    extrapolation is a property of the fit's cliff). A reference's
    interpolation ranks it against the other references (the untrained
    baseline, about 1.44 bits); its extrapolations use the fits to all
    references. ``exposure_fits.parquet``, per epoch and ``space`` (``loss``
    or ``log_loss``): the fit's ``shape``, ``loc``, ``scale``,
    ``n_references`` and ``floored``. An epoch whose references cannot be
    fitted (all equal, or fewer than 3) gets NaN extrapolations and no fit row.
    """
    examples = run.examples()
    canary = (examples["is_canary"] & (examples["split"] == "train")).to_numpy()
    reference = (examples["split"] == "reference").to_numpy()
    columns = [
        *EXPOSURE_COLUMNS,
        "exposure_interpolation",
        *EXTRAPOLATIONS.values(),
        *("ceiling", "fit_floored"),
    ]
    if not canary.any() or reference.sum() < 2:
        return {
            "exposure.parquet": pd.DataFrame(columns=columns),
            "exposure_fits.parquet": pd.DataFrame(columns=list(EXPOSURE_FIT_COLUMNS)),
        }
    epochs, m = run.trace_grids("eval", ("loss",), first_epoch=0)
    ids = np.flatnonzero(canary | reference)
    repeats = examples["canary_repeats"].to_numpy(np.int64)
    frames, fits = [], []
    for e, epoch in enumerate(epochs):
        progress(f"epoch {epoch}")
        loss = m["loss"][e]
        refs = loss[reference]
        if np.isnan(refs).any():
            continue  # the eval pass did not cover this epoch
        interp = np.full(len(loss), np.nan)
        interp[canary] = exposure_interpolation(loss[canary], refs)
        interp[reference] = reference_exposure(refs)
        extrap, floored = {}, {}
        for space, column in EXTRAPOLATIONS.items():
            transform = SPACES[space]
            extrap[column], floored[space] = np.full(len(loss), np.nan), False
            with contextlib.suppress(ValueError):  # references all equal (or < 3): NaN
                fit = fit_references(transform(refs))
                extrap[column][ids] = extrapolated_exposure(transform(loss[ids]), fit)
                floored[space] = fit.floored
                fits.append(
                    (epoch, space, fit.n_references, fit.shape, fit.loc, fit.scale, fit.floored)
                )
        frames.append(
            pd.DataFrame(
                {
                    "epoch": np.int32(epoch),
                    "example_id": ids,
                    "kind": np.where(canary[ids], "canary", "reference"),
                    "repeats": np.where(canary[ids], repeats[ids], 0),
                    "loss": loss[ids],
                    "exposure_interpolation": interp[ids],
                    **{column: values[ids] for column, values in extrap.items()},
                    "ceiling": np.log2(reference.sum()),
                    "fit_floored": floored["loss"],
                }
            )
        )
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    fit_table = pd.DataFrame(fits, columns=list(EXPOSURE_FIT_COLUMNS)).astype(
        {"epoch": np.int32, "n_references": np.int64}
    )
    return {"exposure.parquet": table, "exposure_fits.parquet": fit_table}
