"""Held-out estimates from many models trained on random subsets.

References
----------
Feldman and Zhang 2020, "What Neural Networks Memorize and Why": for
training example i, over K models each trained on a random subset S_k,

    mem(i) = mean_{k: i in S_k} correct_k(i) - mean_{k: i not in S_k} correct_k(i),

higher = more memorized (flipped and atypical examples near 1, typical ones
near 0); and the influence of training example i on test example j, the same
in-minus-out difference measured at j.
Jiang et al. 2021, "Characterizing Structural Regularities of Labeled Data
in Overparameterized Models": the C-score, an example's expected accuracy
under models that did not train on it, averaged over subset ratios (higher =
more regular).

Uncertainty: ``mem_se`` is the binomial (Wald) standard error of a difference
of two proportions, sqrt(p_in (1 - p_in) / n_in + p_out (1 - p_out) / n_out),
which collapses to 0 when both accuracies are 0 or 1. ``mem_lo`` and
``mem_hi`` bound a 95% interval that never collapses: Newcombe's hybrid score
interval (Newcombe 1998, "Interval estimation for the difference between
independent proportions", method 10), built from the Wilson intervals of the
in- and out-accuracies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _check(correct: np.ndarray, trained: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    correct = np.asarray(correct, dtype=bool)
    trained = np.asarray(trained, dtype=bool)
    if correct.ndim != 2 or correct.shape != trained.shape:
        raise ValueError(
            f"correct and trained must share one (K, N) shape: {correct.shape}, {trained.shape}"
        )
    return correct, trained


def _mean(hits: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, hits / np.maximum(n, 1), np.nan)


Z_95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval


def wilson_interval(
    p: np.ndarray, n: np.ndarray, *, z: float = Z_95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion `p` observed in `n` trials (NaN where n = 0).

    Returns
    -------
    (lower, upper), each of the broadcast shape of `p` and `n`, within [0, 1]
    """
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        shrink = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / shrink
        half = z / shrink * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def newcombe_interval(
    p_in: np.ndarray,
    n_in: np.ndarray,
    p_out: np.ndarray,
    n_out: np.ndarray,
    *,
    z: float = Z_95,
) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval for the difference p_in - p_out.

    Parameters
    ----------
    p_in, p_out : the two observed proportions, shape (N,)
    n_in, n_out : their numbers of trials, shape (N,)

    Returns
    -------
    (lower, upper), shape (N,), within [-1, 1]; it contains p_in - p_out and
    has positive width whenever both n are finite (unlike the Wald interval)
    """
    l_in, u_in = wilson_interval(p_in, n_in, z=z)
    l_out, u_out = wilson_interval(p_out, n_out, z=z)
    d = p_in - p_out
    lower = d - np.sqrt((p_in - l_in) ** 2 + (u_out - p_out) ** 2)
    upper = d + np.sqrt((u_in - p_in) ** 2 + (p_out - l_out) ** 2)
    return lower, upper


def mem_scores(correct: np.ndarray, trained: np.ndarray) -> pd.DataFrame:
    """Feldman & Zhang's memorization score of every example.

    Parameters
    ----------
    correct : bool (K, N), model k predicts example i's given label
    trained : bool (K, N), example i was in model k's training subset
        (always False for examples no model trains on, such as the test set)

    Returns
    -------
    DataFrame, N rows: ``mem_score`` (NaN without both in and out models;
    higher = more memorized), ``mem_se`` (Wald), ``mem_lo`` and ``mem_hi``
    (Newcombe's 95% interval), ``n_in``, ``n_out``, ``in_accuracy``,
    ``heldout_accuracy`` (the out-models' accuracy)
    """
    correct, trained = _check(correct, trained)
    n_in = trained.sum(axis=0)
    n_out = (~trained).sum(axis=0)
    p_in = _mean((correct & trained).sum(axis=0), n_in)
    p_out = _mean((correct & ~trained).sum(axis=0), n_out)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(p_in * (1 - p_in) / n_in + p_out * (1 - p_out) / n_out)
    lower, upper = newcombe_interval(p_in, n_in, p_out, n_out)
    return pd.DataFrame(
        {
            "mem_score": p_in - p_out,
            "mem_se": se,
            "mem_lo": lower,
            "mem_hi": upper,
            "n_in": n_in.astype(np.int64),
            "n_out": n_out.astype(np.int64),
            "in_accuracy": p_in,
            "heldout_accuracy": p_out,
        }
    )


def influence(correct_test: np.ndarray, trained: np.ndarray) -> np.ndarray:
    """infl(i, j): accuracy on test example j of models that trained on i minus those that did not.

    Parameters
    ----------
    correct_test : bool (K, J), the models' correctness on the test examples
    trained : bool (K, I), the training subsets

    Returns
    -------
    float (I, J); NaN where i is in every model's subset or in none
    """
    c = np.asarray(correct_test, dtype=np.float64)
    t = np.asarray(trained, dtype=np.float64)
    if c.ndim != 2 or t.ndim != 2 or len(c) != len(t):
        raise ValueError(f"need (K, J) and (K, I) arrays of one K, got {c.shape} and {t.shape}")
    n_in = t.sum(axis=0)[:, None]
    n_out = len(t) - n_in
    hits_in = t.T @ c  # (I, J): models with i in the subset that get j right
    hits_out = c.sum(axis=0)[None, :] - hits_in
    return _mean(hits_in, n_in) - _mean(hits_out, n_out)


def top_influences(
    infl: np.ndarray, train_ids: np.ndarray, test_ids: np.ndarray, *, top: int = 5
) -> pd.DataFrame:
    """The `top` most influential training examples of every test example.

    Returns
    -------
    DataFrame: ``test_id``, ``rank`` (1 = most influential), ``train_id``, ``influence``
    """
    infl = np.where(np.isnan(infl), -np.inf, infl)
    top = min(top, infl.shape[0])
    order = np.argsort(-infl, axis=0, kind="stable")[:top]  # (top, J)
    values = np.take_along_axis(infl, order, axis=0)
    return pd.DataFrame(
        {
            "test_id": np.tile(np.asarray(test_ids), top),
            "rank": np.repeat(np.arange(1, top + 1), infl.shape[1]),
            "train_id": np.asarray(train_ids)[order].ravel(),
            "influence": np.where(np.isinf(values), np.nan, values).ravel(),
        }
    ).sort_values(["test_id", "rank"], ignore_index=True)


def c_scores(heldout: dict[float, np.ndarray]) -> pd.DataFrame:
    """Jiang et al.'s C-score from the held-out accuracy at several subset ratios.

    Parameters
    ----------
    heldout : subset ratio -> float (N,), each example's held-out accuracy

    Returns
    -------
    DataFrame, N rows: ``heldout_accuracy_r{ratio}`` per ratio and ``c_score``,
    their mean over the ratios where it is defined
    """
    if not heldout:
        raise ValueError("c_scores needs the held-out accuracy of at least one ratio")
    ratios = sorted(heldout)
    table = pd.DataFrame({f"heldout_accuracy_r{r:g}": heldout[r] for r in ratios})
    table["c_score"] = table.mean(axis=1, skipna=True)
    return table
