"""The Learn lesson "One way to learn, N ways to memorize": how alike the same layer is
across seeds, with true labels and with random labels (linear CKA, Kornblith et al. 2019)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.dashboard import data
from memdash.dashboard.app_pages import similarity
from memdash.dashboard.app_pages.common import study_groups
from memdash.dashboard.app_pages.learn._common import intro, need_study
from memdash.dashboard.labels import label, md_text

SLUG = "one-way-to-learn"
TITLE = "One way to learn, N ways to memorize"


def render() -> None:
    intro(
        TITLE,
        "Train the same network three times from three seeds, and compare what the same "
        "layer computes in each: represent every example by the layer's activations and ask "
        "whether the examples that one network places close together are close in the other "
        "too (linear CKA, 1 = the same up to a rotation and a scale). With true labels, the "
        "three networks end up computing almost the same thing: there is one way to learn "
        "the data. With random labels, each network finds its own way to memorize them, "
        "and its later layers differ from the other seeds'.",
        "Do networks from different initializations learn the same representation, and does "
        "memorizing random labels change that?",
        "Gu & Tresp 2019, Neural network memorization dissection; linear CKA: Kornblith et "
        "al. 2019, Similarity of neural network representations revisited",
    )
    paths = need_study("true_group", "random_group")
    if paths is None:
        return
    groups = study_groups(paths)
    epochs = data.embedding_epochs(tuple(p for group in groups.values() for p in group))
    left, right = st.columns([1, 2])
    epoch = left.select_slider("After epoch", epochs, value=epochs[-1], key="learn_oneway_epoch")
    with right:
        measure = similarity.measure_control("learn_oneway_measure")
    lines = similarity.group_heatmaps(groups, epoch, measure, key="learn_oneway")
    layer, values = last_layer(lines)
    gaps = {  # the chosen epoch from the chart's own table, the other from the same source
        e: _gap(values if e == epoch else last_layer(_same_layer(groups, e, measure))[1])
        for e in dict.fromkeys((epochs[0], epochs[-1]))
    }
    st.markdown(f"{agreement_sentence(layer, values, epoch, label(measure))} {gap_sentence(gaps)}")


def _same_layer(groups: dict[str, tuple[str, ...]], epoch: int, measure: str) -> pd.DataFrame:
    """What the line chart draws after `epoch`: per group the same layer in two seeds
    (columns ``group``, ``layer``, ``value``), from the same cached similarity."""
    first = Path(next(iter(groups.values()))[0])
    frames = [
        similarity.diagonal(data.similarity(paths, epoch, measure, symmetric=True)).assign(
            group=name
        )
        for name, paths in groups.items()
    ]
    return data.by_layer(first, pd.concat(frames, ignore_index=True))


def last_layer(lines: pd.DataFrame) -> tuple[str, dict[str, float]]:
    """The last layer of the line chart's table (layers in forward order) and each group's
    value there."""
    layer = str(lines["layer"].iloc[-1])
    at = lines[lines["layer"] == layer]
    return layer, dict(zip(at["group"], at["value"].astype(float), strict=True))


def _gap(values: dict[str, float]) -> float:
    """How much more alike the true-label seeds are than the random-label ones."""
    return values["true labels"] - values["random labels"]


def agreement_sentence(layer: str, values: dict[str, float], epoch: int, measure: str) -> str:
    """What the chart shows at its last layer after `epoch`."""
    return (
        f"At the last layer ({md_text(layer)}), after epoch {epoch}, two seeds agree at "
        f"**{values['true labels']:.2f}** with true labels and at "
        f"**{values['random labels']:.2f}** with random labels ({measure})."
    )


def gap_sentence(gaps: dict[int, float]) -> str:
    """How the gap between the groups at the last layer changes from the first recorded
    epoch to the last, in numbers and in words that follow them."""
    if len(gaps) < 2:
        return ""
    (first, start), (last, end) = list(gaps.items())[0], list(gaps.items())[-1]
    change = end - start
    if abs(change) < 0.05:
        verdict = (
            "the difference is already there after the first recorded epoch, and training "
            "hardly changes it"
        )
    elif change > 0:
        verdict = "the groups drift apart as the random labels are memorized"
    else:
        verdict = "the groups come closer over training"
    return (
        f"The gap between the groups is **{start:.2f}** after epoch {first} and "
        f"**{end:.2f}** after epoch {last}: {verdict}."
    )
