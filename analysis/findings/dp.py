"""The differential-privacy findings: DP-SGD bounds what membership inference can prove (Abadi
et al. 2016; Jagielski et al. 2020; Nasr et al. 2021), and it removes the memorization of
flipped labels that the held-out score measures (Feldman & Zhang 2020), at a cost in test
accuracy.

Both compare two estimates of the same data and model: the ``noise`` run's (plain training)
and the ``dp`` run's (a run trained with DP-SGD, whose `memdash estimate` trained every model
of its ensemble with the same DP options).
"""

from __future__ import annotations

import numpy as np

from memdash.analysis.findings.needs import Step
from memdash.analysis.findings.registry import Check, Measured, Missing, register
from memdash.analysis.findings.scores import HELDOUT, train_examples
from memdash.analysis.measures.attack_names import ATTACK_NAMES
from memdash.analysis.store import Run

DP_HELDOUT = Step("dp", "heldout", "memdash estimate --like")
_ATTACKS = tuple(ATTACK_NAMES)
LOW_FPR = 0.001  # the false-positive rate whose TPR the papers report
NEAR_FPR = 3.0  # "near the FPR": a TPR at 0.1% FPR of at most 3x that FPR
FAR_BELOW = 0.5  # "far below": the DP median memorization score at most half the plain one


def _attacks(run: Run) -> tuple[dict, dict]:
    """The estimate's attack summary and its parameters (`derived/manifest.json`)."""
    entry = run.derived_manifest()["heldout"]
    return entry.get("membership", {}), entry.get("params", {})


def _bounds(runs: dict[str, Run], source: str) -> Measured:
    """Each attack's empirical epsilon on the DP ensemble against the accountant's epsilon of
    its models; online LiRA's TPR at 0.1% FPR with and without DP.

    An attack's empirical epsilon (`measures.dp_audit.split_epsilon`) is the Clopper-Pearson
    bound at 95% of one threshold and test, chosen on the even-indexed target models' pairs
    and bounded on the odd-indexed ones', so it is not the best of many bounds. It is still
    no certificate: Clopper-Pearson assumes independent trials, and the (target, example)
    pairs share examples (each attacked under every target), models (a target's pairs share
    its training) and, leave one model out, each half's models are the other half's shadow
    models. An attack that measured nothing (None: too few models) is skipped."""
    dp, dp_params = _attacks(runs["dp"])
    plain, _ = _attacks(runs["noise"])
    accountant = dp_params.get("dp_epsilon")
    if accountant is None:
        raise Missing(
            "the dp run's estimate records no accountant epsilon: run `memdash estimate "
            "--like` on it again"
        )
    bounds = {
        a: dp[a]["epsilon_lower"]
        for a in _ATTACKS
        if dp.get(a, {}).get("epsilon_lower") is not None  # None: nothing measured
    }
    if not bounds or "tpr_at_0.1%" not in dp.get("online", {}):
        raise Missing("the dp run's estimate has no attack summary: run `memdash estimate --like`")
    values = {f"epsilon_lower_{a}": float(v) for a, v in bounds.items()} | {
        "epsilon_accountant": float(accountant),
        "delta": float(dp_params.get("dp_delta", float("nan"))),
        "epsilon_lower_max": float(max(bounds.values())),
        "tpr_plain": float(plain["online"]["tpr_at_0.1%"]),
        "tpr_dp": float(dp["online"]["tpr_at_0.1%"]),
        "auc_plain": float(plain["online"]["auc"]),
        "auc_dp": float(dp["online"]["auc"]),
    }
    strongest = max(bounds, key=bounds.get)
    return Measured(values, {"strongest": ATTACK_NAMES[strongest]})


def _bounds_words(m: Measured) -> str:
    return (
        f"largest empirical epsilon on the DP ensemble {m['epsilon_lower_max']:.2f} "
        f"({m['strongest']}) against the accountant's {m['epsilon_accountant']:.2f} "
        f"(delta {m['delta']:.0e}); online LiRA's TPR at 0.1% FPR {m['tpr_plain']:.2%} "
        f"without DP, {m['tpr_dp']:.2%} with it (AUC {m['auc_plain']:.3f} and "
        f"{m['auc_dp']:.3f})"
    )


dp_bounds_membership = register(
    Check(
        key="dp_bounds_membership",
        title="DP-SGD bounds membership inference: the attacks prove less than the accountant",
        reference="Abadi et al. 2016; Jagielski et al. 2020; Nasr et al. 2021",
        roles=("noise", "dp"),
        needs=(HELDOUT, DP_HELDOUT),
        measure=_bounds,
        statistic=_bounds_words,
        holds=lambda m: (
            m["epsilon_lower_max"] < m["epsilon_accountant"]
            and m["tpr_dp"] <= NEAR_FPR * LOW_FPR < m["tpr_plain"]
        ),
    )
)


def _flipped_median(run: Run) -> tuple[float, float]:
    """The median held-out memorization score of the run's flipped training examples, and
    the ensemble's test accuracy (the mean over test examples of the models' accuracy)."""
    held = run.read_derived("heldout.parquet")
    _, flipped = train_examples(run)
    if not flipped.any():
        raise Missing(f"{run.name} has no flipped training examples")
    test = (run.examples(["split"])["split"] == "test").to_numpy()
    accuracy = held["heldout_accuracy"].to_numpy()[test]
    return float(np.median(held["mem_score"].to_numpy()[flipped])), float(np.mean(accuracy))


def _memorization(runs: dict[str, Run], source: str) -> dict[str, float]:
    plain, plain_acc = _flipped_median(runs["noise"])
    dp, dp_acc = _flipped_median(runs["dp"])
    _, params = _attacks(runs["dp"])
    return {
        "flipped_median_plain": plain,
        "flipped_median_dp": dp,
        "test_accuracy_plain": plain_acc,
        "test_accuracy_dp": dp_acc,
        "epsilon_accountant": float(params.get("dp_epsilon", float("nan"))),
    }


dp_reduces_memorization = register(
    Check(
        key="dp_reduces_memorization",
        title="DP-SGD removes the memorization of flipped labels, at a cost in accuracy",
        reference="Abadi et al. 2016; Feldman & Zhang 2020",
        roles=("noise", "dp"),
        needs=(HELDOUT, DP_HELDOUT),
        measure=_memorization,
        statistic=lambda m: (
            f"median memorization score of the flipped examples {m['flipped_median_plain']:.2f} "
            f"without DP, {m['flipped_median_dp']:.2f} with it (epsilon "
            f"{m['epsilon_accountant']:.2f}); the ensembles' test accuracy "
            f"{m['test_accuracy_plain']:.1%} and {m['test_accuracy_dp']:.1%}"
        ),
        holds=lambda m: m["flipped_median_dp"] <= FAR_BELOW * m["flipped_median_plain"],
    )
)
