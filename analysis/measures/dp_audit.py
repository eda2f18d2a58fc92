"""The empirical lower bound on epsilon that a membership attack's ROC proves.

References
----------
Jagielski, Ullman and Oprea 2020, "Auditing Differentially Private Machine Learning: How
Private is Private SGD?"; Nasr, Song, Thakurta, Papernot and Carlini 2021, "Adversary
Instantiation: Lower Bounds for Differentially Private Machine Learning". A mechanism that
is (epsilon, delta)-DP bounds every membership test: TPR <= e^epsilon FPR + delta, and, for
the complementary test (call a non-member below the threshold), TNR <= e^epsilon FNR +
delta. So each threshold of an attack's ROC proves

    epsilon >= log((TPR - delta) / FPR)   and   epsilon >= log((1 - FPR - delta) / (1 - TPR)).

With finitely many trials the rates are estimates, so each is replaced by its Clopper-Pearson
bound on the pessimistic side: in the first ratio the lower bound of TPR over the upper
bound of FPR; in the second the lower bound of the true-negative rate, 1 - FPR_hi, over
the upper bound of the false-negative rate, 1 - TPR_lo. (The rates' other bounds,
1 - FPR_lo over 1 - TPR_hi, would overstate the proof.) Both bounds are one-sided, each at
level 1 - (1 - confidence) / 2, so TPR's and FPR's hold together with probability at least
`confidence` (the union bound; the same as the two-sided Clopper-Pearson interval at
`confidence` that Jagielski et al.'s code takes from statsmodels). The bound is the largest
over thresholds and both tests, and 0 when nothing positive is proved. It is one pooled
guess over every (target model, example) pair, as memdash's attacks are evaluated: the
trials are not the independent ones of a formal audit, so read it as a diagnostic next to
the accountant's epsilon, not a certificate.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import beta

DELTA = 1e-5  # the delta of a run trained without DP
CONFIDENCE = 0.95
GUESSES = 64  # thresholds bounded exactly before the rest are pruned (`epsilon_lower`)


def clopper_pearson(successes: np.ndarray, trials: int, *, level: float, upper: bool) -> np.ndarray:
    """One-sided Clopper-Pearson bound of a binomial rate, at `level`.

    Parameters
    ----------
    successes : (T,) int counts out of `trials`
    level : the bound's confidence, in (0, 1)
    upper : the upper bound (1 at successes = trials) or the lower (0 at successes = 0)

    Returns
    -------
    (T,) float in [0, 1]
    """
    k = np.asarray(successes, dtype=np.float64)
    if upper:
        with np.errstate(invalid="ignore"):
            bound = beta.ppf(level, k + 1, trials - k)
        return np.where(k >= trials, 1.0, bound)
    with np.errstate(invalid="ignore"):
        bound = beta.ppf(1 - level, k, trials - k + 1)
    return np.where(k <= 0, 0.0, bound)


def epsilon_lower(
    tp: np.ndarray,
    fp: np.ndarray,
    positives: int,
    negatives: int,
    *,
    delta: float = DELTA,
    confidence: float = CONFIDENCE,
) -> float:
    """The largest epsilon an attack's ROC proves at `confidence` (0.0 when none).

    Parameters
    ----------
    tp, fp : (T,) int, the members and non-members called members at each threshold of the
        exact ROC (`measures.membership.roc` times the counts)
    positives, negatives : the members and non-members attacked
    delta : the DP delta the bound is for, in [0, 1)
    confidence : the probability that the bound holds, in (0, 1)

    Returns
    -------
    float >= 0; higher = the attack proves the training less private.
    """
    if not 0 <= delta < 1:
        raise ValueError(f"delta must lie in [0, 1), got {delta}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    tp, fp = np.asarray(tp, dtype=np.int64), np.asarray(fp, dtype=np.int64)
    if tp.shape != fp.shape or positives < 1 or negatives < 1:
        raise ValueError("the ROC needs tp and fp of one shape and members and non-members both")
    if (tp < 0).any() or (tp > positives).any() or (fp < 0).any() or (fp > negatives).any():
        raise ValueError("tp and fp must be counts within the members and non-members")
    level = 1 - (1 - confidence) / 2
    # Clopper-Pearson is slow on the ~10^5 thresholds of a pooled ROC: bound each threshold
    # first by its point rates (a bound at level > 1/2 lies beyond its point estimate, and
    # no FPR_hi is below that of 0 non-members, no 1 - TPR_lo below that of all members),
    # then compute the exact bounds only where that optimistic value beats a first guess.
    floor_fpr = float(clopper_pearson(np.array([0]), negatives, level=level, upper=True)[0])
    floor_fnr = 1 - float(
        clopper_pearson(np.array([positives]), positives, level=level, upper=False)[0]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        optimistic = np.maximum(
            np.log((tp / positives - delta) / np.maximum(fp / negatives, floor_fpr)),
            np.log((1 - fp / negatives - delta) / np.maximum(1 - tp / positives, floor_fnr)),
        )
    optimistic = np.where(np.isnan(optimistic), -np.inf, optimistic)
    guess = np.unique(np.r_[np.argsort(-optimistic)[:GUESSES], 0, len(tp) - 1])
    best = _proved(tp[guess], fp[guess], positives, negatives, delta, level)
    rest = optimistic > best
    if rest.any():
        best = max(best, _proved(tp[rest], fp[rest], positives, negatives, delta, level))
    return best


def _proved(
    tp: np.ndarray, fp: np.ndarray, positives: int, negatives: int, delta: float, level: float
) -> float:
    """The largest epsilon of both tests at these thresholds, with each rate's bound at
    `level` (0.0 when none is positive)."""
    tpr_lo = clopper_pearson(tp, positives, level=level, upper=False)
    fpr_hi = clopper_pearson(fp, negatives, level=level, upper=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        called = np.log((tpr_lo - delta) / fpr_hi)
        uncalled = np.log((1 - fpr_hi - delta) / (1 - tpr_lo))
    proved = np.r_[called, uncalled]
    proved = proved[np.isfinite(proved)]
    return float(max(proved.max(), 0.0)) if proved.size else 0.0
