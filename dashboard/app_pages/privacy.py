"""Privacy: membership inference (LiRA, Carlini et al. 2022; RMIA, Zarifzadeh et al. 2024)
beside the memorization score (Feldman & Zhang 2020), all from the many models of `memdash
estimate`; the audit's other parts (empirical epsilon, DP, attack power against the number
of reference models, LiRA's Gaussian assumption) in `privacy_audit`."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memdash.analysis.measures.membership import memorization_link
from memdash.dashboard import charts, data
from memdash.dashboard.app_pages import privacy_audit, privacy_text
from memdash.dashboard.app_pages.common import (
    UNTRAINED_KINDS,
    choose_run,
    open_buttons,
    selectable_scatter,
    shell_path,
    show_command,
    thumbnail_grid,
)
from memdash.dashboard.app_pages.detail import example_section, selection_list
from memdash.dashboard.labels import label


def render() -> None:
    st.title("Privacy")
    path = choose_run(data.run_roots())
    if path is None or privacy_text.shown(path):  # a language model's: its own page
        return
    curves = data.derived(path, "membership_roc.parquet")
    if curves is None:
        st.info(
            "Membership inference attacks the many models of an estimate: run "
            "`memdash estimate --like` on this run. An estimate made before memdash stored the "
            "models' confidences trains its models again, to the same scores."
        )
        show_command(f"memdash estimate --like {shell_path(path)}")
        return
    entry = data.manifest(path).get("heldout", {})
    _attacks(curves, entry)
    privacy_audit.say_missing(path, entry)
    privacy_audit.dp_section(path, entry)
    privacy_audit.budget_section(path, entry)
    privacy_audit.gaussian_section(path, entry)
    table = data.examples(path)
    trained = table[~table["kind"].isin(UNTRAINED_KINDS)].dropna(subset=["vulnerability"])
    _against_memorization(path, trained)
    _most_exposed(path, trained)
    example_section(path, table, key="privacy")


def _attacks(curves: pd.DataFrame, entry: dict) -> None:
    """The attacks' ROCs (log-log) and their AUC, TPR at low FPR and empirical epsilon."""
    summary, params = entry.get("membership", {}), entry.get("params", {})
    st.caption(
        f"{params.get('models')} models, each trained on a random "
        f"{params.get('ratios', [0.7])[0]:.0%} of the training set. Each model is the target "
        "in turn and the others are its reference (shadow) models; an attack calls an example "
        "a member of the target's training set when its score passes a threshold. One query "
        "per example (the data has no augmentation)."
    )
    if curves.empty:
        st.warning("This estimate has too few models (six or more are needed) for the attack.")
        return
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.roc_curves(curves), width="stretch", key="privacy_roc")
    privacy_audit.attack_table(left, right, summary)
    pairs = max((v.get("pairs", 0) for v in summary.values() if isinstance(v, dict)), default=0)
    right.caption(
        f"Over {pairs:,} (target model, training example) pairs. Read the curves at the "
        "left: an attack that is right about a few members while almost never wrong is a "
        "real leak, whatever its AUC."
    )


def _against_memorization(path, trained: pd.DataFrame) -> None:
    """Per-example vulnerability against the memorization score, coloured by kind,
    selectable."""
    st.subheader("Vulnerability against memorization")
    chosen = selectable_scatter(
        charts.scatter(
            trained,
            x="mem_score",
            y="vulnerability",
            color="kind",
            title="how often online LiRA exposes an example, against its memorization score",
        ),
        trained,
        key="privacy_scatter",
    )
    link = memorization_link(trained["mem_score"], trained["vulnerability"])
    st.caption(
        "Vulnerability: the share of the models that trained on an example which online LiRA "
        "calls a member at the one threshold that gives 1% false positives over all examples. "
        f"Spearman correlation with the {label('mem_score')}: {link['spearman']:.2f}; the "
        f"most memorized tenth is exposed {link['top_decile_tpr']:.0%} of the time, the rest "
        f"{link['rest_tpr']:.0%}. Draw a box or lasso to list examples; click a point to open "
        "it."
    )
    selection_list(path, chosen, key="privacy_selected")


def _most_exposed(path, trained: pd.DataFrame, count: int = 16) -> None:
    st.subheader("The most exposed examples")
    top = trained.nlargest(count, ["vulnerability", "mem_score"])
    ids = top["example_id"].astype(int).tolist()
    captions = [
        f"#{r.example_id} {r.kind}: label {r.label}, exposed {r.vulnerability:.0%}"
        for r in top.itertuples(index=False)
    ]
    open_buttons(thumbnail_grid(path, ids, captions, per_row=8, width=72), ids, key="privacy_open")
