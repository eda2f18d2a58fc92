"""Privacy of a language model's run: counterfactual memorization of its sequences (Zhang et
al. 2021) and membership inference on their log-likelihoods (LiRA, Carlini et al. 2022, and
what else the estimate stored), both from the language models `memdash estimate --like` trains
on random halves of the run's training sequences."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data
from memdash.dashboard.app_pages import privacy_audit
from memdash.dashboard.app_pages.common import selectable_scatter, shell_path, show_command
from memdash.dashboard.app_pages.detail import example_section, selection_list
from memdash.dashboard.charts import counterfactual as cf_charts
from memdash.dashboard.data import run as run_data
from memdash.dashboard.labels import label

# the median table's headers, short enough for its column (its caption names the scores)
MEDIAN_HEADERS = {"cf_mem_accuracy": "token accuracy", "cf_mem_loglik": "log-likelihood"}


def shown(path: Path) -> bool:
    """On a text run, draw its Privacy page and return True; False on a classifier's run
    (`privacy.render` draws it)."""
    if not run_data.is_text(path):
        return False
    render_text(path)
    return True


def render_text(path: Path) -> None:
    """The Privacy page of a text run."""
    cf = data.derived(path, "counterfactual.parquet")
    if cf is None:
        st.info(
            "Counterfactual memorization and membership inference attack the many language "
            "models of an estimate, each trained as this run was on a random half of its "
            "training sequences: run `memdash estimate --like` on this run."
        )
        show_command(f"memdash estimate --like {shell_path(path)} --models 16")
        return
    entry = data.manifest(path).get("heldout", {})
    params = entry.get("params", {})
    st.caption(
        f"{params.get('models')} language models of this run's architecture and training, "
        f"each on a random {params.get('ratios', [0.5])[0]:.0%} of its training sequences (each "
        "copy of a duplicated sequence or a canary drawn in or out on its own; a sequence is in "
        "when its first copy is)."
    )
    failed = entry.get("membership", {}).get("failed_models") or []
    if failed:
        st.warning(
            f"{len(failed)} of the {params.get('models')} models did not learn (their token "
            "accuracy on their own training sequences lies far below the others': model "
            f"{', '.join(map(str, failed))}); every table and chart below leaves "
            f"{'it' if len(failed) == 1 else 'them'} out."
        )
    _attacks(path, entry)
    table = data.examples(path)
    trained = table[table["split"] == "train"].dropna(subset=["cf_mem_accuracy"])
    _counterfactual(path, trained)
    example_section(path, table, key="privacy_text")


def _attacks(path: Path, entry: dict) -> None:
    """The attacks' ROCs on the sequences' log-likelihoods and their AUC and TPR at low FPR."""
    st.subheader("Membership inference on log-likelihoods")
    curves = data.derived(path, "membership_roc.parquet")
    if curves is None or curves.empty:
        st.warning("This estimate has too few models (six or more are needed) for the attacks.")
        return
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.roc_curves(curves), width="stretch", key="privacy_text_roc")
    summary = entry.get("membership", {})
    # under the ROC, as on a classifier's page: wide enough for every column
    privacy_audit.draw_attack_rows(left, summary)
    right.caption(
        "The attacker's statistic is a sequence's total log-likelihood under the target model "
        "(nats); each model is the target in turn, the others its reference models."
    )
    audit = summary.get("audit")
    if audit:
        right.caption(
            f"{label('epsilon_lower')}: what the attack's ROC proves at "
            f"{audit['confidence']:.0%} confidence with δ = {audit['delta']:g} (Jagielski et "
            "al. 2020); these models trained without DP, so no accountant bounds it."
        )


def _counterfactual(path: Path, trained: pd.DataFrame) -> None:
    """Counterfactual memorization by accuracy against by log-likelihood, and by copies."""
    st.subheader("Counterfactual memorization")
    chosen = selectable_scatter(
        cf_charts.counterfactual_scatter(
            trained, title="in minus out: token accuracy against log-likelihood"
        ),
        trained,
        key="privacy_text_scatter",
    )
    st.caption(
        f"{label('cf_mem_accuracy')}: the mean token accuracy of the models that trained on a "
        "sequence minus that of the models that held it out (Zhang et al. 2021); "
        f"{label('cf_mem_loglik')}: the same for its log-likelihood. Higher = more memorized: "
        "the models do well on it only when they saw it. Draw a box or lasso to list "
        "sequences; click one to open it."
    )
    selection_list(path, chosen, key="privacy_text_selected")
    left, right = st.columns([3, 2])
    left.plotly_chart(
        cf_charts.counterfactual_by_copies(trained), width="stretch", key="privacy_text_copies"
    )
    medians = cf_charts.median_by_copies(trained)
    # short headers, so the medians fit the column (the caption names the scores)
    right.dataframe(
        medians.drop(columns=["kind"]).rename(columns=MEDIAN_HEADERS),
        hide_index=True,
        width="stretch",
        column_config={
            h: st.column_config.NumberColumn(format="%.3f") for h in MEDIAN_HEADERS.values()
        },
    )
    right.caption(
        f"Medians by copies per epoch: {label('cf_mem_accuracy')} and "
        f"{label('cf_mem_loglik')}. As in Zhang et al.'s corpora, each copy lands in a "
        "model's training data on its own: the models that hold a duplicated sequence out "
        "(its first copy) usually still see its other copies, which is why duplicated text "
        "scores low and a secret inserted once high."
    )
