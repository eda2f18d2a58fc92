"""The privacy findings: membership inference exposes the memorized examples (Carlini et al.
2022 against Feldman & Zhang 2020), RMIA beats LiRA with few reference models (Zarifzadeh et
al. 2024), and canaries' exposure rises with repetitions (Carlini et al. 2019).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from memdash.analysis.findings.needs import Step, Stored
from memdash.analysis.findings.registry import Check, Measured, Missing, register
from memdash.analysis.findings.scores import HELDOUT
from memdash.analysis.store import Run

_ATTACKS = ("online", "offline", "global")


def _membership(runs: dict[str, Run], source: str) -> Measured:
    """Carlini et al.'s LiRA against Feldman & Zhang's mem_score on the same models: the
    examples a network memorizes are the ones whose membership leaks. Per-example
    vulnerability against mem_score, with each attack's AUC and TPR at low FPR."""
    from memdash.analysis.measures.membership import memorization_link

    run = runs["noise"]
    held, leak = run.read_derived("heldout.parquet"), run.read_derived("membership.parquet")
    attacks = run.derived_manifest()["heldout"].get("membership", {})
    values = memorization_link(held["mem_score"], leak["vulnerability"]) | {
        "threshold_fpr": float(attacks.get("threshold_fpr", 0.01)),
    }
    for attack in _ATTACKS:
        for measure in ("auc", "tpr_at_0.1%", "tpr_at_1%"):
            value = attacks.get(attack, {}).get(measure)
            if value is not None:
                values[f"{attack}_{measure}"] = float(value)
    ratio = values["top_decile_tpr"] / max(values["rest_tpr"], 1e-9)
    return Measured(values, {"ratio": ratio})


def _membership_words(m: Measured) -> str:
    return (
        f"per-example vulnerability (online LiRA's TPR at the {m['threshold_fpr']:.0%} "
        f"FPR threshold) against the memorization score: Spearman {m['spearman']:.2f} "
        f"(p = {m['p_value']:.1g}, {m['examples']:.0f} training examples); "
        f"top decile of the memorization score {m['top_decile_tpr']:.0%}"
        f" against {m['rest_tpr']:.0%} for the rest ({m['ratio']:.1f}x). "
        + "; ".join(
            f"{attack} AUC {m[f'{attack}_auc']:.3f}, TPR at 0.1% FPR "
            f"{m[f'{attack}_tpr_at_0.1%']:.1%}"
            for attack in _ATTACKS
            if f"{attack}_auc" in m.values
        )
    )


membership_follows_memorization = register(
    Check(
        key="membership_follows_memorization",
        title="Memorized examples are the ones membership inference exposes",
        reference="Carlini et al. 2022; Feldman & Zhang 2020",
        roles=("noise",),
        needs=(
            HELDOUT,
            Stored("noise", "membership.parquet", HELDOUT.command, "it stores confidences now"),
        ),
        measure=_membership,
        statistic=_membership_words,
        holds=lambda m: m["spearman"] > 0 and m["p_value"] < 0.001 and m["ratio"] >= 2,
    )
)


FEW_MODELS = (1, 2, 4)  # "at most 4 reference models": the budget points compared
_BUDGET_ATTACKS = ("offline", "rmia_offline", "online", "rmia")


def _few_models(runs: dict[str, Run], source: str) -> Measured:
    """TPR at 1% FPR of RMIA and LiRA, offline and online, with 1, 2 and 4 reference models:
    the mean over the draws of `derived/membership_budget.parquet`."""
    table = runs["noise"].read_derived("membership_budget.parquet")
    points = [m for m in FEW_MODELS if m in set(table["models"])]
    if not points:
        raise Missing(
            "the attack budget holds no point with 1, 2 or 4 reference models (an estimate "
            "of fewer than six models attacks no example)"
        )
    means = table.groupby(["attack", "models"])["tpr_at_1%"].mean()
    values = {
        f"{attack}_tpr_at_1%_{m}": float(means.get((attack, m), np.nan))
        for attack in _BUDGET_ATTACKS
        for m in points
    }
    values["draws"] = float(table["draw"].nunique())
    return Measured(values, {"points": points})


