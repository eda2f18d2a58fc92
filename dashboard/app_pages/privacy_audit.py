"""The Privacy page's audit of the attacks: the table of every attack (LiRA, RMIA) with its
empirical epsilon, the accountant's epsilon of a DP ensemble beside them, attack power
against the number of reference models, and LiRA's Gaussian assumption checked per example.

Every sentence is computed from the table or chart beside it; an estimate made before these
parts existed shows what it has and names the command that adds the rest.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data
from memdash.dashboard.app_pages.common import shell_path, show_command
from memdash.dashboard.labels import (
    ATTACK_MEANINGS,
    ATTACK_NAMES,
    attack_name,
    audit_direction_text,
    label,
)

TABLE_METRICS = ("auc", "tpr_at_0.1%", "tpr_at_1%", "epsilon_lower")
# each part of the audit, what marks it in the estimate (manifest key or derived file), and
# its name in words for the message about an older estimate
PARTS = {
    "rmia": "RMIA",
    "epsilon_lower": "the empirical ε",
    "membership_budget.parquet": "attack power against the number of reference models",
    "gaussian": "the per-example check of LiRA's Gaussian assumption",
}
FEW_MODELS = (1, 2, 4)


def missing_parts(path: Path, entry: dict) -> list[str]:
    """The parts of the audit this estimate lacks (made before they existed), in words."""
    summary = entry.get("membership", {})
    has = {
        "rmia": "rmia" in summary,
        "epsilon_lower": any("epsilon_lower" in v for v in summary.values() if isinstance(v, dict)),
        "membership_budget.parquet": "membership_budget.parquet" in entry.get("files", []),
        "gaussian": "gaussian" in summary,
    }
    return [PARTS[part] for part, present in has.items() if not present]


def say_missing(path: Path, entry: dict) -> None:
    """One message naming what an older estimate lacks and the command that adds it."""
    missing = missing_parts(path, entry)
    if not missing:
        return
    st.info(
        "This estimate was made before memdash computed "
        + (", ".join(missing[:-1]) + " and " if len(missing) > 1 else "")
        + missing[-1]
        + ". `memdash estimate --like` recomputes the derived tables from the models' stored "
        "confidences, without training again:"
    )
    show_command(f"memdash estimate --like {shell_path(path)}")


def attack_rows(summary: dict) -> pd.DataFrame:
    """One row per attack the manifest's ``membership`` summary holds (in `ATTACK_NAMES`
    order): ``attack`` in words and its metrics (`TABLE_METRICS` it has)."""
    rows = []
    for attack in ATTACK_NAMES:
        found = summary.get(attack, {})
        if found.get("auc") is None:
            continue
        row = {"attack": attack_name(attack)}
        # an epsilon of None (an attack without pairs): nothing measured, a blank cell
        row |= {label(m): _number(found[m]) for m in TABLE_METRICS if m in found}
        rows.append(row)
    return pd.DataFrame(rows)


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def attack_table(under, column, summary: dict) -> pd.DataFrame:
    """The attacks' table under the ROC (in `under`, wide enough for every column) with how
    the empirical epsilon was computed, and in `column` what each attack does and how offline
    RMIA's a was chosen; returns the table drawn (its TPRs in percent)."""
    drawn = draw_attack_rows(under, summary)
    shown = [a for a in ATTACK_NAMES if attack_name(a) in set(drawn.get("attack", []))]
    column.markdown("\n".join(f"- **{attack_name(a)}**: {ATTACK_MEANINGS[a]}" for a in shown))
    audit = summary.get("audit")
    if audit and label("epsilon_lower") in drawn:
        under.caption(epsilon_words(audit))
    if summary.get("rmia_a") is not None:
        column.caption(rmia_words(summary))
    return drawn


