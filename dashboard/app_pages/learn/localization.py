"""The Learn lesson "Localization and example-tied dropout": how many neurons must be zeroed
to flip an example, and what dropping example-tied memorization neurons does to flipped and
test accuracy (Maini et al. 2023)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data
from memdash.dashboard.app_pages.learn._common import intro, need_roles, show

SLUG = "localization"
TITLE = "Localization and example-tied dropout"


def render() -> None:
    intro(
        TITLE,
        "Where does a network keep a memorized label? Zero its neurons one at a time, most "
        "important for that example first, until the prediction changes: memorized examples "
        "change after a few neurons, spread over several layers. Example-tied dropout turns "
        "this around: each example may use only its own small set of neurons, which can be "
        "switched off after training.",
        "Can memorization be found in, and cut out of, a few neurons?",
        "Maini et al. 2023, Can neural network memorization be localized?",
    )
    paths = need_roles("noise", "tied")
    if paths is None:
        return
    view = st.radio(
        "Show",
        ["neurons needed to flip an example", "example-tied dropout"],
        horizontal=True,
        key="learn_loc_view",
    )
    if view.startswith("neurons"):
        per = data.derived(paths["noise"], "localization.parquet")
        show(charts.histograms(per, value="neurons_zeroed", group="kind"), "learn_loc_chart")
        med = per.groupby("kind")["neurons_zeroed"].median()
        st.markdown(
            f"Median: **{med['flipped']:g}** neurons for a flipped example, "
            f"**{med['clean']:g}** for a clean one."
        )
    else:
        result = data.run_meta(paths["tied"])["example_tied_dropout"]
        rows = [
            {"memorization neurons": m, "examples": name, "accuracy": result[m][key]}
            for m in ("keep", "drop")
            for key, name in (("noisy_acc", "flipped"), ("test_acc", "test"))
        ]
        show(
            charts.lines(
                pd.DataFrame(rows), x="memorization neurons", y="accuracy", color="examples"
            ),
            "learn_loc_chart",
        )
