"""A run's single-run memorization proxies per trained example, and their scoreboard.

Gathers every single-run score the run has, per trained example (the training split, canaries
and flipped examples included), and compares each with the held-out memorization score
(`memdash estimate`) and with the planted examples (`measures.proxy_scoreboard.scoreboard`):

- the trace scores of derived/scores.parquet (`memdash analyze`): forgetting, learning epochs
  (an example never learned counts as learned after the last epoch, the slowest), the data
  map's confidence, variability and correctness, AUM and mean loss, from the eval
  pass and, with the suffix ``_train``, from the training minibatches; loss sensitivity and
  input-loss curvature averaged over the epochs, where the run recorded them;
- ``knn_disagreement@LAYER`` (derived/knn_examples.parquet): 1 where the k-NN of the layer's
  embedding at its last analysed epoch predicts another class than the network;
- ``neurons_zeroed`` (derived/localization.parquet, `memdash localize`): the units zeroed to
  flip the prediction (Maini et al. 2023), for the examples it sampled;
- ``ssft`` (derived/ssft.parquet, `memdash ssft`): second-split forgetting time.

Each proxy's cost is read from what recorded it: run.json's ``timing`` (seconds of the training
loop, the eval pass, loss sensitivity and curvature) and the manifest's ``seconds`` of the step
that computed it; ``cost_runs`` divides it by the training loop's seconds (one training run).
Without an estimate the table still ranks the proxies by the flipped examples' AUROC.
`steps.proxies` caches the table as derived/proxies.parquet.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from memdash.analysis.measures.proxy_scoreboard import scoreboard
from memdash.analysis.store import Run

TRACE_PROXIES = (
    *("forgetting_events", "first_learned_epoch", "learned_epoch", "confidence"),
    *("variability", "correctness", "aum", "mean_loss"),
)
LEARNING_EPOCHS = ("first_learned_epoch", "learned_epoch")  # NaN: never learned
RECORDED_PROXIES = ("loss_sensitivity", "curvature")  # trace columns averaged over epochs


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else np.nan


def _seconds(entry: Any) -> float:
    """A manifest entry's ``seconds`` (NaN where it recorded none)."""
    return _number(entry.get("seconds") if isinstance(entry, dict) else None)


def proxy_values(run: Run) -> tuple[pd.DataFrame, dict[str, float]]:
    """The run's single-run scores per trained example and each one's cost in seconds.

    Returns
    -------
    (table, costs): `table` has ``example_id``, ``is_noisy``, ``is_canary``, ``mem_score``
    (NaN without an estimate) and one column per proxy (NaN where a proxy has no value);
    `costs` maps each proxy to its seconds (NaN where the run did not record them).

    Raises
    ------
    ValueError : the run has no trace scores (`memdash analyze RUN` first) or is a text run
    """
    if run.is_text:
        raise ValueError(f"{run.name} is a text run: the proxies' scoreboard is for classifiers")
    manifest = run.derived_manifest()
    if "scores" not in manifest:
        raise ValueError(f"{run.name} has no trace scores: run `memdash analyze {run.path}` first")
    examples = run.examples(["example_id", "split", "is_noisy", "is_canary"])
    table = examples.loc[examples["split"] == "train"].drop(columns="split")
    table = table.reset_index(drop=True)
    timing = run.meta.get("timing") or {}
    scores_seconds = _seconds(manifest["scores"])
    costs: dict[str, float] = {}
    scores = run.read_derived("scores.parquet").set_index("example_id")
    for column in scores.columns:
        base = column.removesuffix("_train")
        if base in TRACE_PROXIES or base in RECORDED_PROXIES:
            values = scores[column]
            if base in LEARNING_EPOCHS:  # never learned: after the last epoch, the slowest
                values = values.fillna(scores[f"n_epochs{column[len(base) :]}"] + 1)
            table[column] = table["example_id"].map(values)
            recorder = "eval_pass" if base in TRACE_PROXIES else base  # minibatches: free
            extra = _number(timing.get(recorder)) if column == base else 0.0
            costs[column] = scores_seconds + extra
    _join_knn(run, manifest, table, costs)
    for step, name, column in (
        ("flipping", "localization.parquet", "neurons_zeroed"),
        ("ssft", "ssft.parquet", "ssft"),
    ):
        if step in manifest:
            found = run.read_derived(name, ["example_id", column]).set_index("example_id")
            table[column] = table["example_id"].map(found[column]).astype(np.float64)
            costs[column] = _seconds(manifest[step])
    table["mem_score"] = np.nan
    if "heldout" in manifest:
        held = run.read_derived("heldout.parquet", ["example_id", "mem_score"])
        table["mem_score"] = table["example_id"].map(held.set_index("example_id")["mem_score"])
    return table, costs


def _join_knn(run: Run, manifest: dict, table: pd.DataFrame, costs: dict[str, float]) -> None:
    """``knn_disagreement@LAYER`` for each analysed layer, at its last analysed epoch."""
    if "knn" not in manifest:
        return
    knn = run.read_derived("knn_examples.parquet", ["example_id", "epoch", "layer", "agrees"])
    last = knn.loc[knn["epoch"] == knn.groupby("layer")["epoch"].transform("max")]
    for layer in run.in_layer_order(last["layer"].unique()):
        rows = last.loc[last["layer"] == layer].set_index("example_id")["agrees"]
        name = f"knn_disagreement@{layer}"
        table[name] = 1.0 - table["example_id"].map(rows).astype(np.float64)
        costs[name] = _seconds(manifest["knn"])  # the whole k-NN step, every layer


def compute_proxies(
    run: Run, *, share: float = 0.05, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """The scoreboard of `run` (`scoreboard`'s columns) with ``seconds`` and ``cost_runs``
    (seconds over the training loop's), best first."""
    table, costs = proxy_values(run)
    fixed = {"example_id", "is_noisy", "is_canary", "mem_score"}
    proxies = {c: table[c].to_numpy(np.float64) for c in table.columns if c not in fixed}
    mem = table["mem_score"].to_numpy(np.float64)
    board = scoreboard(
        proxies,
        mem if np.isfinite(mem).any() else None,
        table["is_noisy"].to_numpy(bool) & ~table["is_canary"].to_numpy(bool),
        table["is_canary"].to_numpy(bool),
        share=share,
        n_boot=n_boot,
        seed=seed,
    )
    board["seconds"] = board["proxy"].map(costs).astype(np.float64)
    board["cost_runs"] = board["seconds"] / _number((run.meta.get("timing") or {}).get("train"))
    return board
