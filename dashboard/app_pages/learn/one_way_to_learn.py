"""The Learn lesson "One way to learn, N ways to memorize": how alike the same layer is
across seeds, with true labels and with random labels (linear CKA, Kornblith et al. 2019)."""

from __future__ import annotations

import streamlit as st

from memdash.dashboard import data
from memdash.dashboard.app_pages import similarity
from memdash.dashboard.app_pages.common import study_groups
from memdash.dashboard.app_pages.learn._common import intro, need_study

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
        "Neural Network Memorization Dissection; linear CKA: Kornblith et al. 2019, "
        "Similarity of neural network representations revisited",
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
    last = lines.groupby("group")["value"].last()
    st.markdown(
        f"At the last layer after epoch {epoch}, two seeds agree at **{last['true labels']:.2f}** "
        f"with true labels and at **{last['random labels']:.2f}** with random labels. Move "
        "back to epoch 1: before the random labels are memorized, the two groups look "
        "more alike."
    )
