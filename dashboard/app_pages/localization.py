"""Localization: where in the network the flipped examples are memorized (Maini et al. 2023)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data
from memdash.dashboard.app_pages.common import choose_run, not_for_text, offer_analysis
from memdash.dashboard.labels import label

# what `memdash localize` writes (derived/)
RESULTS = (
    *("rewinding.parquet", "retraining.parquet"),
    *("localization.parquet", "localization_layers.parquet"),
)
TEXT_RUN = (
    "This is a language model's run: Maini et al.'s localization rewinds layers and zeroes "
    "units until a classifier stops predicting an example's flipped label, and a language "
    "model's sequences have no label to flip, so it does not apply."
)


def render() -> None:
    st.title("Localization")
    path = choose_run(data.run_roots())
    if path is None or not_for_text(path, TEXT_RUN):
        return
    layers = data.layer_order(path)
    _gradients(path)
    if any(data.derived(path, name) is None for name in RESULTS):  # one button for them all
        offer_analysis(
            path,
            "Rewinding, retraining and neuron flipping",
            ["rewinding", "retraining", "flipping"],
            "memdash localize",
            "localization_compute",
        )
    _rewinding(path, layers)
    _flipping(path, layers)
    _tied_dropout(path)


def _missing(what: str) -> None:
    st.info(f"{what}: not computed yet (the button above computes it with the rest).")


def _gradients(path: Path) -> None:
    st.subheader("Gradient accounting")
    grads = data.layer_grads(path)
    if grads.empty:
        st.info("No gradient accounting in this run (it needs flipped labels).")
        return
    grads = grads.replace({"subset": {"noisy": "flipped"}})
    left, right = st.columns(2)
    left.plotly_chart(
        charts.lines(
            grads,
            x="epoch",
            y="grad_norm",
            color="subset",
            dash="layer",
            title="gradient norm per layer (summed over the epoch)",
        ),
        width="stretch",
        key="localization_norms",
    )
    cosine = grads[grads["subset"] == "clean"]
    right.plotly_chart(
        charts.lines(
            cosine,
            x="epoch",
            y="cosine",
            color="layer",
            title="cosine between the clean and the flipped part's gradients",
        ),
        width="stretch",
        key="localization_cosine",
    )
    st.caption(
        "Each batch's loss is split into its clean and its flipped part. A few flipped "
        "examples pulling as hard as the many clean ones, in the opposite direction "
        "(cosine below 0), is the paper's first finding."
    )


def _rewinding(path: Path, layers: list[str]) -> None:
    st.subheader("Layer rewinding and retraining")
    rewind = data.derived(path, "rewinding.parquet")
    retrain = data.derived(path, "retraining.parquet")
    if rewind is None or retrain is None:
        _missing("Rewinding and retraining")
        return
    group = st.radio(
        "Accuracy of",
        ["flipped_acc", "clean_acc", "test_acc"],
        format_func=label,
        horizontal=True,
        key="localization_group",
    )
    left, right = st.columns(2)
    left.plotly_chart(
        charts.heatmap(
            rewind,
            x="epoch",
            y="layer",
            value=group,
            y_order=layers,
            title="one layer rewound to the weights of an epoch",
            colorbar_title="accuracy",  # whose: the choice above
        ),
        width="stretch",
        key="localization_rewind",
    )
    right.plotly_chart(
        charts.lines(
            retrain,
            x="epoch",
            y=group,
            color="layer",
            title="one layer reset, then trained alone on clean examples",
        ),
        width="stretch",
        key="localization_retrain",
    )
    st.caption(
        "Rewinding a layer that holds the memorization drops flipped accuracy; if retraining "
        "any single layer on clean data brings flipped accuracy back, the other layers still "
        "hold it: memorization is not in one layer."
    )


def _flipping(path: Path, layers: list[str]) -> None:
    st.subheader("Neuron flipping")
    per = data.derived(path, "localization.parquet")
    per_layer = data.derived(path, "localization_layers.parquet")
    if per is None or per_layer is None:
        _missing("Neuron flipping")
        return
    medians = per.groupby("kind")["neurons_zeroed"].median()
    st.caption(
        "Hidden units zeroed, most important first, until the example's prediction leaves its "
        "given label. Median: "
        + ", ".join(f"{k} {v:g}" for k, v in medians.items())
        + f". Capped examples: {int(per['hit_cap'].sum())}."
    )
    left, right = st.columns(2)
    left.plotly_chart(
        charts.histograms(per, value="neurons_zeroed", group="kind", title="units needed"),
        width="stretch",
        key="localization_hist",
    )
    right.plotly_chart(
        charts.histograms(
            per,
            value="collateral_drop",
            group="kind",
            title="collateral drop in the other examples' accuracy",
        ),
        width="stretch",
        key="localization_collateral",
    )
    st.plotly_chart(
        charts.layer_distribution(per_layer, value="units_zeroed", layers=layers),
        width="stretch",
        key="localization_layers",
    )
    st.caption(
        "Where the zeroed units lie: per layer, the units each example needed there (one point "
        "per example, boxes of the quartiles). Few units spread over several layers for "
        "flipped examples is Maini et al.'s finding."
    )


def _tied_dropout(path: Path) -> None:
    result = data.run_meta(path).get("example_tied_dropout")
    if not result:
        return
    st.subheader("Example-tied dropout")
    table = pd.DataFrame(result).T.rename(
        columns={"noisy_acc": "flipped_acc"},
        index={"keep": "memorization channels kept", "drop": "memorization channels dropped"},
    )
    st.dataframe(table, width="stretch")
    st.caption(
        "Trained with example-tied dropout: each example kept its own random share of every "
        "hidden layer's channels. Dropping all of them at the end should remove what was "
        "memorized (flipped accuracy falls) and keep what generalizes (test accuracy holds)."
    )
