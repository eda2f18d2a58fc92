"""Attack power against the number of reference models: how many models an audit needs.

References
----------
Carlini et al. 2022 (LiRA, its Figure on the number of shadow models) and Zarifzadeh et al.
2024 (RMIA, which stays strong with few reference models). From one estimate of K models:
a fixed set of target models is drawn once (seeded), and for m = 1, 2, 4, ... up to every
other model, several seeded draws of m reference models among the rest attack the targets.
Draw d orders the non-target models by a permutation of its own and takes the first m, so
a draw's smaller sets lie inside its larger ones. Each (attack, m, draw) gives the AUC and
the TPR at 0.1% and 1% FPR pooled over (target, example) pairs, for the examples that
`measures.membership.membership_tables` attacks (held by at least three models and left
out by at least three). The largest m compares with the leave-one-model-out figures only
approximately: it is K - targets reference models (240 of 256 with 16 targets), not K - 1,
the targets are a subset, and online LiRA here fills a missing side with the mean IN-OUT
gap where `membership_tables` gives NaN (with K - targets models every attacked example
has both sides, so that last difference only matters at small m).

With few reference models some examples lack reference models on one side; no pair is
dropped, and what each attack does is:

- LiRA online (`online`): Gaussians fitted per example over the reference models, with the
  per-example variance where `min_models` lie on each side and the paper's global variance
  elsewhere (the within-example variance pooled over the examples with two or more models
  on that side; with none, as with one reference model, the variance of every value on
  that side, the released code's ``np.std``). An example with no IN model among the m
  takes as its IN mean its OUT mean plus the mean IN-OUT gap (over the examples with
  models on both sides; with one reference model, where none has, the mean of the IN means
  minus that of the OUT means); one with no OUT model takes its IN mean minus that gap.
- LiRA offline (`offline`): the one-sided test against the OUT Gaussian. An example with
  no OUT model among the m cannot be scored offline: its pairs are kept with the lowest
  score (never called a member; counted in ``unscored``).
- RMIA online (`rmia`): p(x) is the balanced IN/OUT mean of the reference models, or the
  one side present (`measures.rmia`).
- RMIA offline (`rmia_offline`): p(x) from the OUT reference models with the linear
  approximation; its a is chosen by attacking the draw's first reference model with the
  other m - 1 (`measures.rmia.choose_a`; with m = 1, `FALLBACK_A`). An example with no OUT
  model is unscored as for offline LiRA, and is no population z.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from memdash.analysis.measures.membership import (
    REPORT_FPRS,
    Shadows,
    _pooled,
    _side,
    attack_scores,
)
from memdash.analysis.measures.rmia import (
    balanced,
    choose_a,
    linear_offline,
    log_mean,
    log_prob_label,
    pairwise_share,
)
from memdash.analysis.measures.roc import roc, roc_area, tpr_at

BUDGET_ATTACKS = ("online", "offline", "rmia", "rmia_offline")
DRAWS = 5  # seeded draws of reference models per budget point
MAX_TARGETS = 16  # target models: a quarter of the models, at most this many
COLUMNS = ["attack", "models", "draw", "auc", "tpr_at_0.1%", "tpr_at_1%", "pairs", "unscored"]
_DTYPES = {
    "attack": str,
    "models": np.int64,
    "draw": np.int64,
    "pairs": np.int64,
    "unscored": np.int64,
} | {c: np.float64 for c in ("auc", "tpr_at_0.1%", "tpr_at_1%")}


def budget_points(available: int) -> list[int]:
    """1, 2, 4, ... below `available`, then `available` itself."""
    points = [2**i for i in range(max(available, 1).bit_length()) if 2**i < available]
    return points + [available] if available >= 1 else []


def default_targets(models: int) -> int:
    """The number of target models for an estimate of `models`: a quarter, 1 to 16."""
    return int(np.clip(models // 4, 1, MAX_TARGETS))


def attack_budget(
    phi: np.ndarray,
    member: np.ndarray,
    *,
    models: Sequence[int] | None = None,
    draws: int = DRAWS,
    targets: int | None = None,
    seed: int = 0,
    log_p: np.ndarray | None = None,
    min_models: int = 16,
) -> tuple[pd.DataFrame, dict]:
    """Each attack's power with m reference models, for several m and seeded draws.

    Parameters
    ----------
    phi : (K, N) float, each model's statistic on each example (LiRA's), higher = more like
        a member
    member : (K, N) bool, whether model k trained on example n
    models : the numbers of reference models (default `budget_points` of every non-target
        model); each within 1 .. K - targets
    draws : seeded draws of reference models per number
    targets : the fixed target models (default `default_targets`)
    seed : the seed of the targets and the draws
    log_p : (K, N) float, RMIA's log-probabilities (default log sigmoid(phi))
    min_models : LiRA's per-example variance from this many models on each side

    Returns
    -------
    table : one row per (attack, models, draw): `COLUMNS`, with ``auc`` and the TPRs
        (higher = a stronger attack; NaN with no pair), ``pairs`` (target x example pairs
        attacked) and ``unscored`` (pairs an offline attack could not score); no row when
        no example is attacked (fewer than six models)
    params : ``draws``, ``targets``, ``seed``
    """
    phi = np.asarray(phi, dtype=np.float64)
    member = np.asarray(member, dtype=bool)
    if phi.ndim != 2 or phi.shape != member.shape:
        raise ValueError(f"phi and member must share one (K, N) shape: {phi.shape}, {member.shape}")
    k = len(phi)
    targets = default_targets(k) if targets is None else targets
    if draws < 1 or not 1 <= targets < k:
        raise ValueError(
            f"an attack budget needs draws >= 1 and 1 <= targets < {k} models; "
            f"got draws={draws}, targets={targets}"
        )
    available = k - targets
    points = budget_points(available) if models is None else sorted(set(models))
    too_many = [m for m in points if not 1 <= m <= available]
    if too_many:
        raise ValueError(
            f"the estimate has {k} models: with {targets} targets, 1 to {available} reference "
            f"models can be drawn, not {too_many}; train more models (--models) or ask fewer"
        )
    log_p = log_prob_label(phi) if log_p is None else np.asarray(log_p, dtype=np.float64)
    order = np.random.default_rng(seed).permutation(k)
    target, pool = order[:targets], order[targets:]
    held = member.sum(0)
    eligible = (held >= 3) & (held <= k - 3)  # as membership_tables attacks
    truth = member[target][:, eligible]
    rows = []
    for d in range(draws if eligible.any() else 0):  # under six models no row, not NaN rows
        drawn = np.random.default_rng([seed, 1 + d]).permutation(pool)
        for m in points:
            refs = drawn[:m]
            scores = _lira(phi[refs], member[refs], phi[target], min_models)
            rmia, _ = _rmia(log_p[refs], member[refs], log_p[target], member[target])
            scores |= rmia
            for attack in BUDGET_ATTACKS:
                rows.append(
                    {"attack": attack, "models": m, "draw": d}
                    | _power(scores[attack][:, eligible], truth)
                )
    table = pd.DataFrame(rows, columns=COLUMNS).astype(_DTYPES)
    return table, {"draws": draws, "targets": targets, "seed": seed}


def _power(scores: np.ndarray, truth: np.ndarray) -> dict:
    """AUC and TPR at the report FPRs of pooled pairs; an unscored pair (NaN) ranks last."""
    unscored = np.isnan(scores)
    if not truth.size or truth.all() or not truth.any():
        return {"auc": np.nan, "pairs": int(truth.size), "unscored": int(unscored.sum())} | {
            _name(a): np.nan for a in REPORT_FPRS
        }
    fpr, tpr, _ = roc(np.where(unscored, -np.inf, scores), truth)
    return {
        "auc": roc_area(fpr, tpr),
        **{_name(a): tpr_at(fpr, tpr, a) for a in REPORT_FPRS},
        "pairs": int(truth.size),
        "unscored": int(unscored.sum()),
    }


def _name(alpha: float) -> str:
    return f"tpr_at_{alpha:.1%}".replace(".0%", "%")


def _lira(
    phi_ref: np.ndarray, member_ref: np.ndarray, phi_target: np.ndarray, min_models: int
) -> dict[str, np.ndarray]:
    """Online and offline LiRA on the targets with fits over these reference models (the
    fits of `measures.membership`, over every reference model: none is a target)."""
    fits = [_side(phi_ref, side, leave_out=False) for side in (member_ref, ~member_ref)]
    (mu_in, var_in, n_in), (mu_out, var_out, n_out) = fits
    few = (n_in < min_models) | (n_out < min_models)
    var_in = np.where(few, _pooled(var_in, n_in, fallback=_spread(phi_ref, member_ref)), var_in)
    var_out = np.where(
        few, _pooled(var_out, n_out, fallback=_spread(phi_ref, ~member_ref)), var_out
    )
    has_in, has_out = n_in > 0, n_out > 0
    gap = _gap(mu_in, mu_out, has_in, has_out)
    mu_in = np.where(has_in, mu_in, mu_out + gap)
    mu_out = np.where(has_out, mu_out, mu_in - gap)
    shadows = Shadows(mu_in, var_in, n_in, mu_out, var_out, n_out)  # (N,): every target's
    scores = attack_scores(phi_target, shadows, min_shadows=0)
    return {"online": scores["online"], "offline": np.where(has_out, scores["offline"], np.nan)}


def _gap(mu_in: np.ndarray, mu_out: np.ndarray, has_in: np.ndarray, has_out: np.ndarray) -> float:
    """The mean IN-minus-OUT difference of the means: over the examples with both sides, or
    with none (one reference model), the IN means' mean minus the OUT means' (0 when a side
    is empty everywhere)."""
    both = has_in & has_out
    if both.any():
        return float((mu_in[both] - mu_out[both]).mean())
    if has_in.any() and has_out.any():
        return float(mu_in[has_in].mean() - mu_out[has_out].mean())
    return 0.0


def _spread(phi: np.ndarray, side: np.ndarray) -> float:
    """The variance of every value on `side` (the released code's ``np.std``, squared): the
    global variance where no example has two values there; 1.0 with no value at all."""
    values = phi[side]
    return float(values.var()) if values.size else 1.0


def _rmia(
    log_ref: np.ndarray, member_ref: np.ndarray, log_target: np.ndarray, member_target: np.ndarray
) -> tuple[dict[str, np.ndarray], float]:
    """Online and offline RMIA on the targets against these reference models, and offline's
    a: tuned by attacking the first reference model with the others (never a target)."""
    log_in, log_out = log_mean(log_ref, member_ref), log_mean(log_ref, ~member_ref)
    population = ~member_target
    online = balanced(log_in, log_out)
    a = choose_a(log_ref, member_ref, target=0)
    offline = linear_offline(log_out, a)
    scores = {
        "rmia": pairwise_share(log_target, np.broadcast_to(online, log_target.shape), population),
        "rmia_offline": pairwise_share(
            log_target, np.broadcast_to(offline, log_target.shape), population
        ),
    }
    return scores, a