def _few_models_words(m: Measured) -> str:
    def at(attack: str) -> str:
        return ", ".join(f"{m[f'{attack}_tpr_at_1%_{k}']:.1%} ({k})" for k in m["points"])

    return (
        f"TPR at 1% FPR by reference models (mean of {m['draws']:.0f} draws): offline RMIA "
        f"{at('rmia_offline')} against offline LiRA {at('offline')}; online RMIA {at('rmia')} "
        f"against online LiRA {at('online')}"
    )


def _few_models_hold(m: Measured) -> bool:
    return all(m[f"rmia_offline_tpr_at_1%_{k}"] >= m[f"offline_tpr_at_1%_{k}"] for k in m["points"])


rmia_with_few_models = register(
    Check(
        key="rmia_with_few_models",
        title="With at most 4 reference models, RMIA is at least as strong as offline LiRA",
        reference="Zarifzadeh et al. 2024; Carlini et al. 2022",
        roles=("noise",),
        needs=(
            HELDOUT,
            Stored(
                "noise",
                "membership_budget.parquet",
                HELDOUT.command,
                "it stores the attacks' power by number of reference models now",
            ),
        ),
        measure=_few_models,
        statistic=_few_models_words,
        holds=_few_models_hold,
    )
)


def _exposure(runs: dict[str, Run], source: str) -> Measured:
    """Canary exposure after one epoch by repetitions, the references', and the last epoch's
    extrapolated exposure (from the losses, and from the log-losses where stored)."""
    table = runs["canaries"].read_derived("exposure.parquet")
    first_fit = table[table["epoch"] == 1]
    by = (
        first_fit[first_fit["kind"] == "canary"].groupby("repeats")["exposure_interpolation"].mean()
    )
    refs = float(table[table["kind"] == "reference"]["exposure_interpolation"].mean())
    last = table[(table["epoch"] == table["epoch"].max()) & (table["kind"] == "canary")]
    extrap = last.groupby("repeats")["exposure_extrapolation"].mean()
    floored = bool(last["fit_floored"].any()) if "fit_floored" in last else False
    in_log = (
        last.groupby("repeats")["exposure_extrapolation_log"].mean()
        if "exposure_extrapolation_log" in last
        else pd.Series(dtype=float)
    )
    values = (
        {f"repeats_{int(r)}": float(v) for r, v in by.items()}
        | {"references": refs}
        | {f"extrapolated_last_{int(r)}": float(v) for r, v in extrap.items()}
        | {f"extrapolated_log_last_{int(r)}": float(v) for r, v in in_log.items()}
        | {"last_fit_floored": float(floored)}
    )
    shown = {"by": by, "extrap": extrap, "in_log": in_log, "floored": floored}
    return Measured(values, shown | {"last_epoch": int(table["epoch"].max())})


def _bits(means: pd.Series) -> str:
    return ", ".join(f"{v:.1f} ({r}x)" for r, v in means.items())


def _exposure_words(m: Measured) -> str:
    return (
        "mean exposure after one epoch: "
        + ", ".join(f"{v:.2f} bits seen {r}x" for r, v in m["by"].items())
        + f"; references {m['references']:.2f} bits. At the last epoch (epoch "
        + f"{m['last_epoch']}), extrapolated bits from the losses (the paper's fit): "
        + _bits(m["extrap"])
        + (
            " [marked: that epoch's fit sits on the references' loss floor, so these "
            "measure the fit's cliff]"
            if m["floored"]
            else ""
        )
        + (f"; from the log-losses (no floor): {_bits(m['in_log'])}" if len(m["in_log"]) else "")
    )


exposure = register(
    Check(
        key="exposure",
        title="Exposure rises with repetitions; untrained canaries sit near 1.44 bits",
        reference="Carlini et al. 2019",
        roles=("canaries",),
        needs=(Step("canaries", "exposure", "memdash analyze"),),
        trace="eval",  # canary losses of the end-of-epoch pass
        measure=_exposure,
        statistic=_exposure_words,
        holds=lambda m: (
            bool(np.all(np.diff(m["by"].to_numpy()) > 0))
            and abs(m["references"] - np.log2(np.e)) < 0.1
        ),
    )
)
