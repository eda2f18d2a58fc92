"""The Learn lesson "The held-out memorization score": how often an example is right in the
models that trained on it against those that did not (Feldman & Zhang 2020)."""

from __future__ import annotations

import streamlit as st

from memdash.dashboard import charts, data
from memdash.dashboard.app_pages.learn._common import estimated_table, intro, need_roles, show

SLUG = "heldout-score"
TITLE = "The held-out memorization score"


def render() -> None:
    intro(
        TITLE,
        "Train many networks, each on a random part of the training set. For one example, "
        "compare how often it is right in the networks that trained on it with the networks "
        "that did not. A typical example is right either way (score near 0). A memorized "
        "one is right only when it was trained on (score near 1).",
        "How much does getting this example right depend on having seen it?",
        "Feldman & Zhang 2020, What neural networks memorize and why",
    )
    paths = need_roles("noise")
    if paths is None:
        return
    table = estimated_table(paths["noise"], "mem_score")
    if table is None:
        return
    threshold = st.slider(
        "Call an example memorized above", 0.0, 1.0, 0.5, 0.05, key="learn_mem_threshold"
    )
    figure = charts.histograms(
        table, value="mem_score", group="kind", title="the held-out score of each training example"
    )
    charts.threshold_lines(figure, x=threshold, text=f"memorized above {threshold:.2f}")
    show(figure, "learn_heldout_chart")
    share = table.assign(high=table["mem_score"] > threshold).groupby("kind")["high"].mean()
    st.markdown(
        f"Above {threshold:.2f}: **{share['flipped']:.0%}** of flipped examples and "
        f"**{share['clean']:.0%}** of clean ones{_from(data.manifest(paths['noise']))}."
    )


def _from(manifest: dict) -> str:
    """Which estimate the scores come from (derived/manifest.json's heldout step): how many
    networks, on what share of the training set; empty if the manifest does not say."""
    params = manifest.get("heldout", {}).get("params", {})
    models, ratios = params.get("models"), params.get("ratios") or []
    if not models or not ratios:
        return ""
    shares = " or ".join(f"{r:.0%}" for r in ratios)
    return (
        f" (scores from {models} networks, each trained on a random {shares} of the training set)"
    )
