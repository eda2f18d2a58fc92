"""The Learn lesson "Easiness, loss sensitivity and critical samples": three measures that
tell learning patterns from memorizing, for seed groups trained on true and on random labels
(Arpit et al. 2017)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data
from memdash.dashboard.app_pages import sensitivity
from memdash.dashboard.app_pages.common import easiness_chart, easiness_counts, study_groups
from memdash.dashboard.app_pages.learn._common import intro, need_study, show
from memdash.dashboard.labels import label

SLUG = "arpit-measures"
TITLE = "Easiness, loss sensitivity and critical samples"


def render() -> None:
    intro(
        TITLE,
        "Three ways to tell learning patterns from memorizing. **Easiness**: train several "
        "networks from different seeds and count, for each example, how many get it right "
        "after one epoch; with real labels most examples are right in every network or in "
        "none, because what is easy is easy for all. **Loss sensitivity**: how much the loss "
        "changes when the input moves a little; a network that memorizes an example keeps "
        "its answer on a knife edge. **Critical sample ratio**: the share of examples with "
        "an input of another class within a tiny box around them; memorizing bends the "
        "decision boundary close to every example.",
        "Do networks treat real data and noise differently, from the first epoch on?",
        "Arpit et al. 2017, A closer look at memorization in deep networks",
    )
    paths = need_study("true_group", "random_group")
    if paths is None:
        return
    groups = study_groups(paths)
    last = min(data.epochs_completed(paths["true_group"] + paths["random_group"]))
    epoch = st.slider("Easiness after epoch", 0, last, 1, key="learn_arpit_epoch")
    both = easiness_counts(groups, epoch)
    show(_easiness_figure(both, list(groups), epoch), "learn_arpit_easiness")
    every = {
        name: (both.loc[both["labels"] == name, "seeds"] == len(group)).mean()
        for name, group in groups.items()
    }
    st.markdown(
        f"After epoch {epoch}, **{every['true labels']:.0%}** of the training examples are "
        f"right in every seed with true labels, against **{every['random labels']:.1%}** with "
        "random labels, where getting an example right is mostly luck."
    )
    measure = st.radio(
        "Over training",
        ["loss_sensitivity", "critical"],
        format_func=label,
        horizontal=True,
        key="learn_arpit_measure",
    )
    if not all(measure in data.trace_columns(Path(p)) for g in groups.values() for p in g):
        st.warning(f"The groups did not record {label(measure)}; see `make sample-runs`.")
        return
    curves = sensitivity.group_curves(groups, measure)
    show(
        charts.lines(
            curves,
            x="epoch",
            y=measure,
            color="group",
            title="mean over training examples, averaged over seeds",
        ),
        "learn_arpit_curves",
    )
    st.markdown(curves_sentence(curves, measure))


def _easiness_figure(counts: pd.DataFrame, order: list[str], epoch: int):
    """The easiness histograms side by side (an overlaid bar would hide the other), titled,
    the groups in `order`: the order of the curves' legend below."""
    figure = easiness_chart(counts)
    figure.data = tuple(sorted(figure.data, key=lambda trace: order.index(trace.name)))
    seeds = int(counts["of"].max())
    return figure.update_traces(opacity=1).update_layout(
        barmode="group",
        title=f"how many of the {seeds} seeds get each training example right, after epoch {epoch}",
        legend_traceorder="normal",
    )


def curves_sentence(curves: pd.DataFrame, measure: str) -> str:
    """The curves' values at their last epoch, in words."""
    last = curves[curves["epoch"] == curves["epoch"].max()].set_index("group")[measure]
    return (
        f"After epoch {int(curves['epoch'].max())}, the {label(measure)} over training "
        f"examples, averaged over the seeds, is **{last['random labels']:.2f}** with random "
        f"labels against **{last['true labels']:.2f}** with true labels."
    )
