"""Counterfactual memorization of text: how much better a model does on a sequence when the
sequence was in its training data than when it was not.

References
----------
Zhang, Ippolito, Lee, Jagielski, Tramer and Carlini 2021, "Counterfactual Memorization in
Neural Language Models". Train models on random subsets S of the training sequences; for a
sequence x and a measure M of a model f on x,

    mem(x) = E[M(f_S, x) | x in S] - E[M(f_S, x) | x not in S],

estimated by the mean over the models that trained on x minus the mean over those that did
not. The paper's M is the per-token accuracy (the share of x's tokens that are the model's
argmax given the tokens before them); memdash also gives M = the sequence's total
log-likelihood (nats). Higher = more memorized: the model does well on x only when it saw
it. The paper finds it high for rare, unconventional text and lower than one might expect
for text that is duplicated in the corpus (both halves of a split hold a copy). For a
sequence with several copies, each drawn into S on its own, "x in S" is its first copy's
membership (`ensemble.text_estimate` gives that as `member`). It is the
held-out memorization score of Feldman & Zhang 2020 (`heldout.mem_scores`) with a real-valued
M in place of correctness.

Uncertainty: ``cf_mem_*_se`` is the standard error of a difference of two independent means,
sqrt(var_in / n_in + var_out / n_out) with the sample variances (ddof = 1); NaN with fewer
than two models on a side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MEASURES = ("accuracy", "loglik")  # M: mean token accuracy, total log-likelihood (nats)


def in_out_means(
    values: np.ndarray, member: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per example, the mean of `values` over the models that trained on it and over those that
    did not, and the standard error of their difference.

    Parameters
    ----------
    values : float (K, N), model k's measure on example n (finite)
    member : bool (K, N), whether model k trained on example n

    Returns
    -------
    (in_mean, out_mean, se), each float64 (N,): NaN where no model is on that side (the se
    where fewer than two are on either side)
    """
    values = np.asarray(values, dtype=np.float64)
    member = np.asarray(member, dtype=bool)
    if values.ndim != 2 or values.shape != member.shape:
        raise ValueError(
            f"values and member must share one (K, N) shape, got {values.shape} and {member.shape}"
        )
    if not np.isfinite(values).all():
        bad = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(
            f"values must be finite; model {bad[0]}, example {bad[1]} is {values[tuple(bad)]}"
        )
    sides = []
    for side in (member, ~member):
        n = side.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(side, values, 0.0).sum(0) / n
            squares = np.where(side, (values - mean) ** 2, 0.0).sum(0)
            var = np.where(n > 1, squares / (n - 1), np.nan)
        sides.append((np.where(n > 0, mean, np.nan), var, n))
    (m_in, v_in, n_in), (m_out, v_out, n_out) = sides
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(v_in / n_in + v_out / n_out)
    return m_in, m_out, se


def counterfactual_table(
    accuracy: np.ndarray, loglik: np.ndarray, member: np.ndarray
) -> pd.DataFrame:
    """Counterfactual memorization of every sequence, by token accuracy and by log-likelihood.

    Parameters
    ----------
    accuracy : float (K, N), model k's mean token accuracy on sequence n, in [0, 1]
    loglik : float (K, N), model k's total log-likelihood of sequence n (nats, <= 0)
    member : bool (K, N), whether model k trained on sequence n (False for every model on
        sequences no model trains on, such as the test set)

    Returns
    -------
    DataFrame, N rows (row n = sequence n): ``cf_mem_accuracy`` and ``cf_mem_loglik`` (in mean
    minus out mean; higher = more memorized; NaN without models on both sides), their
    standard errors ``cf_mem_accuracy_se`` and ``cf_mem_loglik_se``, ``n_in``, ``n_out``
    (models that trained on it, and not), ``in_accuracy``, ``out_accuracy``, ``in_loglik``,
    ``out_loglik`` (the means on each side)
    """
    member = np.asarray(member, dtype=bool)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    if accuracy.shape == member.shape and ((accuracy < 0) | (accuracy > 1)).any():
        raise ValueError("accuracy must lie in [0, 1] (a share of tokens)")
    table: dict[str, np.ndarray] = {}
    means = {}
    for name, values in zip(MEASURES, (accuracy, loglik), strict=True):
        m_in, m_out, se = in_out_means(values, member)
        table[f"cf_mem_{name}"] = m_in - m_out
        table[f"cf_mem_{name}_se"] = se
        means[name] = (m_in, m_out)
    table["n_in"] = member.sum(0).astype(np.int64)
    table["n_out"] = (~member).sum(0).astype(np.int64)
    for name in MEASURES:
        table[f"in_{name}"], table[f"out_{name}"] = means[name]
    return pd.DataFrame(table)


FAILED_MADS = 10.0  # a model this many median absolute deviations below the rest failed


def failed_models(accuracy: np.ndarray, member: np.ndarray) -> np.ndarray:
    """The models of an estimate that did not learn: their mean token accuracy on their own
    training sequences lies more than `FAILED_MADS` median absolute deviations (of all the
    models' means) below the median model's, and below it by more than 0.05.

    A model that diverged (or never left its initialization) is not a sample of the trained
    models whose in-out difference counterfactual memorization averages: on whichever
    sequences it holds, it lowers the in-mean, and on the rest the out-mean, by as much as
    a trained model's whole memorization.

    Parameters
    ----------
    accuracy : (K, N) float, each model's mean token accuracy on each sequence
    member : (K, N) bool, whether model k trained on sequence n

    Returns
    -------
    (F,) int, the failed models' indices (ascending; empty when every model learned)
    """
    accuracy = np.asarray(accuracy, dtype=np.float64)
    member = np.asarray(member, dtype=bool)
    if accuracy.shape != member.shape or accuracy.ndim != 2:
        raise ValueError(f"accuracy and member must share one (K, N) shape: {accuracy.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        own = np.where(member, accuracy, 0.0).sum(1) / member.sum(1)
    median = np.nanmedian(own)
    spread = np.nanmedian(np.abs(own - median))
    low = median - np.maximum(FAILED_MADS * spread, 0.05)
    return np.flatnonzero(~(own >= low))
