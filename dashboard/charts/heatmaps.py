"""The heatmap of a value over the pairs of two columns of a long table (layers by epoch,
k by layer, ...), cells annotated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from memdash.dashboard.charts._common import margin
from memdash.dashboard.labels import label
from memdash.dashboard.palette import SEQUENTIAL


def heatmap(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    value: str,
    title: str = "",
    zmin: float | None = 0.0,
    zmax: float | None = 1.0,
    y_order: list | None = None,
    x_order: list | None = None,
) -> go.Figure:
    """A heatmap of `value` over the (x, y) pairs of a long table, cells annotated; rows and
    columns in the given orders (others left out)."""
    grid = frame.pivot_table(index=y, columns=x, values=value, aggfunc="mean")
    if y_order is not None:
        grid = grid.reindex([v for v in y_order if v in grid.index])
    if x_order is not None:
        grid = grid[[v for v in x_order if v in grid.columns]]
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[str(c) for c in grid.columns],
            y=[str(i) for i in grid.index],
            zmin=zmin,
            zmax=zmax,
            colorscale=SEQUENTIAL,
            text=np.round(grid.to_numpy(), 2),
            texttemplate="%{text}" if grid.size <= 200 else None,
            hovertemplate=f"{label(x)} %{{x}}<br>{label(y)} %{{y}}<br>{label(value)} %{{z:.3f}}"
            "<extra></extra>",
            colorbar={"title": label(value)},
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title=label(x),
        yaxis_title=label(y),
        xaxis_type="category",
        height=max(220, 60 + 40 * len(grid)),
        margin=margin(),
    )
    return fig
