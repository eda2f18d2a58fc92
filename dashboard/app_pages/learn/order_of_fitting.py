"""The Learn lesson "Label noise and the order of fitting": clean examples are fitted before
flipped ones, and dropout slows the memorizing (Arpit et al. 2017)."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from memdash.analysis.findings.curves import first_epoch
from memdash.dashboard import charts
from memdash.dashboard.app_pages.common import chosen_curves
from memdash.dashboard.app_pages.learn._common import intro, need_roles, show

SLUG = "order-of-fitting"
TITLE = "Label noise and the order of fitting"


def render() -> None:
    intro(
        TITLE,
        "Flip some training labels to a wrong class and train. The network first learns "
        "what the clean examples have in common: their accuracy rises within a few epochs "
        "while the flipped ones stay wrong. Only later does it memorize the flipped labels "
        "one by one, and test accuracy falls as it does. Dropout slows that memorization.",
        "Does a network learn patterns before it memorizes exceptions?",
        "Arpit et al. 2017, A closer look at memorization in deep networks",
    )
    paths = need_roles("noise", "dropout")
    if paths is None:
        return
    dropout = st.toggle("Train with dropout 0.5", key="learn_order_dropout")
    path = paths["dropout" if dropout else "noise"]
    curves = chosen_curves([path])
    show(charts.training_curves(curves), "learn_order_chart")
    wide = curves.pivot(index="epoch", columns="group", values="accuracy")
    st.markdown(
        f"{fitted_sentence(wide)} Test accuracy is highest at epoch "
        f"**{int(wide['test'].idxmax())}** ({wide['test'].max():.0%}); by the last epoch the "
        f"flipped examples are **{wide['train (flipped)'].iloc[-1]:.0%}** fitted and the test "
        f"set is at **{wide['test'].iloc[-1]:.0%}**."
    )


def fitted_sentence(wide: pd.DataFrame, level: float = 0.9) -> str:
    """When the clean and the flipped training examples first reach `level` accuracy on the
    labels they are trained with (curves by epoch, a column per group)."""
    epochs = int(wide.index.max())
    clean = first_epoch(wide["train (clean)"].dropna(), level)
    flipped = first_epoch(wide["train (flipped)"].dropna(), level)
    first = (
        f"The clean examples never reach {level:.0%} in {epochs} epochs"
        if math.isnan(clean)
        else f"The clean examples reach {level:.0%} at epoch **{clean:.0f}**"
    )
    second = (
        "the flipped ones never do"
        if math.isnan(flipped)
        else f"the flipped ones at epoch **{flipped:.0f}**"
    )
    return f"{first}; {second}."
