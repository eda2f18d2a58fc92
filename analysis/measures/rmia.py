"""The robust membership inference attack (RMIA) on the models of an estimate.

References
----------
Zarifzadeh, Liu, Mahloujifar and Shokri 2024, "Low-Cost High-Power Membership Inference
Attacks" (ICML). With p(x|theta) the target model's probability of x (for a classifier the
probability of x's label, sigmoid(phi); for a language model the sequence's likelihood),
p(x) the same probability under the reference models, and z a population of non-members,

    LR(x, z) = (p(x|theta) / p(x)) / (p(z|theta) / p(z)),
    score(x) = Pr_z[LR(x, z) >= gamma]        (gamma = 1 by default).

Higher = judged a member. Everything here works on log-probabilities, so a sequence's total
log-likelihood (far below any float's smallest probability) serves as well as a label's
log-probability: LR(x, z) >= gamma is log p(x|theta) - log p(x) >= log p(z|theta) - log p(z)
+ log gamma, and the mean probabilities p(x) are log-mean-exps.

As with LiRA (`measures.membership`), each model of an estimate is the target in turn and the
other models are its reference models (leave one model out). Target k's population z is
every example k did not train on (the training examples left out of its subset and the test
examples), other than x itself, with p(z) from the same reference models. Every target's
shares come from one argsort of the (target, example) ratios along the examples: a running
count of the population through each target's sorted ratios, read at the last of each run
of tied ratios (gamma = 1) or where ``searchsorted`` puts ratio(x) - log gamma.

- Online RMIA: p(x) is the reference models' mean probability balanced between the models
  that trained on x and those that did not, (mean over IN + mean over OUT) / 2. The paper's
  reference models train on random halves, so their plain mean is that balanced mean; an
  estimate's subsets hold 70% of the training set, and a plain mean would weigh the IN
  models 7:3. Where an example has reference models on one side only, p(x) is that side's
  mean.
- Offline RMIA (OUT models only): p(x) = ((1 + a) p_OUT(x) + (1 - a)) / 2, the paper's linear
  approximation of the IN probability from the OUT one, with p_OUT(x) the mean over the
  reference models that did not train on x (NaN where there is none: the example is not
  scored). The same formula gives p(z). `a` is chosen as the paper does, by attacking a
  reference model with the others (`choose_a`): the model is attacked with every other
  model as a reference, for each a of `A_GRID` (0, 0.05, ..., 1), and the a of the highest
  AUC is kept (the smallest one on a tie), so the choice is deterministic. The paper tunes
  a on a reference model only, never on the target, whose membership is what the attack
  guesses (`offline_a`): every target but model 0 uses the a tuned on model 0 (model 0 is
  only one of their reference models); target 0 uses the a tuned on model 1 with model 0
  left out of the references. For text the constant (1 - a) / 2 dwarfs a sequence's
  probability unless a is near 1, so the search settles there.
"""

from __future__ import annotations

import numpy as np

from memdash.analysis.measures.roc import auc

A_GRID = np.round(np.linspace(0.0, 1.0, 21), 2)  # the offline a tried by `choose_a`
FALLBACK_A = 0.5  # the grid's midpoint: the offline a where no model is left to choose it
SIDES = ("in", "out")
UNDERFLOW = 1e-280  # a scaled sum below this is summed again in log space (`loo_log_mean`)


def log_prob_label(phi: np.ndarray) -> np.ndarray:
    """log p of the label from phi = log(p / (1 - p)): log sigmoid(phi), stably.

    Parameters
    ----------
    phi : (...) float, the logit-scaled confidence LiRA uses

    Returns
    -------
    (...) float64, at most 0; higher = more confident.
    """
    out = np.array(phi, dtype=np.float64)  # one copy, then in place
    np.negative(out, out=out)
    np.logaddexp(0.0, out, out=out)
    return np.negative(out, out=out)


