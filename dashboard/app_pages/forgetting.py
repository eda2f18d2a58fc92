"""Forgetting and data map: how often examples are forgotten, when they are learned, and the
data map (Toneva et al. 2019; Swayamdipta et al. 2020). On a text run "right" is extractable
(greedy decoding from a sequence's prefix reproduces its suffix) and the probability is the
geometric-mean token probability."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data, state
from memdash.dashboard.app_pages.common import (
    choose_run,
    density_note,
    offer_analysis,
    selectable_scatter,
)
from memdash.dashboard.app_pages.detail import example_section, selection_list
from memdash.dashboard.charts.density import every_point
from memdash.dashboard.charts.text import for_text_run
from memdash.dashboard.data import run as run_data
from memdash.dashboard.labels import label

COLOURS = ("kind", "correctness", "forgetting_events", "mem_score", "label")
TEXT_COLOURS = ("kind", "correctness", "forgetting_events", "duplicates", "canary_repeats")


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
    text = run_data.is_text(path)

    def drawn(figure):  # the charts' words and colours as a text run means them
        return for_text_run(figure) if text else figure

    left, right = st.columns(2)
    left.plotly_chart(
        drawn(
            charts.histograms(
                train,
                value="forgetting_events",
                group="kind",
                title=label("forgetting_events", text=True)
                if text
                else "forgetting events (right -> wrong between epochs)",
            )
        ),
        width="stretch",
        key="forgetting_hist",
    )
    when = right.radio(
        "Learning time",
        ["first_learned_epoch", "learned_epoch"],
        horizontal=True,
        format_func=lambda c: label(c, text=text),
        key="forgetting_when",
        help=(
            "first extractable: the first epoch greedy decoding from its prefix reproduced its "
            "suffix; for good: extractable from then on"
            if text
            else "first learned: the first epoch it was right; learned for good: right from then on"
        ),
    )
    learned = train.dropna(subset=[when])
    if learned.empty:
        noun, right_word = ("sequence", "extractable") if text else ("example", "right")
        right.info(
            f"No training {noun} was {right_word} at any epoch."
            if when == "first_learned_epoch"
            else f"No training {noun} stays {right_word} from some epoch to the last."
        )
    else:
        right.plotly_chart(
            drawn(
                charts.histograms(learned, value=when, group="kind", title=label(when, text=text))
            ),
            width="stretch",
            key="forgetting_learned",
        )
    never = train.groupby("kind")["never_learned"].mean().sort_index()
    st.caption(
        f"{label('never_learned', text=text).capitalize()}: "
        + ", ".join(f"{k} {v:.1%}" for k, v in never.items())
    )
    st.subheader("Data map")
    colours = [c for c in (TEXT_COLOURS if text else COLOURS) if c in table.columns]
    colour = st.selectbox(
        "Colour by", colours, format_func=lambda c: label(c, text=text), key="forgetting_colour"
    )
    data_map = every_point(  # a large run: every example as density, a sample as points
        train,
        x="variability",
        y="confidence",
        color=colour,
        title="confidence against variability over epochs (training "
        + ("sequences)" if text else "examples)"),
    )
    current = state.current_example(len(table))
    data_map = charts.mark_example(data_map, train, current, x="variability", y="confidence")
    chosen = selectable_scatter(
        drawn(data_map), train, key="forgetting_map", x="variability", y="confidence"
    )
    density_note(data_map, len(train), text=text)
    st.caption(
        "Top left: easy to learn. Bottom left: hard to learn. Right: ambiguous. "
        + (where_repeated_land(train) if text else where_flipped_land(train))
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


def where_repeated_land(train: pd.DataFrame) -> str:
    """Where a text run's sequences seen more than once per epoch (duplicates, canaries)
    sit on the data map against the plain ones, in words (by their median confidence)."""
    medians = train.groupby("kind")["confidence"].median().sort_index()
    text = (
        "Confidence here is a sequence's token probability (the geometric mean, exp of minus "
        "its mean token loss) averaged over epochs; median by kind: "
        + ", ".join(f"{k} {v:.3f}" for k, v in medians.items())
        + "."
    )
    repeated = [k for k in ("duplicate", "canary") if k in medians]
    if "plain" not in medians or not repeated:
        return text
    above = [k for k in repeated if medians[k] > medians["plain"]]
    if not above:
        return text + " The sequences seen several times per epoch sit no higher than the plain."
    return text + f" The {' and '.join(above)} sequences sit above the plain ones."
