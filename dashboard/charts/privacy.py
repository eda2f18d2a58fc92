"""Membership inference: the attacks' ROC curves on log-log axes, and one example's confidence
under the models that trained on it and those that held it out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from memdash.dashboard.charts._common import margin, share_histogram
from memdash.dashboard.charts.distributions import shared_bins
from memdash.dashboard.labels import label
from memdash.dashboard.palette import ATTACK_COLORS, MEMBER_COLORS


def roc_curves(curves: pd.DataFrame, *, fpr: float | None = None) -> go.Figure:
    """Membership-inference ROCs (``attack``, ``fpr``, ``tpr``) on log-log axes, as Carlini
    et al. plot them (the low-FPR corner is what matters), with chance (TPR = FPR) dotted
    and, given `fpr`, a line at the false-positive rate the attacker accepts."""
    fig = go.Figure()
    low = float(curves["fpr"].min()) if len(curves) else 1e-5
    fig.add_trace(
        go.Scatter(
            x=[low, 1],
            y=[low, 1],
            mode="lines",
            name="chance",
            line={"dash": "dot", "color": "#7F7F7F"},
        )
    )
    for attack, rows in curves.groupby("attack", sort=False):
        fig.add_trace(
            go.Scatter(
                x=rows["fpr"],
                y=rows["tpr"].clip(lower=low),  # a TPR of 0 has no place on a log axis
                mode="lines",
                name=f"{attack} LiRA" if attack != "global" else "global threshold",
                line={"color": ATTACK_COLORS.get(str(attack)), "shape": "hv"},
            )
        )
    if fpr is not None:
        fig.add_vline(x=fpr, line={"dash": "dash", "color": "#7F7F7F"})
    decades = {"type": "log", "range": [np.log10(low), 0], "dtick": 1, "exponentformat": "power"}
    fig.update_xaxes(title=label("fpr"), **decades)
    fig.update_yaxes(title=label("tpr"), **decades)
    fig.update_layout(
        title="membership inference ROC (log-log)",
        height=440,
        margin=margin(),
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def member_histograms(
    phi_in: np.ndarray, phi_out: np.ndarray, *, threshold: float, title: str = ""
) -> go.Figure:
    """One example's confidence phi under the models that trained on it and those that held
    it out (shares of each, shared bins), with the attacker's threshold."""
    values = np.r_[phi_in, phi_out]
    bins = shared_bins(values, integer=False, n=30)
    fig = go.Figure()
    for name, part in (("held it out", phi_out), ("trained on it", phi_in)):
        fig.add_trace(
            share_histogram(
                part,
                name=f"models that {name}" if name == "held it out" else f"models {name}",
                bins=bins,
                color=MEMBER_COLORS[name],
            )
        )
    fig.add_vline(x=threshold, line={"dash": "dash", "color": "#000000"})
    fig.update_layout(
        barmode="overlay",
        title=title,
        xaxis_title="confidence phi = log(p / (1 - p)) of the label",
        yaxis_title="% of the models",
        height=320,
        margin=margin(),
        legend={"orientation": "h", "y": -0.3},
    )
    return fig