def draw_attack_rows(container, summary: dict) -> pd.DataFrame:
    """The attacks' table (`attack_rows`) drawn in `container`, its TPRs in percent with two
    decimals each; returns it as drawn."""
    table = attack_rows(summary)
    # the TPRs in percent with two decimals each (format="percent" drops trailing zeros)
    percent = st.column_config.NumberColumn(format="%.2f%%")
    rates = [c for c in (label("tpr_at_0.1%"), label("tpr_at_1%")) if c in table]
    drawn = table.assign(**{c: 100 * table[c] for c in rates})
    config = {
        label("auc"): st.column_config.NumberColumn(
            format="%.3f", help=audit_direction_text("auc")
        ),
        label("tpr_at_0.1%"): percent,
        label("tpr_at_1%"): percent,
        label("epsilon_lower"): st.column_config.NumberColumn(
            format="%.2f", help=audit_direction_text("epsilon_lower")
        ),
    }
    container.dataframe(drawn, hide_index=True, column_config=config, width="stretch")
    return drawn


def rmia_words(summary: dict) -> str:
    """How offline RMIA's a was chosen: on model 0 for the other targets, and (where the
    estimate has ``rmia_a_target0``) on model 1 without model 0 for target 0."""
    words = f"Offline RMIA's a = {summary['rmia_a']:.2f}, the a that attacks model 0 best "
    if summary.get("rmia_a_target0") is None:
        words += "with the others as references"
    else:
        words += (
            "with the others as references, for every target but model 0; model 0's own is "
            f"a = {summary['rmia_a_target0']:.2f}, chosen on model 1 without model 0, so no "
            "target's a saw its own membership"
        )
    return words + f"; γ = {summary.get('rmia_gamma', 1.0):g}."


def epsilon_words(audit: dict) -> str:
    """How the table's empirical epsilon is computed, from the manifest's ``audit`` entry
    (``confidence``, ``delta``, and ``split`` where the threshold was chosen on half of the
    target models and the bound proved on the other half): both tests, the split, and why
    the confidence is approximate."""
    tests = (
        f"{label('epsilon_lower')} (Jagielski et al. 2020; Nasr et al. 2021): "
        "log((TPR_lo - δ) / FPR_hi), or by the complementary test (below the threshold, a "
        f"non-member) log((1 - FPR_hi - δ) / (1 - TPR_lo)), δ = {audit['delta']:g}, with "
        f"TPR_lo and FPR_hi the rates' Clopper-Pearson bounds, together at "
        f"{audit['confidence']:.0%}. "
    )
    if audit.get("split"):
        chosen = (
            "The threshold and the test are the ones whose bound is largest on the "
            "even-numbered target models' pairs; the bound reported is that one test at that "
            "one threshold on the odd-numbered target models' pairs. "
        )
    else:
        chosen = (
            "This estimate chose the threshold on the same pairs it bounds (the largest bound "
            "of ~10^5), which overstates the confidence: `memdash estimate --like` recomputes "
            "it on split target models. "
        )
    return (
        tests
        + chosen
        + "A bound may come from the complementary test (the lowest scores are almost "
        "never members), so it need not follow the TPR at low FPR. 0 where the attack proves "
        "nothing; blank where it had no pairs. Clopper-Pearson "
        "assumes independent trials, but the trials, (target model, example) pairs, share "
        "models and examples: the confidence is approximate, the bound a diagnostic rather "
        f"than a certificate ({audit_direction_text('epsilon_lower')})."
    )


