"""Per-example tables assembled from a run and its derived results (dashboard, exports)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from memdash.analysis.measures.curves import subset_masks
from memdash.analysis.store import Run

HELDOUT_COLUMNS = (
    *("mem_score", "mem_se", "mem_lo", "mem_hi", "n_in", "n_out"),
    *("heldout_accuracy", "c_score"),
)
# a text run's estimate: counterfactual memorization (derived/counterfactual.parquet)
COUNTERFACTUAL_COLUMNS = (
    *("cf_mem_accuracy", "cf_mem_accuracy_se", "cf_mem_loglik", "cf_mem_loglik_se"),
    *("n_in", "n_out"),
)


def example_kind(examples: pd.DataFrame) -> pd.Series:
    """A short name per example: clean, flipped, canary, test, reference."""
    masks = subset_masks(examples)
    split = examples["split"].to_numpy()
    canary = examples["is_canary"].to_numpy(bool) & (split == "train")
    kind = np.select(
        [canary, masks["flipped"], split == "train"],
        ["canary", "flipped", "clean"],
        default=split,
    )
    return pd.Series(kind, index=examples.index, name="kind")


def example_table(run: Run) -> pd.DataFrame:
    """One row per example: examples.parquet, its kind, and every derived per-example score.

    Joins (where computed) derived/scores.parquet, derived/heldout.parquet
    (``mem_score`` ...) or a text run's derived/counterfactual.parquet (``cf_mem_accuracy``
    ...), LiRA's ``vulnerability`` from derived/membership.parquet, the
    k-NN agreement at the last embedded layer (``knn_pred``, ``knn_agrees``,
    ``knn_is_true``) and the neuron-flipping count (``neurons_zeroed``).
    """
    table = run.examples()
    table.insert(1, "kind", example_kind(table))
    manifest = run.derived_manifest()
    if "scores" in manifest:
        table = table.merge(run.read_derived("scores.parquet"), on="example_id", how="left")
    if "heldout" in manifest:
        text = "counterfactual.parquet" in manifest["heldout"].get("files", [])
        held = run.read_derived("counterfactual.parquet" if text else "heldout.parquet")
        wanted = COUNTERFACTUAL_COLUMNS if text else HELDOUT_COLUMNS
        keep = ["example_id", *[c for c in wanted if c in held.columns]]
        table = table.merge(held[keep], on="example_id", how="left")
        if "membership.parquet" in manifest["heldout"].get("files", []):
            leak = run.read_derived("membership.parquet", ["example_id", "vulnerability"])
            table = table.merge(leak, on="example_id", how="left")
    if "knn" in manifest:
        knn = run.read_derived("knn_examples.parquet")
        if len(knn):
            last = run.in_layer_order(knn["layer"].unique())[-1]
            rows = knn[knn["layer"] == last][["example_id", "knn_pred", "agrees", "knn_is_true"]]
            rows = rows.rename(columns={"agrees": "knn_agrees"})
            table = table.merge(rows, on="example_id", how="left")
    if "flipping" in manifest:
        flips = run.read_derived("localization.parquet")[["example_id", "neurons_zeroed"]]
        table = table.merge(flips, on="example_id", how="left")
    return table
