"""How well a single-run score finds what the held-out ensemble finds: the proxies' scoreboard.

Researchers who cannot train hundreds of models rank examples by single-run proxies of
memorization (learning speed and forgetting, Toneva et al. 2019 and Jiang et al. 2021; the
data map; AUM; loss sensitivity, Arpit et al. 2017; k-NN disagreement; the units needed to flip
a prediction, Maini et al. 2023; input-loss curvature, Garg, Roy et al. 2023; second-split
forgetting time, Maini et al. 2022). Each proxy is compared with the held-out memorization
score of Feldman & Zhang 2020 (higher = more memorized) by

- Spearman's rank correlation over the examples both have, with a percentile bootstrap
  interval (examples resampled with replacement; ties take their mean rank, as in
  `scipy.stats.spearmanr`);
- AUROC for planted examples (flipped labels, canaries) against clean ones (Mann-Whitney, ties
  count one half, as `sklearn.metrics.roc_auc_score`);
- precision among the top share by the ensemble: of the examples a proxy ranks in its top
  share, the fraction also in the ensemble's top share (examples tied at either boundary
  count by the fraction of them that fits, the expected value under random tie-breaking).

Every proxy enters oriented so that higher = its flagged end (the memorized end of a
memorization score, the hard, atypical end of any other), as the label dictionary
(`measures.directions`) says; `orient` does it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from memdash.analysis.measures.directions import HIGHER, flagged_end

COLUMNS = (
    *("proxy", "direction", "n", "spearman", "spearman_lo", "spearman_hi"),
    *("auroc_flipped", "auroc_canary", "precision_top"),
)


def orient(score: str, values: np.ndarray) -> np.ndarray:
    """`values` of `score` as float64 with its flagged end high (negated for a score flagged
    low, e.g. confidence or SSFT). Raises ValueError for a score the dictionary lacks."""
    end = flagged_end(score)
    if end is None:
        raise ValueError(f"{score!r} has no direction in measures.directions.DIRECTIONS")
    values = np.asarray(values, dtype=np.float64)
    return values if end == HIGHER else -values


def midranks(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each element's rank among a weighted sample, ties at their mean rank.

    Parameters
    ----------
    values : (n,) the distinct elements' values
    counts : (B, n) how many times each element is drawn in each of B samples

    Returns
    -------
    (B, n) float64: the rank (1-based) each element's copies share within sample b, i.e.
    `scipy.stats.rankdata` of the sample with ties averaged (an element drawn 0 times gets
    the rank it would have had; its weight in any statistic is 0).
    """
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    group = np.cumsum(np.r_[True, sorted_values[1:] != sorted_values[:-1]]) - 1
    totals = np.add.reduceat(counts[:, order], starts, axis=1)  # (B, groups)
    before = np.cumsum(totals, axis=1) - totals
    rank_sorted = (before + (totals + 1) / 2)[:, group]
    out = np.empty_like(rank_sorted)
    out[:, order] = rank_sorted
    return out


def _weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row's (x, y) pairs with weights w (B, n)."""
    total = w.sum(axis=1, keepdims=True)
    mx = (w * x).sum(axis=1, keepdims=True) / total
    my = (w * y).sum(axis=1, keepdims=True) / total
    dx, dy = x - mx, y - my
    cov = (w * dx * dy).sum(axis=1)
    var = np.sqrt((w * dx * dx).sum(axis=1) * (w * dy * dy).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var > 0, cov / np.where(var > 0, var, 1.0), np.nan)


