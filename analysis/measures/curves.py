"""Training curves: accuracy and loss by epoch for groups of examples.

Groups follow Arpit et al. (2017): clean training examples, flipped (noisy)
training examples, trained canaries, and the test set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from memdash.analysis.measures.dynamics import trace_matrices

GROUPS = ("train (clean)", "train (flipped)", "canaries", "test")
SUBSETS = ("all", "clean", "flipped")


def subset_masks(examples: pd.DataFrame) -> dict[str, np.ndarray]:
    """Boolean masks of SUBSETS: every example, clean ones (neither flipped nor a canary),
    flipped ones (``is_noisy``)."""
    noisy = examples["is_noisy"].to_numpy(bool)
    canary = examples["is_canary"].to_numpy(bool)
    return {"all": np.ones(len(examples), bool), "clean": ~noisy & ~canary, "flipped": noisy}


def training_groups(examples: pd.DataFrame) -> dict[str, np.ndarray]:
    """Boolean masks of the training examples that are clean (neither flipped nor a canary)
    and of those that are flipped (``is_noisy``), and of the test set."""
    split = examples["split"].to_numpy()
    train = split == "train"
    noisy = examples["is_noisy"].to_numpy(bool)
    canary = examples["is_canary"].to_numpy(bool)
    return {"clean": train & ~noisy & ~canary, "flipped": train & noisy, "test": split == "test"}


def example_groups(examples: pd.DataFrame) -> pd.Series:
    """The curve group of every example (reference canaries get none: NaN).

    Parameters
    ----------
    examples : examples.parquet columns ``split``, ``is_noisy``, ``is_canary``
    """
    split, noisy, canary = examples["split"], examples["is_noisy"], examples["is_canary"]
    group = np.select(
        [
            canary & (split == "train"),
            (split == "train") & noisy,
            split == "train",
            split == "test",
        ],
        [GROUPS[2], GROUPS[1], GROUPS[0], GROUPS[3]],
        default="",
    )
    return pd.Series(group, index=examples.index).replace("", np.nan)


def accuracy_curves(trace: pd.DataFrame, examples: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy (with the labels trained with) and loss per epoch and group.

    Parameters
    ----------
    trace : rows of trace.parquet with ``epoch``, ``example_id``, ``correct``, ``loss``
    examples : examples.parquet

    Returns
    -------
    DataFrame with columns ``epoch``, ``group``, ``accuracy``, ``loss``, ``n``;
    NaN losses are left out of the mean loss (and counted in ``n`` only).
    """
    epochs, grids = trace_matrices(trace, len(examples), ("correct", "loss"), first_epoch=0)
    return accuracy_curves_from_grids(epochs, grids["correct"], grids["loss"], examples)


def accuracy_curves_from_grids(
    epochs: np.ndarray, correct: np.ndarray, loss: np.ndarray, examples: pd.DataFrame
) -> pd.DataFrame:
    """`accuracy_curves` from (E, N) grids (`memdash.analysis.store.Run.trace_grids`).

    Parameters
    ----------
    epochs : shape (E,)
    correct, loss : shape (E, N), NaN where an example is absent from an epoch
    examples : examples.parquet

    Returns
    -------
    The same frame as `accuracy_curves`: per epoch and group, ``accuracy``, the
    mean of the non-NaN ``loss`` and ``n`` (examples present); a group absent
    from an epoch has no row.
    """
    groups = example_groups(examples).to_numpy()
    rows = []
    for group in sorted(g for g in GROUPS if (groups == g).any()):
        mask = groups == group
        present = ~np.isnan(correct[:, mask])
        n = present.sum(1)
        right = np.where(present, correct[:, mask], 0.0).sum(1)
        losses = loss[:, mask]
        counted = present & ~np.isnan(losses)
        total = np.where(counted, losses, 0.0).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rows.append(
                pd.DataFrame(
                    {
                        "epoch": epochs,
                        "group": group,
                        "accuracy": right / n,
                        "loss": total / counted.sum(1),
                        "n": n,
                    }
                )[n > 0]
            )
    if not rows:
        return pd.DataFrame(columns=["epoch", "group", "accuracy", "loss", "n"])
    return pd.concat(rows).sort_values(["epoch", "group"], ignore_index=True)
