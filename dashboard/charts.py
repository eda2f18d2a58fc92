"""Figures from DataFrames: pure functions, no Streamlit calls, unit-tested on their own."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analysis.curves import GROUPS

GROUP_COLORS = dict(zip(GROUPS, ("#1f77b4", "#d62728", "#9467bd", "#2ca02c"), strict=True))
RUN_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def training_curves(curves: pd.DataFrame, *, metric: str = "accuracy") -> go.Figure:
    """Accuracy (or loss) by epoch: one line per (run, group), colour by group, dash by run.

    Parameters
    ----------
    curves : columns ``run``, ``epoch``, ``group``, and `metric`
    """
    fig = go.Figure()
    runs = list(dict.fromkeys(curves["run"])) if len(curves) else []
    for r, run in enumerate(runs):
        for group in GROUPS:
            rows = curves[(curves["run"] == run) & (curves["group"] == group)]
            if rows.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=rows["epoch"],
                    y=rows[metric],
                    mode="lines",
                    name=group if len(runs) == 1 else f"{run}: {group}",
                    line={"color": GROUP_COLORS[group], "dash": RUN_DASHES[r % len(RUN_DASHES)]},
                    hovertemplate=f"{run}<br>{group}<br>epoch %{{x}}<br>{metric} %{{y:.3f}}"
                    "<extra></extra>",
                )
            )
    fig.update_layout(
        xaxis_title="epoch (0 = before training)",
        yaxis_title=f"{metric} (labels trained with)" if metric == "accuracy" else metric,
        legend_title="examples",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        height=420,
    )
    if metric == "accuracy":
        fig.update_yaxes(range=[0, 1.02])
    if len(curves) and curves["epoch"].max() <= 20:
        fig.update_xaxes(dtick=1)  # whole epochs only
    return fig
