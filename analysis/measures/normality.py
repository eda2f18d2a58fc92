"""LiRA's Gaussian assumption, checked per example.

References
----------
Carlini, Chien, Nasr, Song, Terzis and Tramer 2022, "Membership Inference Attacks From
First Principles": the attack fits a Gaussian to each example's logit-scaled confidence phi
over the shadow models that trained on it (IN) and over those that did not (OUT). Shapiro
and Wilk 1965, "An analysis of variance test for normality": the test used here, one per
example and side, over *all* the estimate's models on that side (not leaving a target out:
the question is the shape of the example's distribution, not one attack's fit).

A small p-value rejects normality; the share of examples rejected at `alpha` is what the
Privacy page shows. With thousands of examples some rejections are expected by chance alone
(about `alpha` of them when every example is Gaussian); no correction for many tests is
applied. phi is stored as float16, so a side whose values are all equal (a saturated
example) has no spread to test and gets NaN, as does a side with fewer than three values.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.stats import shapiro

ALPHA = 0.05
MIN_VALUES = 3  # Shapiro-Wilk's smallest sample


def shapiro_pvalues(values: np.ndarray, side: np.ndarray) -> np.ndarray:
    """Shapiro-Wilk's p-value of each example's values on `side`.

    Parameters
    ----------
    values : (K, N) float, each model's value (phi) on each example
    side : (K, N) bool, the models whose values are tested, per example

    Returns
    -------
    (N,) float in [0, 1]; lower = further from a Gaussian. NaN with fewer than three
    values or no spread. Examples with the same number of values are tested together
    (scipy's ``axis``), one call per count.
    """
    values = np.asarray(values, dtype=np.float64)
    side = np.asarray(side, dtype=bool)
    if values.ndim != 2 or values.shape != side.shape:
        raise ValueError(
            f"values and side must share one (K, N) shape: {values.shape}, {side.shape}"
        )
    count = side.sum(0)
    out = np.full(values.shape[1], np.nan)
    # each example's values on its side, packed to the top of its column
    order = np.argsort(~side, axis=0, kind="stable")
    packed = np.take_along_axis(values, order, axis=0)
    spread = np.zeros(values.shape[1], bool)
    for c in np.unique(count[count >= MIN_VALUES]):
        columns = np.flatnonzero(count == c)
        sample = packed[:c, columns]
        spread[columns] = np.ptp(sample, axis=0) > 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # range zero; n > 5000
            out[columns] = shapiro(sample, axis=0).pvalue
    return np.where(spread, out, np.nan)


def gaussian_check(
    values: np.ndarray, member: np.ndarray, *, alpha: float = ALPHA
) -> tuple[pd.DataFrame, dict]:
    """Shapiro-Wilk on each example's IN and OUT values, with the shares rejected.

    Parameters
    ----------
    values : (K, N) float, the attack's statistic (phi for a classifier)
    member : (K, N) bool, whether model k trained on example n
    alpha : the test's level, in (0, 1)

    Returns
    -------
    per_example : N rows: ``shapiro_in_p``, ``shapiro_out_p`` (NaN: fewer than three values
        or no spread), ``gaussian_rejected_in``, ``gaussian_rejected_out`` (p < alpha;
        False where there is no p-value)
    summary : ``alpha``; ``examples``, how many have a p-value on both sides; and over
        those, ``share_rejected_in`` and ``share_rejected_out`` (NaN when none)
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    member = np.asarray(member, dtype=bool)
    p_in, p_out = shapiro_pvalues(values, member), shapiro_pvalues(values, ~member)
    table = pd.DataFrame(
        {
            "shapiro_in_p": p_in,
            "shapiro_out_p": p_out,
            "gaussian_rejected_in": p_in < alpha,
            "gaussian_rejected_out": p_out < alpha,
        }
    )
    both = ~(np.isnan(p_in) | np.isnan(p_out))
    shares = {
        f"share_rejected_{s}": float(table[f"gaussian_rejected_{s}"][both].mean())
        if both.any()
        else float("nan")
        for s in ("in", "out")
    }
    return table, {"alpha": alpha, **shares, "examples": int(both.sum())}