def loo_log_mean(log_p: np.ndarray, side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log of the mean probability over the models on `side` of each example, leaving the
    target model out.

    Exact without a subtraction: each example's probabilities are scaled by its largest,
    and target k's sum is the prefix sum before k plus the suffix sum after it; the target
    holding the largest is summed again where the others would underflow against it.

    Parameters
    ----------
    log_p : (K, N) float, each model's log-probability of each example
    side : (K, N) bool, the models counted for each example

    Returns
    -------
    log_mean : (K, N), for target k and example n the log of the mean of p over the other
        models on n's side; NaN where there is none
    count : (K, N) int64, how many models that mean is over
    """
    scaled = np.where(side, log_p, -np.inf)  # shifted and exponentiated in place
    k = len(scaled)
    largest = scaled.max(axis=0)
    shift = np.where(np.isfinite(largest), largest, 0.0)
    scaled -= shift
    np.exp(scaled, out=scaled)
    total = np.zeros_like(scaled)  # target k: the sum before k, then the sum after it
    for j in range(1, k):  # row by row: 3x faster than cumsum down a C-ordered axis 0
        np.add(total[j - 1], scaled[j - 1], out=total[j])
    for j in range(k - 2, -1, -1):  # scaled[j] becomes the sum from j on
        scaled[j] += scaled[j + 1]
    total[:-1] += scaled[1:]
    # tiny against the largest: only its target's sum can be (every other one counts its 1)
    lost = np.flatnonzero(np.fmin.reduce(total, axis=0) < UNDERFLOW)
    count = side.sum(0) - side
    with np.errstate(divide="ignore", invalid="ignore"):
        np.log(total, out=total)
        total += shift
        if lost.size:
            rest = np.where(side[:, lost], log_p[:, lost], -np.inf)
            top = np.argmax(rest, axis=0)
            rest[top, np.arange(lost.size)] = -np.inf
            total[top, lost] = np.logaddexp.reduce(rest, axis=0)
        total -= np.log(np.arange(k + 1.0)).take(count)  # log of each count, looked up
    total[count == 0] = np.nan
    return total, count


def balanced(log_in: np.ndarray, log_out: np.ndarray) -> np.ndarray:
    """log((p_IN + p_OUT) / 2), or the one side that exists (NaN where neither does)."""
    with np.errstate(invalid="ignore"):
        both = np.asarray(np.logaddexp(log_in, log_out))
    both -= np.log(2.0)
    np.copyto(both, log_in, where=np.isnan(log_out))
    np.copyto(both, log_out, where=np.isnan(log_in))
    return both


def linear_offline(log_out: np.ndarray, a: float | np.ndarray) -> np.ndarray:
    """log(((1 + a) p_OUT + (1 - a)) / 2), the paper's offline p(x) (NaN stays NaN); `a` a
    number or an array broadcast against `log_out` (e.g. (T, 1): one a per target)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        constant = np.log(1.0 - a)  # -inf at a = 1: p(x) = p_OUT(x)
        out = np.asarray(np.log1p(a) + log_out)
        np.logaddexp(out, constant, out=out)
    out -= np.log(2.0)
    return out


def pairwise_share(
    log_target: np.ndarray,
    log_reference: np.ndarray,
    population: np.ndarray,
    *,
    gamma: float = 1.0,
) -> np.ndarray:
    """RMIA's score: for each target and example x, the share of the target's population z
    (other than x) with LR(x, z) >= gamma.

    Parameters
    ----------
    log_target : (T, N) float, log p(x|theta) of each target model
    log_reference : (T, N) float, log p(x) from that target's reference models (NaN: no
        reference; such an x is not scored and is no z)
    population : (T, N) bool, the non-members each target draws z from
    gamma : the likelihood-ratio threshold (> 0)

    Returns
    -------
    (T, N) float in [0, 1]; higher = judged a member. NaN where x has no reference or the
    population holds no other z.
    """
    ratio = np.asarray(log_target, dtype=np.float64) - log_reference
    pool = np.asarray(population, dtype=bool) & np.isfinite(ratio)
    t, n = ratio.shape
    flat = np.argsort(ratio, axis=1)  # one sort of every target's ratios (NaN last) ...
    flat += n * np.arange(t)[:, None]  # ... and where in ratio.flat each sorted one lies
    ranked, joined = ratio.take(flat), pool.take(flat)
    below = _pool_upto(ranked, joined, np.log(gamma))
    below -= joined & (gamma <= 1.0)  # x in its own population counts itself: drop it
    others = pool.sum(1, keepdims=True, dtype=np.int32) - joined
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.divide(below, others)
    share[~np.isfinite(ranked) | (others <= 0)] = np.nan
    np.put(ratio, flat, share)  # back in the examples' order
    return ratio


def _pool_upto(ranked: np.ndarray, joined: np.ndarray, log_gamma: float) -> np.ndarray:
    """For each row's ascending (NaN last) values v, how many of those in the population
    (`joined`) are <= v[j] - log_gamma: the running count at the end of v[j]'s run of ties
    when log_gamma = 0, else at one ``searchsorted`` per row (its cuts ascending too, which
    numpy's search exploits)."""
    if log_gamma != 0.0:
        so_far = np.zeros((len(ranked), ranked.shape[1] + 1), dtype=np.int32)
        np.cumsum(joined, axis=1, out=so_far[:, 1:])
        upto = np.empty(ranked.shape, dtype=np.intp)
        for v, row in zip(ranked, upto, strict=True):
            row[:] = np.searchsorted(v, v - log_gamma, side="right")
        return np.take_along_axis(so_far, upto, axis=1)
    so_far = np.cumsum(joined, axis=1, dtype=np.int32)  # 7x faster than int64
    tied = ranked[:, 1:] == ranked[:, :-1]  # not the last of its run of equal values
    np.copyto(so_far[:, :-1], np.iinfo(np.int32).max, where=tied)
    backward = so_far[:, ::-1]
    return np.minimum.accumulate(backward, axis=1, out=backward)[:, ::-1]


def rmia_scores(
    log_p: np.ndarray,
    member: np.ndarray,
    *,
    offline: bool,
    a: float | np.ndarray | None = None,
    gamma: float = 1.0,
    population: np.ndarray | None = None,
) -> np.ndarray:
    """Leave-one-model-out RMIA: each model the target, the others its reference models.

    Parameters
    ----------
    log_p : (K, N) float, each model's log-probability of each example (log sigmoid(phi)
        for a classifier, `log_prob_label`; a sequence's log-likelihood for text)
    member : (K, N) bool, whether model k trained on example n
    offline : use only the reference models that did not train on x (and z)
    a : offline RMIA's a in [0, 1]: one for every target, (K,) one per target, or None:
        each target's from `offline_a` (tuned on a reference model, never on the target)
    gamma : the likelihood-ratio threshold (> 0)
    population : (K, N) bool, the examples each target draws z from (default: the ones it
        did not train on, ~member)

    Returns
    -------
    (K, N) float in [0, 1]; higher = judged a member. NaN where an example has no reference
    model (offline: no OUT reference model).
    """
    log_p, member = _checked(log_p, member)
    if gamma <= 0 or not np.isfinite(gamma):
        raise ValueError(f"gamma must be a positive number, got {gamma}")
    population = ~member if population is None else np.asarray(population, dtype=bool)
    if population.shape != member.shape:
        raise ValueError(f"population must be {member.shape}, got {population.shape}")
    log_out, _ = loo_log_mean(log_p, ~member)
    if offline:
        reference = linear_offline(log_out, _per_target(log_p, member, a)[:, None])
    else:
        log_in, _ = loo_log_mean(log_p, member)
        reference = balanced(log_in, log_out)
    return pairwise_share(log_p, reference, population, gamma=gamma)


def choose_a(
    log_p: np.ndarray,
    member: np.ndarray,
    *,
    target: int = 0,
    grid: np.ndarray = A_GRID,
) -> float:
    """Offline RMIA's a, as the paper chooses it: model `target` attacked with every other
    model as a reference (offline, gamma = 1), for each a of `grid`; the a of the highest
    AUC over the examples it can score (the smallest such a on a tie). With one model,
    or no scored example both held and not held by it, `FALLBACK_A`. Every a of the grid is
    scored in one `pairwise_share`, a row each.

    Parameters
    ----------
    log_p, member : (K, N), as for `rmia_scores`
    target : the model attacked
    grid : the values of a tried, in [0, 1]
    """
    log_p, member = _checked(log_p, member)
    if not 0 <= target < len(log_p):
        raise ValueError(f"target must be a model index in [0, {len(log_p)}), got {target}")
    grid = np.asarray(grid, dtype=np.float64)
    if grid.size == 0 or ((grid < 0) | (grid > 1)).any():
        raise ValueError("the grid of a must be non-empty and lie in [0, 1]")
    side = ~member
    side[target] = False  # its -inf adds nothing, exactly, to the others' logaddexp
    log_out = log_mean(log_p, side)
    truth = member[target]
    scored = np.isfinite(log_out)
    if len(log_p) == 1 or truth[scored].all() or not truth[scored].any():
        return FALLBACK_A
    each = np.broadcast_to(log_p[target], (grid.size, truth.size))
    shares = pairwise_share(each, linear_offline(log_out, grid[:, None]), ~truth)
    aucs = [auc(share[scored], truth[scored]) for share in shares]
    return float(grid[int(np.argmax(aucs))])


def offline_a(log_p: np.ndarray, member: np.ndarray) -> tuple[float, float]:
    """Offline RMIA's a of each target, tuned on a reference model, never on the target.

    Parameters
    ----------
    log_p, member : (K, N), as for `rmia_scores`

    Returns
    -------
    a_rest : the a of targets 1 .. K - 1: `choose_a` attacking model 0 with every other
        model as a reference
    a_first : the a of target 0: `choose_a` attacking model 1 with models 2 .. K - 1 as
        references (model 0 left out; `FALLBACK_A` with fewer than three models)
    """
    log_p, member = _checked(log_p, member)
    a_rest = choose_a(log_p, member, target=0)
    a_first = choose_a(log_p[1:], member[1:], target=0) if len(log_p) > 1 else FALLBACK_A
    return a_rest, a_first


def rmia_attack_scores(
    phi: np.ndarray,
    member: np.ndarray,
    *,
    attacks: tuple[str, ...] = ("rmia", "rmia_offline"),
    log_p: np.ndarray | None = None,
    a: float | None = None,
    gamma: float = 1.0,
) -> tuple[dict[str, np.ndarray], dict]:
    """The RMIA attacks of `measures.membership.membership_tables`, by name.

    Parameters
    ----------
    phi : (K, N) float, the classifier's confidence (log p = log sigmoid(phi) when `log_p`
        is None)
    member : (K, N) bool
    attacks : the names asked for; ``rmia`` and ``rmia_offline`` are run, others ignored
    log_p : (K, N) float, the log-probabilities to compare (text: sequence log-likelihoods)

    Returns
    -------
    scores : attack name -> (K, N), higher = judged a member
    summary : ``rmia_a`` (offline's a of every target but model 0, None when it did not
        run), ``rmia_a_target0`` (model 0's a) and ``rmia_gamma``
    """
    log_p = log_prob_label(phi) if log_p is None else log_p
    log_p, member = _checked(log_p, member)
    scores = {}
    if "rmia" in attacks:
        scores["rmia"] = rmia_scores(log_p, member, offline=False, gamma=gamma)
    chosen: tuple[float | None, float | None] = (None, None)
    if "rmia_offline" in attacks:
        chosen = offline_a(log_p, member) if a is None else (_checked_a(a),) * 2
        each = np.full(len(log_p), chosen[0])
        each[0] = chosen[1]
        scores["rmia_offline"] = rmia_scores(log_p, member, offline=True, a=each, gamma=gamma)
    summary = {"rmia_a": chosen[0], "rmia_a_target0": chosen[1], "rmia_gamma": float(gamma)}
    return scores, summary


def log_mean(log_p: np.ndarray, side: np.ndarray) -> np.ndarray:
    """log of the mean probability over the models on `side` of each example (what
    `loo_log_mean` gives a phantom target on no side, but a running `logaddexp` here is
    four times faster on 256 models, and `choose_a` calls it for every estimate).

    Parameters
    ----------
    log_p : (K, N) float, log-probabilities
    side : (K, N) bool, the models counted for each example

    Returns
    -------
    (N,) float, NaN where no model is on the side.
    """
    side = np.asarray(side, dtype=bool)
    total = np.full(side.shape[1:], -np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        for row, on in zip(np.asarray(log_p), side, strict=True):  # logaddexp.reduce's
            np.logaddexp(total, row, out=total, where=on)  # order, skipping the side's -inf
        count = side.sum(0)
        total -= np.log(count)
    return np.where(count > 0, total, np.nan)


def _checked(log_p: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    log_p = np.asarray(log_p, dtype=np.float64)
    member = np.asarray(member, dtype=bool)
    if log_p.ndim != 2 or log_p.shape != member.shape:
        raise ValueError(
            f"log_p and member must share one (K, N) shape: {log_p.shape}, {member.shape}"
        )
    if (log_p > 0).any():
        raise ValueError("log_p holds log-probabilities: every value must be <= 0")
    return log_p, member


def _per_target(log_p: np.ndarray, member: np.ndarray, a: float | np.ndarray | None) -> np.ndarray:
    """Offline RMIA's a of each of the K targets: (K,) in [0, 1]."""
    if a is None:
        a_rest, a_first = offline_a(log_p, member)
        return np.r_[a_first, np.full(len(log_p) - 1, a_rest)]
    each = np.asarray(a, dtype=np.float64)
    each = np.full(len(log_p), float(each)) if each.ndim == 0 else each
    if each.shape != (len(log_p),):
        raise ValueError(f"a must be one number or one per target ({len(log_p)}), got {each.shape}")
    if not ((each >= 0) & (each <= 1)).all():
        raise ValueError(f"a must lie in [0, 1], got {each[~((each >= 0) & (each <= 1))][0]}")
    return each


def _checked_a(a: float) -> float:
    if not 0 <= a <= 1:
        raise ValueError(f"a must lie in [0, 1], got {a}")
    return float(a)
