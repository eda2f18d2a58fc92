"""Canaries' exposure: at one epoch against their repetitions, and per group over epochs
(with the epochs whose skew-normal fit sits on the references' loss floor shaded)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from memdash.dashboard.charts._common import margin
from memdash.dashboard.labels import label
from memdash.dashboard.palette import KIND_COLORS, repeat_color


def exposure_chart(table: pd.DataFrame, *, epoch: int, method: str, ceiling: float) -> go.Figure:
    """Canaries' exposure at one epoch against their repetitions, with the ceiling and the
    1.44-bit baseline of untrained canaries (references); an extrapolation from a fit on the
    references' loss floor says so in the title."""
    rows = table[(table["epoch"] == epoch) & (table["kind"] == "canary")]
    floored = (
        method == "exposure_extrapolation"
        and "fit_floored" in rows.columns
        and bool(rows["fit_floored"].any())
    )
    fig = go.Figure(
        go.Box(
            x=rows["repeats"].astype(str),
            y=rows[method],
            boxpoints="all",
            name="canaries",
            marker={"color": KIND_COLORS["canary"]},
            hovertext=rows["example_id"].map(lambda i: f"example {i}"),
        )
    )
    fig.add_hline(
        y=ceiling, line_dash="dash", annotation_text=f"ceiling log2(#refs) = {ceiling:.2f}"
    )
    fig.add_hline(y=np.log2(np.e), line_dash="dot", annotation_text="untrained: log2(e) = 1.44")
    fig.update_layout(
        title=f"exposure at epoch {epoch}"
        + (" (skew-normal fit on the references' loss floor)" if floored else ""),
        xaxis_title="times seen per epoch",
        xaxis_type="category",  # 1, 10, 50 evenly spaced, in order
        xaxis_categoryorder="array",
        xaxis_categoryarray=[str(r) for r in sorted(rows["repeats"].unique())],
        yaxis_title=label(method) + (", log scale" if method != "exposure_interpolation" else ""),
        yaxis_type="linear" if method == "exposure_interpolation" else "log",
        height=380,
        margin=margin(),
    )
    return fig


def floored_spans(epochs: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs of epochs, as (first, last) pairs: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    spans: list[tuple[int, int]] = []
    for e in sorted(epochs):
        if spans and e == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], e)
        else:
            spans.append((e, e))
    return spans


def exposure_over_epochs(
    table: pd.DataFrame, *, method: str, floored: list[int], statistic: str = "median"
) -> go.Figure:
    """Exposure per group (canaries by repetitions, references) over epochs.

    Extrapolated exposure is drawn on a log axis, and epochs whose skew-normal fit sits on
    the references' loss floor are shaded and named, so one degenerate epoch cannot flatten
    the others or pass for a measurement of the references.

    Parameters
    ----------
    table : exposure.parquet rows (``epoch``, ``kind``, ``repeats``, `method`)
    floored : the epochs whose fit is floored (exposure_fits.parquet)
    statistic : ``median`` or ``mean`` over each group's examples
    """
    over = table.groupby(["epoch", "kind", "repeats"], as_index=False)[method].agg(statistic)
    fig = go.Figure()
    repeats_seen = sorted(over.loc[over["kind"] == "canary", "repeats"].unique())
    for (kind, repeats), rows in over.groupby(["kind", "repeats"], sort=True):
        name = "references (untrained)" if kind == "reference" else f"canaries seen {repeats}x"
        colour = (
            KIND_COLORS["reference"]
            if kind == "reference"
            else repeat_color(repeats_seen.index(repeats))
        )
        fig.add_trace(
            go.Scatter(
                x=rows["epoch"],
                y=rows[method],
                mode="lines+markers",
                name=name,
                line={"color": colour},
            )
        )
    for first, last in floored_spans(floored):
        fig.add_vrect(
            x0=first - 0.5, x1=last + 0.5, fillcolor="#bbbbbb", opacity=0.25, line_width=0
        )
    if floored:
        fig.add_trace(  # a legend entry for the shading
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker={"symbol": "square", "size": 12, "color": "#bbbbbb"},
                name="fit on the references' loss floor",
            )
        )
    log = method.startswith("exposure_extrapolation")
    fig.update_layout(
        title=f"{statistic} exposure over epochs",
        xaxis_title="epoch",
        yaxis_title=f"{statistic} {label(method)}" + (", log scale" if log else ""),
        yaxis_type="log" if log else "linear",
        height=380,
        margin=margin(),
    )
    return fig
