"""Forgetting and data map: how often examples are forgotten, when they are learned, and the
data map (Toneva et al. 2019; Swayamdipta et al. 2020)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data, state
from memdash.dashboard.app_pages.common import (
    choose_run,
    offer_analysis,
    selectable_scatter,
    selection_list,
)
from memdash.dashboard.app_pages.detail import example_section
from memdash.dashboard.labels import label

COLOURS = ("kind", "correctness", "forgetting_events", "mem_score", "label")


def render() -> None:
    st.title("Forgetting and data map")
    path = choose_run(data.run_roots())
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
        format_func=label,
        key="forgetting_when",
        help="first learned: the first epoch it was right; learned for good: right from then on",
    )
    right.plotly_chart(
        charts.histograms(train.dropna(subset=[when]), value=when, group="kind", title=label(when)),
        width="stretch",
        key="forgetting_learned",
    )
    never = train.groupby("kind")["never_learned"].mean().sort_index()
    st.caption("Never learned: " + ", ".join(f"{k} {v:.1%}" for k, v in never.items()))
    st.subheader("Data map")
    colours = [c for c in COLOURS if c in table.columns]
    colour = st.selectbox("Colour by", colours, format_func=label, key="forgetting_colour")
    data_map = charts.scatter(
        train,
        x="variability",
        y="confidence",
        color=colour,
        title="confidence against variability over epochs (training examples)",
    )
    current = state.current_example(len(table))
    data_map = charts.mark_example(data_map, train, current, x="variability", y="confidence")
    chosen = selectable_scatter(data_map, train, key="forgetting_map")
    st.caption(
        "Top left: easy to learn. Bottom left: hard to learn. Right: ambiguous. "
        + where_flipped_land(train)
        + " Draw a box or lasso to list the examples inside; click a point to open it."
    )
    selection_list(path, chosen, key="forgetting_selected")
    example_section(path, table, key="forgetting")


HARD_CONFIDENCE, AMBIGUOUS_VARIABILITY = 0.5, 0.2  # region edges of Swayamdipta et al.'s map


def where_flipped_land(train: pd.DataFrame) -> str:
    """Where this run's flipped examples sit on the data map, in words (by their medians)."""
    flipped = train[train["kind"] == "flipped"]
    if flipped.empty:
        return "This run has no flipped examples."
    confidence, variability = flipped["confidence"].median(), flipped["variability"].median()
    if variability >= AMBIGUOUS_VARIABILITY:
        region = "ambiguous (right): the network fitted their wrong labels during training"
    elif confidence < HARD_CONFIDENCE:
        region = "hard to learn (bottom left): their wrong labels were rarely fitted"
    else:
        region = "easy to learn (top left): their wrong labels were memorized early"
    return (
        f"Here the flipped examples' median confidence is {confidence:.2f} and variability "
        f"{variability:.2f}: {region}."
    )