def bootstrap_counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) int counts of each element in n_boot resamples of n with replacement: the
    resamples of ``np.random.default_rng(seed).integers(0, n, (n_boot, n))``."""
    draws = np.random.default_rng(seed).integers(0, n, (n_boot, n))
    rows = np.repeat(np.arange(n_boot), n)
    return np.bincount(rows * n + draws.ravel(), minlength=n_boot * n).reshape(n_boot, n)


def spearman_interval(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    _cache: dict | None = None,
) -> tuple[float, float, float]:
    """Spearman's rho of (x, y) and its percentile bootstrap interval.

    Parameters
    ----------
    x, y : (n,) finite values (the caller drops examples either lacks)
    n_boot : resamples (`bootstrap_counts` of `seed`); level : the interval's coverage

    Returns
    -------
    (rho, low, high); NaN where a sample is constant. Each resample's rho equals
    `scipy.stats.spearmanr` of the resampled pairs, computed without sorting each resample:
    ranks within a resample follow from the original order and the draw counts (`midranks`).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} values, y {len(y)}")
    if len(x) < 3:
        return (np.nan, np.nan, np.nan)
    ones = np.ones((1, len(x)))
    rho = float(_weighted_pearson(midranks(x, ones), midranks(y, ones), ones)[0])
    key = (len(y), y.tobytes(), n_boot, seed)  # y and its resamples' ranks, shared by proxies
    if _cache is None or key not in _cache:
        counts = bootstrap_counts(len(x), n_boot, seed).astype(np.float64)
        found = (counts, midranks(y, counts))
        if _cache is not None:
            _cache.clear()
            _cache[key] = found
    else:
        found = _cache[key]
    counts, y_ranks = found
    rhos = _weighted_pearson(midranks(x, counts), y_ranks, counts)
    rhos = rhos[np.isfinite(rhos)]
    if not len(rhos):
        return (rho, np.nan, np.nan)
    tail = (1 - level) / 2
    low, high = np.quantile(rhos, [tail, 1 - tail])
    return (rho, float(low), float(high))


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """The area under the ROC curve of `score` (higher = positive) for the bool labels
    `positive`, ties counted one half (Mann-Whitney U / (n_pos n_neg)); NaN without both
    classes."""
    score = np.asarray(score, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return np.nan
    ranks = midranks(score, np.ones((1, len(score))))[0]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def top_weights(score: np.ndarray, k: int) -> np.ndarray:
    """(n,) the share of each example in the top `k` by `score` (higher first): 1 above the
    k-th value, 0 below it, and for the examples tied at it the fraction of them that fits."""
    score = np.asarray(score, dtype=np.float64)
    kth = np.sort(score)[::-1][k - 1]
    above, tied = score > kth, score == kth
    return above + tied * ((k - above.sum()) / tied.sum())


def precision_at_top(score: np.ndarray, reference: np.ndarray, *, share: float = 0.05) -> float:
    """Of the top `share` of examples by `score`, the fraction in the top `share` by
    `reference` (both higher first; k = max(1, round(share * n)); ties by `top_weights`)."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    k = max(1, round(share * len(score)))
    return float((top_weights(score, k) * top_weights(reference, k)).sum() / k)


def scoreboard(
    proxies: dict[str, np.ndarray],
    mem: np.ndarray | None,
    flipped: np.ndarray,
    canary: np.ndarray,
    *,
    share: float = 0.05,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """The proxies compared with the ensemble's score and with the planted examples.

    Parameters
    ----------
    proxies : name -> (n,) values over the same n trained examples, NaN where a proxy has
        none (e.g. the units to flip, computed for a sample); each is oriented by `orient`
        (the name's base, before ``@``, must be in the direction dictionary)
    mem : (n,) the held-out memorization score (higher = more memorized), NaN where it has
        none, or None without an estimate (then Spearman and precision are NaN)
    flipped, canary : (n,) bool, the planted examples; the AUROCs compare each with the
        examples that are neither
    share : the top share for precision; n_boot, level, seed : Spearman's bootstrap

    Returns
    -------
    One row per proxy (`COLUMNS`): ``direction`` the flagged end used ("higher"/"lower"),
    ``n`` the examples with both the proxy and the score (with the proxy alone without an
    estimate), Spearman with its interval, the two AUROCs, ``precision_top``; ranked by
    Spearman (by the flipped AUROC without an estimate), best first.
    """
    flipped, canary = np.asarray(flipped, dtype=bool), np.asarray(canary, dtype=bool)
    clean = ~flipped & ~canary
    rows, cache = [], {}  # the ensemble's resampled ranks, computed once per set of examples
    for name, raw in proxies.items():
        x = orient(name.split("@")[0], raw)
        has = np.isfinite(x)
        row = {"proxy": name, "direction": flagged_end(name), "n": int(has.sum())}
        if mem is not None:
            both = has & np.isfinite(mem)
            row["n"] = int(both.sum())
            rho = spearman_interval(
                x[both], mem[both], n_boot=n_boot, level=level, seed=seed, _cache=cache
            )
            row |= dict(zip(("spearman", "spearman_lo", "spearman_hi"), rho, strict=True))
            row["precision_top"] = (
                precision_at_top(x[both], mem[both], share=share) if both.any() else np.nan
            )
        for what, planted in (("flipped", flipped), ("canary", canary)):
            pick = has & (planted | clean)
            row[f"auroc_{what}"] = auroc(x[pick], planted[pick])
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    key = "spearman" if mem is not None else "auroc_flipped"
    return table.sort_values(key, ascending=False, na_position="last", kind="stable").reset_index(
        drop=True
    )
