"""Distributions of a value: histograms per group on shared bins (side by side), and
per-layer boxes per kind of example."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from memdash.dashboard.charts._common import groups, margin, share_histogram
from memdash.dashboard.labels import label
from memdash.dashboard.palette import KIND_COLORS, kind_color


def value_is_integer(values: pd.Series) -> bool:
    """Whether every value is a whole number (counts, epochs)."""
    return bool(len(values)) and bool(np.all(np.mod(values.to_numpy(float), 1) == 0))


def shared_bins(values: np.ndarray, *, integer: bool, n: int = 30) -> dict[str, float]:
    """One set of histogram bins for every group: unit bins centred on whole numbers for
    integer values, else `n` equal bins over the range."""
    if len(values) == 0:
        return {"start": 0.0, "end": 1.0, "size": 1.0}
    lo, hi = float(np.min(values)), float(np.max(values))
    if integer:
        return {"start": lo - 0.5, "end": hi + 0.5, "size": 1.0}
    size = (hi - lo) / n if hi > lo else 1.0
    return {"start": lo, "end": hi + size * 1e-9, "size": size}


def histograms(frame: pd.DataFrame, *, value: str, group: str, title: str = "") -> go.Figure:
    """Histograms of `value`, one per group, as shares of the group, all on the same bins
    (whole numbers for integer values), the groups' bars side by side and opaque in their
    palette colours (translucent bars on top of each other mix colours no legend names)."""
    values = frame[value].dropna().astype(float)
    bins = shared_bins(values.to_numpy(), integer=value_is_integer(values))
    fig = go.Figure()
    for name, rows in groups(frame.dropna(subset=[group]), group).items():
        fig.add_trace(share_histogram(rows[value], name=name, bins=bins, color=kind_color(name)))
    fig.update_traces(opacity=1)
    fig.update_layout(
        barmode="group",
        bargap=0.15,
        title=title,
        xaxis_title=label(value),
        yaxis_title="% of the group",
        height=320,
        margin=margin(),
    )
    return fig


def layer_distribution(frame: pd.DataFrame, *, value: str, layers: list[str]) -> go.Figure:
    """Per layer (in forward order), the distribution of `value` for each kind of example,
    side by side: boxes of the quartiles with every example drawn as a point."""
    fig = go.Figure()
    for kind, rows in groups(frame, "kind").items():
        fig.add_trace(
            go.Box(
                x=rows["layer"],
                y=rows[value],
                name=kind,
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker={"color": KIND_COLORS.get(kind), "size": 3},
            )
        )
    present = [layer for layer in layers if layer in set(frame["layer"])]
    fig.update_layout(
        boxmode="group",
        xaxis={"type": "category", "categoryorder": "array", "categoryarray": present},
        xaxis_title=label("layer"),
        yaxis_title=label(value),
        yaxis_rangemode="tozero",
        height=380,
        margin=margin(top=30),
    )
    return fig