def dp_section(path: Path, entry: dict) -> None:
    """For an estimate whose models trained with DP-SGD: each attack's empirical epsilon
    against the accountant's, flagged if one passes it. For a DP run whose estimate's models
    did not, how to train them privately."""
    spent = entry.get("params", {}).get("dp_epsilon")
    run_spent = data.run_meta(path).get("dp_epsilon")
    if spent is None and run_spent is None:
        return
    st.subheader("Differential privacy: the accountant against the attacks")
    if spent is None:
        st.info(
            f"This run trained with DP-SGD ({label('dp_epsilon')} = {run_spent:.2f}), but the "
            "estimate's models, which the attacks attack, did not: their bounds say nothing "
            "about it. Train the estimate again, inheriting the run's DP options (`--overwrite` "
            "discards the plain estimate's models, not the run):"
        )
        show_command(f"memdash estimate --like {shell_path(path)} --overwrite")
        return
    summary = entry.get("membership", {})
    bounds = epsilon_bounds(summary)
    if bounds.empty:
        if any("epsilon_lower" in v for v in summary.values() if isinstance(v, dict)):
            st.info(
                "No attack had (target model, example) pairs to bound ε with, so there is "
                f"nothing to set against the accountant's ε = {spent:.2f}."
            )
        return  # an estimate made before the bounds: `say_missing` has said so
    delta = entry["params"].get("dp_delta", summary.get("audit", {}).get("delta"))
    left, right = st.columns([3, 2])
    left.plotly_chart(
        charts.epsilon_chart(bounds, accountant=float(spent)), width="stretch", key="privacy_dp"
    )
    top = bounds.loc[bounds["epsilon_lower"].idxmax()]
    # the run's own epsilon (all its training set) when it reads differently from its models'
    own = (
        f" (the run itself: ε = {run_spent:.2f})"
        if run_spent is not None and f"{run_spent:.2f}" != f"{spent:.2f}"
        else ""
    )
    right.markdown(
        f"Each model of the estimate trained with DP-SGD at ε = **{spent:.2f}** (δ = "
        f"{delta:g}), as its privacy accountant reports{own}. What an attack's ROC proves is a "
        "lower bound on the ε actually spent: it must stay below the accountant's. The "
        f"strongest bound here is {attack_name(top['attack'])}'s, ε ≥ "
        f"**{top['epsilon_lower']:.2f}**."
    )
    over = bounds[bounds["epsilon_lower"] > spent]
    if over.empty:
        right.success(f"Every attack's bound stays below the accountant's ε = {spent:.2f}.")
    else:
        names = ", ".join(
            f"{attack_name(r.attack)} (ε ≥ {r.epsilon_lower:.2f})" for r in over.itertuples()
        )
        confidence = summary.get("audit", {}).get("confidence", 0.95)
        right.error(
            f"Above the accountant's ε = {spent:.2f}: {names}. Either the accounting or the "
            "training is wrong (the noise, clipping or sampling not what the accountant was "
            "told), or the bound claims more than it proves: its trials, (target model, "
            "example) pairs, share models and examples, so its "
            f"{confidence:.0%} confidence is approximate (and even an exact one errs once in "
            f"{1 / (1 - confidence):.0f} audits)."
        )


def epsilon_bounds(summary: dict) -> pd.DataFrame:
    """Each attack's empirical epsilon from the manifest's ``membership`` summary:
    ``attack``, ``epsilon_lower`` (in `ATTACK_NAMES` order; an attack whose epsilon is None,
    measured on no pairs, left out; empty when none has one)."""
    rows = [
        {"attack": a, "epsilon_lower": float(summary[a]["epsilon_lower"])}
        for a in ATTACK_NAMES
        if summary.get(a, {}).get("epsilon_lower") is not None  # None: the attack had no pairs
    ]
    return pd.DataFrame(rows, columns=["attack", "epsilon_lower"])


def budget_figure(path: Path, *, metric: str):
    """The budget chart of `path`'s estimate at `metric` (the Findings page's figure)."""
    budget = data.derived(path, "membership_budget.parquet")
    return charts.budget_chart(charts.budget_summary(budget, metric=metric), metric=metric)


