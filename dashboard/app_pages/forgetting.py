"""Forgetting and data map: how often examples are forgotten, when they are learned, and the
data map (Toneva et al. 2019; Swayamdipta et al. 2020)."""

from __future__ import annotations

import streamlit as st

from memdash.dashboard import charts, data, state
from memdash.dashboard.app_pages.common import choose_run, offer_analysis, selectable_scatter

COLOURS = ("kind", "correctness", "forgetting_events", "mem_score", "label")


def render() -> None:
    st.title("Forgetting and data map")
    path = choose_run(data.run_roots(), key="forgetting_run")
    if path is None:
        return
    table = state.with_source(data.examples(path))
    if "forgetting_events" not in table.columns:
        offer_analysis(path, "Trace scores", ["scores"], "memdash analyze", "forgetting_compute")
        return
    train = table[table["split"] == "train"]
    left, right = st.columns(2)
    left.plotly_chart(
        charts.histograms(
            train,
            value="forgetting_events",
            group="kind",
            title="forgetting events (right -> wrong between epochs)",
        ),
        width="stretch",
        key="forgetting_hist",
    )
    when = right.radio(
        "Learning time",
        ["first_learned_epoch", "learned_epoch"],
        horizontal=True,
        key="forgetting_when",
        help="first_learned_epoch: first epoch right; learned_epoch: right from then on",
    )
    right.plotly_chart(
        charts.histograms(
            train.dropna(subset=[when]), value=when, group="kind", title=when.replace("_", " ")
        ),
        width="stretch",
        key="forgetting_learned",
    )
    never = train.groupby("kind")["never_learned"].mean()
    st.caption("Never learned: " + ", ".join(f"{k} {v:.1%}" for k, v in never.items()))
    st.subheader("Data map")
    colours = [c for c in COLOURS if c in table.columns]
    colour = st.selectbox("Colour by", colours, key="forgetting_colour")
    chosen = selectable_scatter(
        charts.scatter(
            train,
            x="variability",
            y="confidence",
            color=colour,
            title="confidence against variability over epochs (training examples)",
        ),
        train,
        key="forgetting_map",
    )
    st.caption(
        "Top left: easy to learn. Bottom left: hard to learn, where flipped labels land. "
        "Right: ambiguous. Draw a box or lasso to list the examples inside."
    )
    if len(chosen):
        st.markdown(f"**{len(chosen)} selected examples** (open one on the Examples page)")
        st.dataframe(chosen, hide_index=True, key="forgetting_selected")
