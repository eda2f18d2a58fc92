"""The Learn lesson "What memorization is": training and test accuracy of a network trained
on clean, partly flipped or shuffled labels (Zhang et al. 2017; Feldman 2020)."""

from __future__ import annotations

import streamlit as st

from memdash.analysis.measures.curves import GROUPS
from memdash.dashboard import charts, data
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
    final = final.reindex([g for g in GROUPS if g in final.index])  # the legend's order
    n_classes = int(data.run_meta(paths[NOISE_RUNS[choice]])["n_classes"])
    st.markdown(
        "After the last epoch: "
        + ", ".join(f"**{g}** {v:.0%}" for g, v in final.items())
        + ". "
        + comment(final.to_dict(), n_classes)
    )


def comment(final: dict[str, float], n_classes: int) -> str:
    """What the last epoch's accuracies (curve group -> accuracy) say, in words that follow
    them: test accuracy against chance, the flipped labels fitted, or the gap between
    training and test."""
    test = final.get("test")
    trained = [final[g] for g in ("train (clean)", "train (flipped)") if g in final]
    if test is None or not trained:
        return ""
    chance = 1 / n_classes
    if test < 2 * chance:
        return (
            f"The test set stays near chance ({chance:.0%} with {n_classes} classes) while the "
            f"network fits {min(trained):.0%} or more of its training examples: what it "
            "fitted is memorized, not learned."
        )
    flipped = final.get("train (flipped)")
    if flipped is not None and flipped >= 0.5:
        return (
            f"The network fits {flipped:.0%} of the flipped labels, which nothing in the "
            f"images predicts: those it memorized, and the test set ends at {test:.0%}."
        )
    gap = max(trained) - test
    carries = ": what the network fitted carries over to new data" if gap <= 0.05 else ""
    return f"Training and test accuracy end {gap * 100:.0f} points apart{carries}."
