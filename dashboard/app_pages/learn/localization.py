"""The Learn lesson "Localization and example-tied dropout": how many hidden units must be
zeroed to flip an example, and what dropping example-tied memorization units does to flipped,
clean and test accuracy (Maini et al. 2023)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data
from memdash.dashboard.app_pages.learn._common import intro, need_roles, show

SLUG = "localization"
TITLE = "Localization and example-tied dropout"

# the example-tied dropout result's keys (run.json) by kind of example
TIED_KEYS = {"flipped": "noisy_acc", "clean": "clean_acc", "test": "test_acc"}
TIED_MODES = {"keep": "kept", "drop": "dropped"}


def render() -> None:
    intro(
        TITLE,
        "Where does a network keep a memorized label? Zero its hidden units one at a time, "
        "most important for that example first, until the prediction changes: memorized "
        "examples change after a few units, spread over several layers. Example-tied dropout "
        "turns this around: each example may use only its own small set of units, which can "
        "be switched off after training.",
        "Can memorization be found in, and cut out of, a few units?",
        "Maini et al. 2023, Can neural network memorization be localized?",
    )
    paths = need_roles("noise", "tied")
    if paths is None:
        return
    view = st.radio(
        "Show",
        ["units needed to flip an example", "example-tied dropout"],
        horizontal=True,
        key="learn_loc_view",
    )
    if view.startswith("units"):
        per = data.derived(paths["noise"], "localization.parquet")
        figure = charts.histograms(
            per,
            value="neurons_zeroed",
            group="kind",
            title="hidden units zeroed until the example's prediction changes",
        )
        show(figure, "learn_loc_chart")
        med = per.groupby("kind")["neurons_zeroed"].median()
        st.markdown(
            f"Median: **{med['flipped']:g}** units for a flipped example, "
            f"**{med['clean']:g}** for a clean one."
        )
    else:
        table = tied_table(data.run_meta(paths["tied"])["example_tied_dropout"])
        show(
            charts.bars(
                table,
                x="units",
                y="accuracy",
                color="examples",
                title="accuracy with the memorization units kept, and dropped after training",
                x_title="memorization units",
            ),
            "learn_loc_chart",
        )
        st.markdown(tied_sentence(table))


def tied_table(result: dict) -> pd.DataFrame:
    """run.json's example-tied dropout result as the chart's rows: columns ``units`` (kept
    or dropped), ``examples`` (flipped, clean, test) and ``accuracy``, for the kinds it
    holds."""
    rows = [
        {"units": TIED_MODES[mode], "examples": kind, "accuracy": float(result[mode][key])}
        for kind, key in TIED_KEYS.items()
        for mode in TIED_MODES
        if key in result.get(mode, {})
    ]
    return pd.DataFrame(rows, columns=["units", "examples", "accuracy"])


def tied_sentence(table: pd.DataFrame) -> str:
    """What the bars show: each kind's accuracy with the units kept and dropped."""
    wide = table.pivot(index="examples", columns="units", values="accuracy")

    def change(kind: str) -> str:
        return f"from **{wide.loc[kind, 'kept']:.0%}** to **{wide.loc[kind, 'dropped']:.0%}**"

    parts = []
    if "flipped" in wide.index:
        parts.append(
            f"the flipped examples {change('flipped')} right on the labels they were trained with"
        )
    if "clean" in wide.index:
        parts.append(f"the clean examples {change('clean')}")
    if "test" in wide.index:
        parts.append(f"test accuracy {change('test')}")
    if not parts:
        return ""
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + ", and " + parts[-1]
    return f"Dropping the memorization units after training takes {listed}."
