"""Exposure: how far each canary's loss has fallen below that of never-trained references
(Carlini et al. 2019)."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data
from dashboard.app_pages.common import choose_run, offer_analysis

METHODS = {
    "exposure_interpolation": "rank among the references: at most log2(#references)",
    "exposure_extrapolation": "from a skew-normal fitted to the references: can pass the ceiling",
}


def render() -> None:
    st.title("Exposure")
    path = choose_run(data.run_roots(), key="exposure_run")
    if path is None:
        return
    table = data.derived(path, "exposure.parquet")
    if table is None:
        offer_analysis(path, "Exposure", ["exposure"], "memdash analyze", "exposure_compute")
        return
    if table.empty:
        st.info("No canaries in this run: train with `--canaries 10` to measure exposure.")
        return
    epochs = sorted(table["epoch"].unique())
    left, right = st.columns(2)
    method = left.radio(
        "Exposure", list(METHODS), horizontal=True, key="exposure_method", help=str(METHODS)
    )
    epoch = right.select_slider("Epoch", epochs, value=epochs[-1], key="exposure_epoch")
    ceiling = float(table["ceiling"].iloc[0])
    st.plotly_chart(
        charts.exposure_chart(table, epoch=epoch, method=method, ceiling=ceiling),
        width="stretch",
        key="exposure_box",
    )
    over = table.groupby(["epoch", "kind", "repeats"], as_index=False)[method].mean()
    over["group"] = over.apply(
        lambda r: "references (untrained)" if r["kind"] == "reference" else f"seen {r['repeats']}x",
        axis=1,
    )
    st.plotly_chart(
        charts.lines(over, x="epoch", y=method, color="group", title="mean exposure over epochs"),
        width="stretch",
        key="exposure_lines",
    )
    st.caption(
        "References are scored against the other references: their mean stays near "
        "log2(e) = 1.44 bits, the exposure of a canary the model never saw."
    )
