"""Line charts: accuracy or loss by epoch per group, one example's trajectory over epochs, and
one line per series of any long table; and grouped bars, for a few values of a few series
(where a line between two categories would suggest a trend that is not there)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from memdash.analysis.measures.curves import GROUPS
from memdash.dashboard.charts._common import SHARE_RANGE, margin, run_dash
from memdash.dashboard.labels import RATIO_COLUMNS, label
from memdash.dashboard.palette import GROUP_COLORS, kind_color


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
                    line={"color": GROUP_COLORS[group], "dash": run_dash(r)},
                    hovertemplate=f"{run}<br>{group}<br>epoch %{{x}}<br>{metric} %{{y:.3f}}"
                    "<extra></extra>",
                )
            )
    fig.update_layout(
        xaxis_title="epoch (0 = before training)",
        yaxis_title=f"{metric} (labels trained with)" if metric == "accuracy" else metric,
        legend_title="examples",
        margin=margin(top=30),
        height=420,
    )
    if metric == "accuracy":
        fig.update_yaxes(range=SHARE_RANGE)
    if len(curves) and curves["epoch"].max() <= 20:
        fig.update_xaxes(dtick=1)  # whole epochs only
    return fig


def trajectory(frame: pd.DataFrame) -> go.Figure:
    """One example over epochs: probability of the given label and loss, correct marked,
    forgetting events (correct -> wrong) flagged.

    Parameters
    ----------
    frame : columns ``epoch``, ``prob_label``, ``loss``, ``correct``
    """
    frame = frame.sort_values("epoch")
    correct = frame["correct"].astype(bool).to_numpy()
    forgot = np.flatnonzero(correct[:-1] & ~correct[1:]) + 1
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=frame["epoch"],
            y=frame["prob_label"],
            name="p(given label): filled when right, open when wrong",
            mode="lines+markers",
            marker={
                "symbol": np.where(correct, "circle", "circle-open"),
                "size": 7,
                "color": "#333333",
            },
            line={"color": "#333333"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=frame["epoch"],
            y=frame["loss"],
            name="loss",
            yaxis="y2",
            line={"color": "#999999", "dash": "dot"},
        )
    )
    if len(forgot):
        fig.add_trace(
            go.Scatter(
                x=frame["epoch"].to_numpy()[forgot],
                y=frame["prob_label"].to_numpy()[forgot],
                name="forgetting event (right, then wrong)",
                mode="markers",
                marker={"symbol": "x", "size": 12, "color": "#000000"},
            )
        )
    last = int(frame["epoch"].max()) if len(frame) else 1
    fig.update_layout(
        xaxis={"title": "epoch", "tickformat": "d", "dtick": 1 if last <= 20 else None},
        yaxis={"title": "p(given label)", "range": SHARE_RANGE},
        yaxis2={"title": "loss (nats)", "overlaying": "y", "side": "right", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.25},
        height=320,
        margin=margin(top=30),
    )
    return fig


def lines(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    color: str,
    title: str = "",
    dash: str | None = None,
    colors: dict[str, str] | None = None,
    y_range: tuple[float, float] | None = None,
) -> go.Figure:
    """One line per value of `color` (and of `dash`, drawn dashed), y against x; kinds of
    example and study series in their palette colours, others from `colors` if given.

    A numeric x is drawn in increasing order; categories (layers, modes) in the order the
    rows give them. A share's axis runs from 0 to 1 unless `y_range` zooms it, which the
    axis title then says ("from 80%"), so a magnified difference is never taken for a large
    one.
    """
    fig = go.Figure()
    groups = [color] if dash is None else [color, dash]
    if pd.api.types.is_numeric_dtype(frame[x]):
        frame = frame.sort_values(x, kind="stable")
    for key, rows in frame.groupby(groups, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        name = " / ".join(str(k) for k in key)
        style = {"dash": run_dash(list(frame[dash].unique()).index(key[1]))} if dash else {}
        chosen = (colors or {}).get(str(key[0])) or kind_color(str(key[0]))
        if chosen:  # clean, flipped, true labels, ...: their palette colour
            style["color"] = chosen
        fig.add_trace(
            go.Scatter(x=rows[x], y=rows[y], mode="lines+markers", name=label(name), line=style)
        )
    y_title = label(y)
    if y_range is not None:
        fig.update_yaxes(range=list(y_range), tickformat=".0%" if y in RATIO_COLUMNS else None)
        low = f"{y_range[0]:.0%}" if y in RATIO_COLUMNS else f"{y_range[0]:g}"
        y_title = f"{y_title} (axis zoomed: from {low})"
    elif y in RATIO_COLUMNS:  # a share: from 0 to 1, so differences are not magnified
        fig.update_yaxes(range=SHARE_RANGE)
    fig.update_layout(
        title=title,
        xaxis_title=label(x),
        yaxis_title=y_title,
        height=360,
        margin=margin(),
    )
    return fig


def bars(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    color: str,
    title: str = "",
    x_title: str | None = None,
) -> go.Figure:
    """Grouped bars: at each value of `x` (in the order the rows give them), one bar per
    value of `color`, side by side and labelled with its value; kinds of example in their
    palette colours. A share's axis runs from 0 to 1.

    Parameters
    ----------
    frame : one row per (x, color) with the bar's height in column `y`
    x_title : the x axis's title (default: the label of `x`)
    """
    share = y in RATIO_COLUMNS
    fig = go.Figure()
    for key, rows in frame.groupby(color, sort=False):
        fig.add_trace(
            go.Bar(
                x=rows[x],
                y=rows[y],
                name=label(str(key)),
                marker_color=kind_color(str(key)),
                texttemplate="%{y:.0%}" if share else "%{y:.3g}",
                textposition="outside",
            )
        )
    if share:
        fig.update_yaxes(range=[0, 1.12])  # 0 to 1, with room for the labels above the bars
    fig.update_layout(
        barmode="group",
        title=title,
        xaxis_title=label(x) if x_title is None else x_title,
        yaxis_title=label(y),
        legend_title=label(color),
        height=360,
        margin=margin(),
    )
    return fig
