"""The exact ROC of a membership attack and what is read off it: the area under it, the TPR
at a low FPR, the threshold of an FPR and a log-spaced thinning for storage.

References
----------
Carlini, Chien, Nasr, Song, Terzis and Tramer 2022, "Membership Inference Attacks From
First Principles": report the ROC on log-log axes and the TPR at a low FPR (0.1%, 1%), not
only the AUC. Every function here works on pooled (target model, example) pairs: a pair is
called a member when its score is at least the threshold; higher score = judged a member.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def roc(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exact ROC of a score over pooled pairs.

    Parameters
    ----------
    scores : (...) float, higher = judged a member
    truth : (...) bool, the same shape: whether each pair is a member

    Returns
    -------
    fpr, tpr, threshold : (D + 1,) each, at every distinct score (D of them) from (0, 0,
        inf) to (1, 1, lowest score); a pair is called a member when its score >= threshold.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    truth = np.asarray(truth, dtype=bool).ravel()
    order = np.argsort(-scores)  # ties are grouped below, so the sort need not be stable
    s, t = scores[order], truth[order]
    last = np.r_[s[1:] != s[:-1], True]  # the last pair of each run of tied scores
    tp = np.cumsum(t)[last]
    fp = np.cumsum(~t)[last]
    positives, negatives = max(int(t.sum()), 1), max(int((~t).sum()), 1)
    return (
        np.r_[0.0, fp / negatives],
        np.r_[0.0, tp / positives],
        np.r_[np.inf, s[last]],
    )


def auc(scores: np.ndarray, truth: np.ndarray) -> float:
    """The area under the ROC: Pr[a member outscores a non-member], ties counting half.

    Parameters
    ----------
    scores, truth : as for `roc`

    Returns
    -------
    float in [0, 1]; higher = a stronger attack (0.5: no better than chance).
    """
    fpr, tpr, _ = roc(scores, truth)
    return roc_area(fpr, tpr)


def roc_area(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """The area under an exact ROC (`roc`): trapezoids between its vertices, which count a
    tied member and non-member as half a win (the Mann-Whitney statistic); higher = a
    stronger attack."""
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def tpr_at(fpr: np.ndarray, tpr: np.ndarray, alpha: float) -> float:
    """The highest TPR of an ROC whose FPR does not exceed `alpha` (higher = stronger)."""
    return float(tpr[fpr <= alpha].max())


def threshold_at(fpr: np.ndarray, threshold: np.ndarray, alpha: float) -> float:
    """The lowest threshold whose FPR does not exceed `alpha` (calls at score >= it)."""
    return float(threshold[fpr <= alpha][-1])


def log_grid(fpr: np.ndarray, tpr: np.ndarray, points: int = 400) -> pd.DataFrame:
    """An ROC thinned for storage and drawing on log-log axes.

    Parameters
    ----------
    fpr, tpr : (D,) an exact ROC (`roc`)
    points : the most FPRs kept

    Returns
    -------
    ``fpr``, ``tpr``: at FPRs spaced evenly in log from the smallest non-zero FPR to 1, the
    highest TPR reached at or below each.
    """
    smallest = fpr[fpr > 0].min() if (fpr > 0).any() else 1.0
    grid = np.unique(np.geomspace(smallest, 1.0, points))
    best = np.maximum.accumulate(tpr)
    at = np.searchsorted(fpr, grid, side="right") - 1
    return pd.DataFrame({"fpr": grid, "tpr": best[at]})
