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


class TableReader:
    """How `example_table` reads a run's files: each whole. `example_row.RowReader` reads
    only some examples' rows instead."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def examples(self) -> pd.DataFrame:
        """examples.parquet."""
        return self.run.examples()

    def derived(
        self, name: str, columns: list[str] | None = None, *, layer: str | None = None
    ) -> pd.DataFrame:
        """derived/NAME (its `columns`, all when None; the rows of `layer` alone when given)."""
        if layer is None:
            return self.run.read_derived(name, columns)
        frame = self.run.read_derived(name, None if columns is None else [*columns, "layer"])
        frame = frame[frame["layer"] == layer]
        return frame if columns is None else frame[columns]

    def layers(self, name: str) -> list[str]:
        """The layers derived/NAME has rows of."""
        return self.run.read_derived(name, ["layer"])["layer"].unique().tolist()


KNN_JOINED = ["example_id", "knn_pred", "agrees", "knn_is_true"]  # ``agrees`` as knn_agrees


def example_table(run: Run, *, read: TableReader | None = None) -> pd.DataFrame:
    """One row per example: examples.parquet, its kind, and every derived per-example score.

    Joins (where computed) derived/scores.parquet, derived/heldout.parquet
    (``mem_score`` ...) or a text run's derived/counterfactual.parquet (``cf_mem_accuracy``
    ...), LiRA's ``vulnerability`` from derived/membership.parquet, the
    k-NN agreement at the last embedded layer (``knn_pred``, ``knn_agrees``,
    ``knn_is_true``) and the neuron-flipping count (``neurons_zeroed``). `read` reads the
    files (each whole by default; `example_row.example_rows` reads some examples' rows).
    """
    read = TableReader(run) if read is None else read
    table = read.examples()
    table.insert(1, "kind", example_kind(table))
    manifest = run.derived_manifest()
    if "scores" in manifest:
        table = table.merge(read.derived("scores.parquet"), on="example_id", how="left")
    if "heldout" in manifest:
        text = "counterfactual.parquet" in manifest["heldout"].get("files", [])
        held = read.derived("counterfactual.parquet" if text else "heldout.parquet")
        wanted = COUNTERFACTUAL_COLUMNS if text else HELDOUT_COLUMNS
        keep = ["example_id", *[c for c in wanted if c in held.columns]]
        table = table.merge(held[keep], on="example_id", how="left")
        if "membership.parquet" in manifest["heldout"].get("files", []):
            leak = read.derived("membership.parquet", ["example_id", "vulnerability"])
            table = table.merge(leak, on="example_id", how="left")
    if "knn" in manifest:
        layers = read.layers("knn_examples.parquet")
        if layers:
            last = run.in_layer_order(layers)[-1]
            rows = read.derived("knn_examples.parquet", KNN_JOINED, layer=last)
            rows = rows.rename(columns={"agrees": "knn_agrees"})
            table = table.merge(rows, on="example_id", how="left")
    if "flipping" in manifest:
        flips = read.derived("localization.parquet", ["example_id", "neurons_zeroed"])
        table = table.merge(flips, on="example_id", how="left")
    return table
