"""Scatters of examples (WebGL, the example id first in customdata, for selections), and what
is drawn over them: threshold lines and rings around flagged points."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from memdash.dashboard.charts._common import SHARE_RANGE, groups, is_numeric, margin
from memdash.dashboard.labels import RATIO_COLUMNS, label
from memdash.dashboard.palette import KIND_COLORS, SEQUENTIAL

HOVER_COLUMNS = ("example_id", "label", "true_label")


def scatter(
    table: pd.DataFrame,
    *,
    x: str,
    y: str,
    color: str,
    title: str = "",
    max_points: int | None = None,
    seed: int = 0,
    size: int = 5,
    colors: dict[str, str] | None = None,
    value_range: tuple[float, float] | None = None,
) -> go.Figure:
    """A WebGL scatter of examples (``example_id`` first in customdata, for selections),
    coloured by a numeric column (colour scale) or a categorical one (one trace per value,
    kinds in their palette colours, never-trained kinds drawn underneath).

    Hover says, in words, the example's kind, given and true label and the coloured value.
    `max_points` draws a seeded sample of that many examples (None: all), with markers of
    `size` px. `colors` (value as text -> colour) colours a categorical column's values
    (default: kinds in their palette colours, other values in the theme's); `value_range`
    (cmin, cmax) sets a numeric colour's scale (default: the drawn values' span).
    """
    if max_points is not None and len(table) > max_points:
        table = table.sample(max_points, random_state=seed)
    fig = go.Figure()
    values = table[color]
    if is_numeric(values):  # one trace per kind (hover names it), one shared colour scale
        lo, hi = value_range or (float(values.min()), float(values.max()))
        scale = {"cmin": lo, "cmax": hi}
        by_kind = groups(table, "kind") if "kind" in table.columns else {"": table}
        for i, (kind, rows) in enumerate(by_kind.items()):
            marker = {"color": rows[color], "colorscale": SEQUENTIAL, "size": size, **scale}
            if i == 0:
                marker |= {"showscale": True, "colorbar": {"title": label(color)}}
            fig.add_trace(_points(rows, x, y, color, marker=marker, name=kind, kind=kind))
    else:
        for value, rows in groups(table, color).items():
            colour = (colors or {}).get(value) or (
                KIND_COLORS.get(value) if color == "kind" else None
            )
            name = value if color == "kind" else f"{label(color)} = {value}"
            kind = value if color == "kind" else None
            fig.add_trace(
                _points(
                    rows, x, y, color, marker={"size": size, "color": colour}, name=name, kind=kind
                )
            )
    for axis, column in (("xaxis", x), ("yaxis", y)):  # shares from 0 to 1; spreads from 0
        if column in RATIO_COLUMNS:
            fig.update_layout({axis: {"range": SHARE_RANGE}})
        elif column == "variability":
            fig.update_layout({axis: {"rangemode": "tozero"}})
    fig.update_layout(
        title=title,
        xaxis_title=label(x),
        yaxis_title=label(y),
        dragmode="lasso",
        height=520,
        margin=margin(),
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def _points(
    rows: pd.DataFrame,
    x: str,
    y: str,
    color: str,
    *,
    marker: dict,
    name: str,
    kind: str | None,
) -> go.Scattergl:
    """One WebGL trace of examples: hover gives the id, kind, labels and coloured value.

    ``customdata`` is numeric only (id first, for selections; then the labels and the
    coloured value), so Plotly sends it as a packed typed array: 20,000 points stay fast.
    The kind, constant within a trace, is written into the hover template.
    """
    columns = [c for c in HOVER_COLUMNS if c in rows.columns]
    numeric = is_numeric(rows[color])
    custom = rows[columns].to_numpy(dtype=float)
    if numeric:
        custom = np.column_stack([custom, rows[color].to_numpy(dtype=float)])
    lines = ["example %{customdata[0]:d}"]
    if kind:
        lines.append(f"kind: {kind}")
    if "label" in columns and "true_label" in columns:
        lines.append(
            f"given label %{{customdata[{columns.index('label')}]:d}}, "
            f"true label %{{customdata[{columns.index('true_label')}]:d}}"
        )
    if numeric:
        lines.append(f"{label(color)}: %{{customdata[{len(columns)}]:.3g}}")
    elif color != "kind":
        lines.append(f"{label(color)}: {rows[color].iloc[0] if len(rows) else ''}")
    lines.append(f"{label(x)} %{{x:.3f}}, {label(y)} %{{y:.3f}}")
    return go.Scattergl(
        x=rows[x],
        y=rows[y],
        mode="markers",
        customdata=custom,
        marker=marker,
        hovertemplate="<br>".join(lines) + "<extra></extra>",
        name=name,
        showlegend=bool(name),
    )


def threshold_lines(
    fig: go.Figure, *, x: float | None = None, y: float | None = None, text: str = ""
) -> go.Figure:
    """Draw a threshold on the chart: a dashed line at x (vertical) and/or y (horizontal)."""
    style = {"line_dash": "dash", "line_color": "#444444"}
    if x is not None:
        fig.add_vline(x=x, annotation_text=text, **style)
    if y is not None:
        fig.add_hline(y=y, annotation_text=text if x is None else "", **style)
    return fig


def ring(fig: go.Figure, rows: pd.DataFrame, *, x: str, y: str, name: str) -> go.Figure:
    """Ring the points of `rows` (what a threshold flags) with open circles."""
    if len(rows):
        fig.add_trace(
            go.Scattergl(
                x=rows[x],
                y=rows[y],
                mode="markers",
                marker={"size": 11, "color": "rgba(0,0,0,0)", "line": {"width": 1.5}},
                name=name,
                hoverinfo="skip",
            )
        )
    return fig


MARK_COLOR = "#000000"  # the sidebar's example: black, a colour no kind of example uses


def mark_example(
    fig: go.Figure, table: pd.DataFrame, example_id: int | None, *, x: str, y: str
) -> go.Figure:
    """Mark the sidebar's example (`example_id`, None: none open) where `table` puts it: a
    large black cross-ringed point named in the legend and labelled on the chart; nothing
    when it is not among the rows (not drawn on this chart)."""
    rows = table[table["example_id"] == example_id] if example_id is not None else table[:0]
    if rows.empty:
        return fig
    row = rows.iloc[0]
    fig.add_trace(
        go.Scattergl(
            x=[row[x]],
            y=[row[y]],
            mode="markers",
            customdata=[[int(example_id)]],  # a click on it opens it, as on any point
            marker={
                "size": 16,
                "symbol": "circle-x-open",
                "color": MARK_COLOR,
                "line": {"width": 2.5, "color": MARK_COLOR},
            },
            name=f"example {int(example_id)} (the sidebar's)",
            hovertemplate=f"example {int(example_id)} (the sidebar's)<extra></extra>",
        )
    )
    fig.add_annotation(
        x=row[x],
        y=row[y],
        text=f"example {int(example_id)}",
        showarrow=True,
        arrowhead=0,
        ax=28,
        ay=-28,
        font={"color": MARK_COLOR},
        bgcolor="rgba(255,255,255,0.8)",
    )
    return fig
