"""Measures over several runs of one experiment (a seed group) and over pairs of
experiments: the numbers behind the findings of Arpit et al. 2017, Neural Network
Memorization Dissection and random-label pre-training.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from memdash.analysis.measures.similarity import cka_matrix
from memdash.analysis.store import Run


def easiness(correct: np.ndarray) -> np.ndarray:
    """Arpit et al.'s per-example easiness: the share of a group's runs (different
    initializations) that classify each example correctly.

    Parameters
    ----------
    correct : (R, N) bool, run r right on example n (at one epoch, given labels)

    Returns
    -------
    (N,) float in [0, 1], higher = easier. Real data is bimodal (examples every run gets
    right, and some none does); random labels or inputs are not.
    """
    correct = np.asarray(correct, dtype=bool)
    if correct.ndim != 2 or len(correct) < 2:
        raise ValueError(f"easiness needs (runs >= 2, examples), got {correct.shape}")
    return correct.mean(0)


def group_correct(group: list[Run], epoch: int, *, split: str = "train") -> np.ndarray:
    """(R, N_split) bool: each run's eval-pass correctness at `epoch` on one split's
    examples (the same examples in every run of a group)."""
    ids = np.flatnonzero((group[0].examples(["split"])["split"] == split).to_numpy())
    rows = []
    for run in group:
        trace = run.trace("eval", epochs=[epoch], columns=["example_id", "correct"])
        right = np.zeros(run.n_examples(), dtype=bool)
        right[trace["example_id"].to_numpy()] = trace["correct"].to_numpy()
        rows.append(right[ids])
    return np.stack(rows)


def mean_pairwise_cka(group: list[Run], epoch: int, layer: str) -> float:
    """Linear CKA of one layer between every pair of a group's runs, averaged."""
    reps = [run.embedding(epoch, layer) for run in group]
    return float(np.mean([cka_matrix([a], [b])[0, 0] for a, b in itertools.combinations(reps, 2)]))


def per_epoch_mean(run: Run, column: str, *, split: str = "train") -> pd.Series:
    """The mean over one split's examples of an optional eval-trace column (loss
    sensitivity, or critical: the critical sample ratio), per epoch; NaN-skipping."""
    ids = np.flatnonzero((run.examples(["split"])["split"] == split).to_numpy())
    kinds = pd.Series(split, index=ids)
    return per_epoch_by(run, column, kinds).set_index("epoch")["value"]


def per_epoch_by(run: Run, column: str, groups: pd.Series) -> pd.DataFrame:
    """An eval-trace column's mean per epoch and group of examples, NaN-skipping (the
    critical sample ratio is the mean of ``critical`` over the searched subset).

    Parameters
    ----------
    run : a run whose eval trace holds `column`
    column : e.g. ``loss_sensitivity`` or ``critical``
    groups : a label (e.g. the kind: clean, flipped) per example id, indexed by example id;
        examples not in it are left out

    Returns
    -------
    long table with columns ``epoch``, ``group``, ``value`` and ``examples`` (how many of the
    group's examples had a value), one row per (epoch, group) with at least one value
    """
    trace = run.trace("eval", columns=["epoch", "example_id", column])
    trace = trace[trace["example_id"].isin(groups.index)].dropna(subset=[column])
    trace = trace.assign(group=groups.reindex(trace["example_id"]).to_numpy())
    out = trace.groupby(["epoch", "group"], as_index=False).agg(
        value=(column, "mean"), examples=(column, "size")
    )
    return out[["epoch", "group", "value", "examples"]]


def group_easiness(group: list[Run], epoch: int) -> pd.DataFrame:
    """Arpit et al.'s easiness of each training example over a seed group at one epoch:
    columns ``example_id`` and ``easiness`` (the share of the group's runs right on it,
    given labels)."""
    ids = np.flatnonzero((group[0].examples(["split"])["split"] == "train").to_numpy())
    return pd.DataFrame({"example_id": ids, "easiness": easiness(group_correct(group, epoch))})
