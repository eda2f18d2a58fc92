"""Per-example scores from training dynamics, vectorized over (epochs, examples).

References
----------
Toneva et al. 2019, "An Empirical Study of Example Forgetting during Deep
Neural Network Learning" (forgetting events, learning time).
Swayamdipta et al. 2020, "Dataset Cartography" (confidence, variability, correctness).
Pleiss et al. 2020, "Identifying Mislabeled Data using the Area Under the
Margin Ranking" (AUM: the mean margin over epochs).

Inputs are (E, N) arrays over the recorded epochs 1..E (epoch 0, the model
before training, is never part of a score). Missing values rule: an entry that
is NaN (an epoch not recorded for that example, or a NaN loss) is *missing*;
each mean and standard deviation is taken over that quantity's observed
epochs only (a NaN loss leaves the loss mean over the other epochs, never a
zero averaged in); `n_epochs` counts the epochs whose correctness was
observed; a forgetting event needs two consecutive recorded epochs that are
both observed, and a missing epoch is not "correct" for learning times.
Never learned is its own flag (NaN epochs), never the cartography code's
magic 1000.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _epochs_axis(epochs: np.ndarray, n: int) -> np.ndarray:
    epochs = np.asarray(epochs)
    if epochs.shape != (n,) or np.any(np.diff(epochs) <= 0):
        raise ValueError(f"epochs must be {n} increasing values, got {epochs}")
    return epochs


def forgetting_events(correct: np.ndarray) -> np.ndarray:
    """Count 1 -> 0 transitions between consecutive epochs, per example.

    Parameters
    ----------
    correct : float, shape (E, N): 1 correct, 0 wrong, NaN missing

    Returns
    -------
    int64, shape (N,); higher = forgotten more often
    """
    c = np.asarray(correct, dtype=float)
    return ((c[:-1] == 1) & (c[1:] == 0)).sum(axis=0).astype(np.int64)


def first_learned_epoch(correct: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """The first epoch at which the example is correct; NaN if never. Shape (N,)."""
    c = np.asarray(correct, dtype=float) == 1
    epochs = _epochs_axis(epochs, len(c))
    first = c.argmax(axis=0)
    return np.where(c.any(axis=0), epochs[first].astype(float), np.nan)


def learned_epoch(correct: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """The epoch from which the example stays correct to the end (learned for good).

    NaN when it is wrong (or missing) at the last epoch. Shape (N,).
    """
    c = np.asarray(correct, dtype=float) == 1
    epochs = _epochs_axis(epochs, len(c))
    not_ok = ~c
    # index of the last epoch that is not correct, -1 if none
    last_bad = np.where(not_ok.any(axis=0), len(c) - 1 - not_ok[::-1].argmax(axis=0), -1)
    start = last_bad + 1
    return np.where(start < len(c), epochs[np.minimum(start, len(c) - 1)].astype(float), np.nan)


def trace_scores(
    *,
    correct: np.ndarray,
    prob_label: np.ndarray,
    margin: np.ndarray,
    loss: np.ndarray,
    epochs: np.ndarray,
) -> pd.DataFrame:
    """All trace scores of every example, one row per example.

    Parameters
    ----------
    correct, prob_label, margin, loss : float, shape (E, N), NaN where missing
    epochs : shape (E,), the recorded epochs (1..E, increasing)

    Returns
    -------
    DataFrame (N rows): ``forgetting_events`` (higher = less stable),
    ``first_learned_epoch``, ``learned_epoch``, ``never_learned``,
    ``unforgettable`` (learned and never forgotten), ``confidence`` (mean
    probability of the given label; low = hard-to-learn, where flipped labels
    land), ``variability`` (its population std, ddof=0), ``correctness``,
    ``aum`` (mean margin; low = likely mislabeled), ``mean_loss``, ``n_epochs``.
    """
    from memdash.analysis.measures._trace_kernel import (  # numba, imported when needed
        FLOAT_COLUMNS,
        trace_sums,
    )

    arrays = [
        np.ascontiguousarray(a, dtype=np.float64) for a in (correct, prob_label, margin, loss)
    ]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 2:
        raise ValueError(
            f"correct, prob_label, margin, loss must share one (E, N) shape, got "
            f"{[a.shape for a in arrays]}"
        )
    epochs = _epochs_axis(epochs, len(arrays[0]))
    ints, floats = trace_sums(*arrays, epochs.astype(np.float64))
    n_epochs, events = ints
    ever = ~np.isnan(floats[:, 0])
    out = pd.DataFrame(floats, columns=list(FLOAT_COLUMNS), copy=False)
    out.insert(0, "forgetting_events", events)
    out.insert(3, "never_learned", ~ever & (n_epochs > 0))
    out.insert(4, "unforgettable", ever & (events == 0))
    out["n_epochs"] = n_epochs
    return out


def trace_matrices(
    trace: pd.DataFrame, n_examples: int, columns: tuple[str, ...], *, first_epoch: int = 1
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Pivot a long trace (one source) into (E, N) float arrays over epochs >= first_epoch.

    Scores use epochs 1..E (the default); epoch 0 is the untrained model.
    Returns the recorded epochs (E,) and one (E, N) array per column, NaN
    where an (epoch, example) pair is absent.
    """
    rows = trace[trace["epoch"] >= first_epoch]
    epochs = np.unique(rows["epoch"].to_numpy())
    e_idx = np.searchsorted(epochs, rows["epoch"].to_numpy())
    ids = rows["example_id"].to_numpy()
    out = {}
    for column in columns:
        grid = np.full((len(epochs), n_examples), np.nan)
        grid[e_idx, ids] = rows[column].to_numpy(dtype=np.float64)
        out[column] = grid
    return epochs, out
