"""Figures from DataFrames: pure functions, no Streamlit calls, unit-tested on their own."""

from __future__ import annotations

import numpy as np
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


# --- one example --------------------------------------------------------------------------


def _as_signal_or_image(x: np.ndarray) -> np.ndarray:
    """Drop a leading single channel: (1, H, W) -> (H, W), (1, L) -> (L,)."""
    x = np.asarray(x, dtype=np.float32)
    return x[0] if x.ndim >= 2 and x.shape[0] == 1 else x


def example_input(x: np.ndarray, *, title: str = "") -> go.Figure:
    """An example's input: a grey image for 2-D inputs, a line for 1-D ones (mean over channels
    of multi-channel images)."""
    x = _as_signal_or_image(x)
    if x.ndim == 3:
        x = x.mean(axis=0)
    fig = go.Figure()
    if x.ndim == 2:
        fig.add_trace(go.Heatmap(z=x, colorscale="Greys", showscale=False, hoverinfo="skip"))
        fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
        fig.update_xaxes(visible=False)
    else:
        fig.add_trace(go.Scatter(y=x.ravel(), mode="lines", line={"color": "#333"}))
        fig.update_xaxes(title="position")
    fig.update_layout(title=title, height=260, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def thumbnail(x: np.ndarray, *, height: int = 28) -> np.ndarray:
    """A float image in [0, 1] for st.image: the input itself for 2-D inputs (ink dark),
    a rasterized line for 1-D ones."""
    x = _as_signal_or_image(x)
    if x.ndim == 3:
        x = x.mean(axis=0)
    span = float(x.max() - x.min()) or 1.0
    scaled = (x - x.min()) / span
    if x.ndim == 2:
        return 1.0 - scaled
    rows = np.round((1 - scaled.ravel()) * (height - 1)).astype(int)
    image = np.ones((height, len(rows)), np.float32)
    image[rows, np.arange(len(rows))] = 0.0
    return image


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
            name="p(given label)",
            mode="lines+markers",
            marker={"color": np.where(correct, "#2ca02c", "#d62728"), "size": 6},
            line={"color": "#1f77b4"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=frame["epoch"], y=frame["loss"], name="loss", yaxis="y2", line={"color": "#999"}
        )
    )
    if len(forgot):
        fig.add_trace(
            go.Scatter(
                x=frame["epoch"].to_numpy()[forgot],
                y=frame["prob_label"].to_numpy()[forgot],
                name="forgetting event",
                mode="markers",
                marker={"symbol": "x", "size": 12, "color": "#d62728"},
            )
        )
    fig.update_layout(
        xaxis_title="epoch",
        yaxis={"title": "p(given label)", "range": [0, 1.02]},
        yaxis2={"title": "loss", "overlaying": "y", "side": "right"},
        legend={"orientation": "h", "y": -0.25},
        height=320,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig
