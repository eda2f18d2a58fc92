"""The Learn lesson "Data maps": confidence against variability of every training example,
and how many flipped ones a confidence threshold flags (Swayamdipta et al. 2020)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memdash.dashboard import charts
from memdash.dashboard.app_pages.learn._common import intro, need_roles, show, train_table

SLUG = "data-maps"
TITLE = "Data maps"


def render() -> None:
    intro(
        TITLE,
        "For each training example, average over epochs the probability the network gives "
        "its label (*confidence*) and how much that probability moves (*variability*). "
        "Easy examples sit at the top left; examples the network never believes sit at the "
        "bottom left. Wrong labels start there; once the network begins to memorize them "
        "their probability swings, and they drift right (ambiguous). Move the threshold to "
        "flag the least-confident examples as suspicious.",
        "Can training dynamics alone find mislabeled examples?",
        "Swayamdipta et al. 2020, Dataset cartography",
    )
    paths = need_roles("noise")
    if paths is None:
        return
    table = train_table(paths["noise"])
    threshold = st.slider(
        "Flag examples with confidence below", 0.0, 1.0, 0.3, 0.05, key="learn_map_threshold"
    )
    flagged = table["confidence"] < threshold
    flipped = table["kind"] == "flipped"
    figure = charts.scatter(
        table,
        x="variability",
        y="confidence",
        color="kind",
        title="the data map of the 20% noise run",
    )
    charts.threshold_lines(figure, y=threshold, text=f"confidence {threshold:.2f}")
    charts.ring(figure, table[flagged], x="variability", y="confidence", name="flagged")
    show(figure, "learn_map_chart")
    st.markdown(where_sentence(table))
    caught = int((flagged & flipped).sum())
    st.markdown(
        f"**{int(flagged.sum())}** examples flagged: **{caught}** of the {int(flipped.sum())} "
        f"flipped ones (recall {caught / flipped.sum():.0%}), and "
        f"{int((flagged & ~flipped).sum())} clean ones."
    )


def where_sentence(table: pd.DataFrame) -> str:
    """Where the flipped examples sit on the map against the clean ones: their median
    variability, and the direction that follows from it."""
    median = table.groupby("kind")["variability"].median()
    flipped, clean = float(median["flipped"]), float(median["clean"])
    if flipped > clean + 0.02:
        side = "further right, where the ambiguous examples are"
    elif flipped < clean - 0.02:
        side = "further left than the clean ones"
    else:
        side = "about as far right as the clean ones"
    return (
        f"The median variability is **{flipped:.2f}** for the flipped examples and "
        f"**{clean:.2f}** for the clean ones: the flipped examples sit {side}."
    )
