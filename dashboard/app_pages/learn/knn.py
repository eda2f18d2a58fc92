"""The Learn lesson "k-NN against the network": by layer and epoch, how often the network's
answer and its k nearest neighbours' vote are right on flipped or clean training examples
(Cohen, Sapiro and Giryes 2018)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data
from memdash.dashboard.app_pages.learn._common import intro, kind_choice, need_roles, show
from memdash.dashboard.labels import label, md_text
from memdash.dashboard.palette import SPARE_COLORS

SLUG = "knn"
TITLE = "k-NN against the network"

NETWORK = f"{label('dnn_accuracy')} (given label)"  # the same at every layer: drawn once


def render() -> None:
    intro(
        TITLE,
        "At any layer, each example has neighbours: the training examples whose activations "
        "are closest. Let the k nearest vote on its class and compare with the network's "
        "answer. Where the two agree the layer represents the example like its class; where "
        "the network says the flipped label but the neighbours vote for the true class, the "
        "network has memorized a label its own features do not support.",
        "Does the network classify like its nearest neighbours, or does it memorize?",
        "Cohen, Sapiro and Giryes 2018, DNN or k-NN: that is the generalize vs. memorize question",
    )
    paths = need_roles("noise")
    if paths is None:
        return
    k = data.derived(paths["noise"], "knn.parquet")
    subset = kind_choice("Training examples", "learn_knn_subset")
    rows = data.by_layer(paths["noise"], k[(k["split"] == "train") & (k["subset"] == subset)])
    long = series(rows)
    show(
        charts.lines(
            long,
            x="epoch",
            y="accuracy",
            color="series",
            title="network (given label) and k-NN (true label) by epoch",
            colors=_colors(long),
        ),
        "learn_knn_chart",
    )
    st.markdown(sentence(long, subset, _k(paths["noise"])))


def series(rows: pd.DataFrame) -> pd.DataFrame:
    """The chart's lines from knn.parquet's rows of one subset (layers in forward order): the
    network's accuracy on the given label once (it does not depend on the layer), then the
    k-NN's accuracy on the true label at each layer. Columns ``series``, ``layer`` (empty
    for the network), ``epoch``, ``accuracy``."""
    network = rows.groupby("epoch", as_index=False)["dnn_accuracy"].first()
    frames = [network.rename(columns={"dnn_accuracy": "accuracy"}).assign(series=NETWORK, layer="")]
    for layer in dict.fromkeys(rows["layer"]):
        at = rows[rows["layer"] == layer]
        frames.append(
            pd.DataFrame(
                {
                    "series": f"{label('knn_true_accuracy')} at {layer}",
                    "layer": layer,
                    "epoch": at["epoch"].to_numpy(),
                    "accuracy": at["knn_true_accuracy"].to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[["series", "layer", "epoch", "accuracy"]]


def sentence(long: pd.DataFrame, subset: str, k: int | None) -> str:
    """The chart's values at its last epoch, in words."""
    last = long[long["epoch"] == long["epoch"].max()]
    network = float(last.loc[last["series"] == NETWORK, "accuracy"].iloc[0])
    votes = [
        f"**{row.accuracy:.0%}** at {md_text(row.layer)}"
        for row in last[last["series"] != NETWORK].itertuples()
    ]
    listed = ", ".join(votes[:-1]) + " and " + votes[-1] if len(votes) > 1 else "".join(votes)
    nearest = f"{k} nearest neighbours" if k else "nearest neighbours"
    return (
        f"After epoch {int(last['epoch'].iloc[0])}, the network gives the {subset} training "
        f"examples their given label on **{network:.0%}**; their {nearest} vote for the "
        f"true class on {listed}."
    )


def _k(path: Path) -> int | None:
    """The k of the run's k-NN analysis (derived/manifest.json), None if not recorded."""
    k = data.manifest(path).get("knn", {}).get("params", {}).get("knn_k")
    return int(k) if k else None


def _colors(long: pd.DataFrame) -> dict[str, str]:
    """The network in black, each layer's k-NN in a colour of its own."""
    layers = [s for s in dict.fromkeys(long["series"]) if s != NETWORK]
    spare = SPARE_COLORS[1:]
    return {NETWORK: SPARE_COLORS[0]} | {s: spare[i % len(spare)] for i, s in enumerate(layers)}
