"""The Learn lesson "Forgetting events": one example followed through training, and how often
flipped and clean examples go from right to wrong (Toneva et al. 2019)."""

from __future__ import annotations

import streamlit as st

from memdash.dashboard import charts, data
from memdash.dashboard.app_pages.learn._common import (
    intro,
    kind_choice,
    need_roles,
    show,
    train_table,
)

SLUG = "forgetting"
TITLE = "Forgetting events"


def render() -> None:
    intro(
        TITLE,
        "Between two epochs an example can go from right to wrong: a *forgetting event*. "
        "Most clean examples, once learned, are never forgotten. Examples with wrong labels "
        "flip back and forth as the network is pulled between the label and what similar "
        "examples say. Choose an example to follow it through training.",
        "Which examples does the network keep forgetting?",
        "Toneva et al. 2019, An empirical study of example forgetting during deep neural "
        "network learning",
    )
    paths = need_roles("noise")
    if paths is None:
        return
    table = train_table(paths["noise"])
    kind = kind_choice("Examples", "learn_forget_kind")
    ranked = table[table["kind"] == kind].sort_values("forgetting_events", ascending=False)
    rank = st.slider(
        "Rank by forgetting events (0 = forgotten most)",
        0,
        len(ranked) - 1,
        0,
        key="learn_forget_rank",
    )
    row = ranked.iloc[rank]
    show(
        charts.trajectory(data.trajectory(paths["noise"], int(row["example_id"])).dropna()),
        "learn_forget_chart",
    )
    means = table.groupby("kind")["forgetting_events"].mean()
    kept = table["unforgettable"].astype(bool).groupby(table["kind"]).mean()
    st.markdown(
        f"Example {int(row['example_id'])} was forgotten **{int(row['forgetting_events'])}** "
        f"times. On average a flipped example is forgotten {means['flipped']:.1f} times and a "
        f"clean one {means['clean']:.1f} times; **{_share(kept['clean'])}** of the clean "
        f"examples and **{_share(kept['flipped'])}** of the flipped ones are learned and never "
        "forgotten."
    )


def _share(share: float) -> str:
    """A share in whole percent, with one decimal under 1% so a few examples are not 0%."""
    return f"{share:.1%}" if 0 < share < 0.01 else f"{share:.0%}"
