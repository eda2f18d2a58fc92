"""The heatmap of a value over the pairs of two columns of a long table (layers by epoch,
k by layer, ...), cells annotated where the numbers fit."""

from __future__ import annotations

import textwrap

import pandas as pd
import plotly.graph_objects as go

from memdash.dashboard.charts._common import margin
from memdash.dashboard.labels import label
from memdash.dashboard.palette import SEQUENTIAL

# a row of cells is at least this tall (px), so a number fits; the figure at least MIN_HEIGHT
ROW_PX, MIN_HEIGHT = 34, 220
# with more columns than this, a full-width chart's cells are too narrow for "0.97"
ANNOTATED_COLUMNS = 24
# the colour bar's title, in lines of at most this many characters
BAR_TITLE_WIDTH = 14


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
    colorbar_title: str | None = None,
) -> go.Figure:
    """A heatmap of `value` over the (x, y) pairs of a long table; rows and columns in the
    given orders (others left out).

    Sized to be read: a row is at least ROW_PX tall, each cell shows its value (two decimals)
    while there are at most ANNOTATED_COLUMNS columns (more cells are too narrow for a number
    and show it on hover), and the colour bar's title (`colorbar_title`, default the value's
    label) is broken into short lines so it does not take the plot's width.
    """
    grid = frame.pivot_table(index=y, columns=x, values=value, aggfunc="mean")
    if y_order is not None:
        grid = grid.reindex([v for v in y_order if v in grid.index])
    if x_order is not None:
        grid = grid[[v for v in x_order if v in grid.columns]]
    readable = grid.shape[1] <= ANNOTATED_COLUMNS
    bar_title = _bar_title(label(value) if colorbar_title is None else colorbar_title)
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[str(c) for c in grid.columns],
            y=[str(i) for i in grid.index],
            zmin=zmin,
            zmax=zmax,
            colorscale=SEQUENTIAL,
            texttemplate="%{z:.2f}" if readable else None,
            textfont={"size": 12},
            hovertemplate=f"{label(x)} %{{x}}<br>{label(y)} %{{y}}<br>{label(value)} %{{z:.3f}}"
            "<extra></extra>",
            colorbar={"title": {"text": bar_title}, "thickness": 14},
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title=label(x),
        yaxis_title=label(y),
        xaxis_type="category",
        yaxis_type="category",
        # the title, the x axis and its title take about 110 px; each row at least ROW_PX
        height=max(MIN_HEIGHT, 110 + ROW_PX * len(grid)),
        margin=margin(),
    )
    return fig


def _bar_title(text: str) -> str:
    return "<br>".join(textwrap.wrap(text, BAR_TITLE_WIDTH)) or text
