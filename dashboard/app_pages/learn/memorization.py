"""The Learn lesson "What memorization is": training and test accuracy of a network trained
on clean, partly flipped or shuffled labels (Zhang et al. 2017; Feldman 2020)."""

from __future__ import annotations

import streamlit as st

from memdash.dashboard import charts
from memdash.dashboard.app_pages.common import chosen_curves
from memdash.dashboard.app_pages.learn._common import intro, need_roles, show

SLUG = "what-is-memorization"
TITLE = "What memorization is"

NOISE_RUNS = {"no noise": "clean", "20% flipped labels": "noise", "all labels shuffled": "random"}


def render() -> None:
    intro(
        TITLE,
        "A network *memorizes* an example when it gets that example right only because it "
        "saw it in training: it could not have predicted it from the other examples. Large "
        "networks can memorize anything, even labels chosen at random. That matters twice: "
        "memorized examples can leak private training data, and memorizing wrong labels "
        "hurts accuracy on new data. Pick a training set below and watch the training and "
        "test accuracy.",
        "Can a network fit labels that carry no information, and what does that cost on new data?",
        "Zhang et al. 2017, Understanding deep learning requires rethinking generalization; "
        "Feldman 2020, Does learning require memorization?",
    )
    paths = need_roles(*NOISE_RUNS.values())
    if paths is None:
        return
    choice = st.radio("Training labels", list(NOISE_RUNS), horizontal=True, key="learn_mem_noise")
    curves = chosen_curves([paths[NOISE_RUNS[choice]]])
    show(charts.training_curves(curves), "learn_mem_chart")
    final = curves[curves["epoch"] == curves["epoch"].max()].set_index("group")["accuracy"]
    st.markdown(
        "After the last epoch: "
        + ", ".join(f"**{g}** {v:.0%}" for g, v in final.items())
        + ". With shuffled labels the network still fits most training examples, but the "
        "test set stays at chance: what it learned is memorized, not understood."
    )
