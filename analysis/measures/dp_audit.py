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
over thresholds and both tests, and 0 when nothing positive is proved (`epsilon_lower`).

Chosen and bounded on the same pairs, that largest bound overstates the confidence: it is
the best of ~10^5 thresholds, each bounded at `confidence` alone. So the bound an attack
reports (`split_epsilon`) is chosen on half of the target models and proved on the other
half: the threshold and the test (called, or the complementary one) of the largest bound
over the even-indexed targets' pairs, then the Clopper-Pearson bound at that one threshold
and test over the odd-indexed targets' pairs, so the reported bound is one test at
`confidence`, not the best of many. What remains: Clopper-Pearson assumes independent
trials, and the (target model, example) pairs are not. One example is attacked under
every target, one target's pairs share its training, and with the leave-one-model-out
evaluation each half's models are shadow or reference models of the other half's attacks.
Read the bound as a diagnostic next to the accountant's epsilon, not a certificate.
"""

from __future__ import annotations

import numpy as np

from memdash.analysis.measures.roc import roc

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
    from scipy.stats import beta  # a second to import: only where it is used

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
    """The largest epsilon an attack's ROC proves at `confidence` (0.0 when none), over its
    thresholds and both tests, chosen on the same pairs (`best_threshold`).

    Parameters
    ----------
    tp, fp : (T,) int, the members and non-members called members at each threshold of the
        exact ROC (`measures.roc.roc` times the counts)
    positives, negatives : the members and non-members attacked
    delta : the DP delta the bound is for, in [0, 1)
    confidence : the probability that each threshold's bound holds, in (0, 1)

    Returns
    -------
    float >= 0; higher = the attack proves the training less private.
    """
    return best_threshold(tp, fp, positives, negatives, delta=delta, confidence=confidence)[0]


def best_threshold(
    tp: np.ndarray,
    fp: np.ndarray,
    positives: int,
    negatives: int,
    *,
    delta: float = DELTA,
    confidence: float = CONFIDENCE,
) -> tuple[float, int, str]:
    """The threshold and test whose Clopper-Pearson bound on epsilon is the largest.

    Parameters
    ----------
    tp, fp, positives, negatives, delta, confidence : as for `epsilon_lower`

    Returns
    -------
    epsilon : float >= 0, that bound (0.0 when nothing positive is proved); higher = less
        private
    index : the threshold's index in `tp` and `fp`
    test : ``called`` (log((TPR_lo - delta) / FPR_hi)) or ``uncalled`` (the complementary
        test, log((1 - FPR_hi - delta) / (1 - TPR_lo)))
    """
    if not 0 <= delta < 1:
        raise ValueError(f"delta must lie in [0, 1), got {delta}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    tp, fp = np.asarray(tp, dtype=np.int64), np.asarray(fp, dtype=np.int64)
    if tp.shape != fp.shape or tp.ndim != 1 or positives < 1 or negatives < 1:
        raise ValueError("the ROC needs tp and fp of one shape and members and non-members both")
    if (tp < 0).any() or (tp > positives).any() or (fp < 0).any() or (fp > negatives).any():
        raise ValueError("tp and fp must be counts within the members and non-members")
    level = _level(confidence)
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
    best = _best(tp, fp, guess, positives, negatives, delta, level)
    rest = np.flatnonzero(optimistic > best[0])
    if rest.size:
        other = _best(tp, fp, rest, positives, negatives, delta, level)
        best = other if other[0] > best[0] else best
    return best


def split_epsilon(
    scores: np.ndarray,
    truth: np.ndarray,
    *,
    delta: float = DELTA,
    confidence: float = CONFIDENCE,
) -> float | None:
    """The epsilon an attack proves with its threshold chosen on half of the target models
    and its bound computed on the other half.

    The threshold and test of the largest bound over the even-indexed targets' pairs
    (`best_threshold`), then that one threshold's Clopper-Pearson bound over the
    odd-indexed targets' pairs. The pairs are not independent trials (see the module's
    docstring): the bound is a diagnostic, not a certificate.

    Parameters
    ----------
    scores : (T, E) float, each target model's score of each example, higher = judged a
        member (NaN: unscored, never called a member)
    truth : (T, E) bool, whether the target trained on the example
    delta, confidence : as for `epsilon_lower`

    Returns
    -------
    float >= 0 (0.0 when the chosen threshold proves nothing on the other half); higher =
    the attack proves the training less private. None when either half has no member or no
    non-member (nothing measured).
    """
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth, dtype=bool)
    if scores.ndim != 2 or scores.shape != truth.shape:
        raise ValueError(
            f"scores and truth must share one (T, E) shape: {scores.shape}, {truth.shape}"
        )
    scores = np.where(np.isnan(scores), -np.inf, scores)
    halves = [(scores[h::2], truth[h::2]) for h in (0, 1)]
    if any(not t.any() or t.all() for _, t in halves):
        return None
    (s, t), (s_check, t_check) = halves
    fpr, tpr, threshold = roc(s, t)
    positives, negatives = int(t.sum()), int((~t).sum())
    tp, fp = np.rint(tpr * positives), np.rint(fpr * negatives)
    chosen, index, test = best_threshold(
        tp, fp, positives, negatives, delta=delta, confidence=confidence
    )
    if chosen <= 0:
        return 0.0
    called = s_check >= threshold[index]
    at = np.arange(1)
    value, _, _ = _best(
        np.array([int((called & t_check).sum())]),
        np.array([int((called & ~t_check).sum())]),
        at,
        int(t_check.sum()),
        int((~t_check).sum()),
        delta,
        _level(confidence),
        tests=(test,),
    )
    return value


def _level(confidence: float) -> float:
    """Each rate's one-sided level, so that TPR's and FPR's bounds hold together."""
    return 1 - (1 - confidence) / 2


def _best(
    tp: np.ndarray,
    fp: np.ndarray,
    index: np.ndarray,
    positives: int,
    negatives: int,
    delta: float,
    level: float,
    *,
    tests: tuple[str, ...] = ("called", "uncalled"),
) -> tuple[float, int, str]:
    """The largest epsilon of `tests` at the thresholds `index`, with each rate's bound at
    `level`: (epsilon, its threshold's index, its test); (0.0, index[0], tests[0]) when none
    is positive."""
    tpr_lo = clopper_pearson(tp[index], positives, level=level, upper=False)
    fpr_hi = clopper_pearson(fp[index], negatives, level=level, upper=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        bounds = {
            "called": np.log((tpr_lo - delta) / fpr_hi),
            "uncalled": np.log((1 - fpr_hi - delta) / (1 - tpr_lo)),
        }
    proved = np.stack([bounds[t] for t in tests])
    proved = np.where(np.isfinite(proved), proved, -np.inf)
    which, at = np.unravel_index(int(np.argmax(proved)), proved.shape)
    if proved[which, at] <= 0:
        return 0.0, int(index[0]), tests[0]
    return float(proved[which, at]), int(index[at]), tests[which]