def budget_section(path: Path, entry: dict) -> None:
    """Attack power against the number of reference models (derived/membership_budget.parquet):
    a metric chosen, its mean over draws with the min-max band, and which attack leads with
    few models."""
    budget = data.derived(path, "membership_budget.parquet")
    if budget is None:
        return  # an estimate made before the sweep: `say_missing` has said so
    st.subheader("Attack power against the number of reference models")
    measured = [m for m in charts.BUDGET_METRICS if m in budget.columns]
    if budget.empty or budget[measured].isna().all(axis=None):
        models = entry.get("params", {}).get("models")
        st.info(
            f"No draw of reference models could be attacked: the estimate's {models} models "
            "leave no example with models that trained on it and models that held it out "
            "among the references and targets of a draw (six models or more are needed)."
        )
        return
    metric = st.radio(
        "Measure",
        charts.BUDGET_METRICS,
        format_func=label,
        horizontal=True,
        key="privacy_budget_metric",
    )
    summary = charts.budget_summary(budget, metric=metric)
    left, right = st.columns([3, 2])
    left.plotly_chart(
        charts.budget_chart(summary, metric=metric), width="stretch", key="privacy_budget"
    )
    right.markdown(budget_words(summary, metric=metric))
    params = entry.get("membership", {}).get("budget", {})
    draws = int(summary["draws"].max())
    right.caption(
        f"Each point: the mean over {draws} draws (seed {params.get('seed', 'n/a')}) of that "
        f"many reference models, attacking {params.get('targets', 'the same')} target models "
        f"outside them; the band spans the lowest to the highest draw "
        f"({audit_direction_text(metric)})."
    )


def _value(metric: str, value: float) -> str:
    """A mean of `metric` in words: an AUC to 3 decimals, a TPR in percent, to two decimals
    below 1% (at 0.1% FPR, 0.13% and 0.12% are not both 0.1%)."""
    if metric == "auc":
        return f"{value:.3f}"
    return f"{value:.2%}" if abs(value) < 0.01 else f"{value:.1%}"


def budget_words(summary: pd.DataFrame, *, metric: str) -> str:
    """Which attack leads at 1, 2 and 4 reference models and at the most drawn, by the mean
    `metric` the chart draws."""
    most = int(summary["models"].max())
    leaders = charts.budget_leaders(summary, models=(*FEW_MODELS, most))
    sentences = []
    for row in leaders.drop_duplicates("models").itertuples(index=False):
        models = f"{row.models} reference model{'s' if row.models != 1 else ''}"
        lead = f"**{attack_name(row.leader)}** leads ({_value(metric, row.leader_mean)}"
        if row.runner_up is not None:
            lead += f"; next {attack_name(row.runner_up)}, {_value(metric, row.runner_up_mean)}"
        sentences.append(f"- With {models}, {lead}).")
    return f"{label(metric)}, mean over the draws:\n" + "\n".join(sentences)


def gaussian_section(path: Path, entry: dict) -> None:
    """The share of examples whose IN and OUT confidences Shapiro-Wilk rejects as Gaussian,
    with the p-values' histogram by side."""
    members = data.derived(path, "membership.parquet")
    check = entry.get("membership", {}).get("gaussian")
    if members is None or check is None or "shapiro_in_p" not in members.columns:
        return
    alpha = float(check.get("alpha", 0.05))
    st.subheader("LiRA's Gaussian assumption, example by example")
    tested = int(check.get("examples", 0))
    if tested == 0:
        st.info(
            "No example has three models or more on each side, the fewest Shapiro-Wilk tests: "
            "the estimate has too few models to check LiRA's Gaussian assumption."
        )
        return
    left, right = st.columns([3, 2])
    left.plotly_chart(
        charts.normality_histograms(members, alpha=alpha), width="stretch", key="privacy_gauss"
    )
    # the shares the estimate stored (`measures.normality.gaussian_check`), not recounted
    inside, out = check["share_rejected_in"], check["share_rejected_out"]
    right.markdown(
        "Online LiRA fits a Gaussian to each example's confidence phi over the models that "
        "trained on it and another over those that held it out (offline LiRA the second only). "
        f"Over the {tested:,} examples with at least three models on each "
        f"side, Shapiro-Wilk rejects it at alpha {alpha:g} for **{inside:.0%}** of "
        f"their confidences under the models that trained on them and **{out:.0%}** "
        f"under those that held them out; were every side Gaussian, about {alpha:.0%} would be "
        "by chance."
    )
    right.caption(
        f"p-values left of the dashed line are rejected ({audit_direction_text('shapiro_in_p')}"
        "). With many models the test also rejects small departures: open an example below to "
        "see its confidences with the fitted Gaussians."
    )
