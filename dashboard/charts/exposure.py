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
    """Canaries' exposure at one epoch against their repetitions, a box per repetition group
    in the colour its line has over epochs, with the ceiling and the 1.44-bit baseline of
    untrained canaries (references) labelled on their lines; an extrapolation from a fit on
    the references' loss floor says so in the title. Interpolated exposure cannot pass the
    ceiling: how many canaries of a group reach it is written under its box, on the axis."""
    rows = table[(table["epoch"] == epoch) & (table["kind"] == "canary")]
    floored = (
        method == "exposure_extrapolation"
        and "fit_floored" in rows.columns
        and bool(rows["fit_floored"].any())
    )
    log = method != "exposure_interpolation"
    seen = sorted(table.loc[table["kind"] == "canary", "repeats"].unique())
    fig = go.Figure()
    ticks = {}  # category -> its tick text (with the count at the ceiling, where there is one)
    for repeats, group in rows.groupby("repeats", sort=True):
        colour = repeat_color(seen.index(repeats))
        fig.add_trace(
            go.Box(
                x=group["repeats"].astype(str),
                y=group[method],
                boxpoints="all",
                jitter=0.5,
                name=f"canaries seen {repeats}x",
                marker={"color": colour},
                line={"color": colour},
                hovertext=group["example_id"].map(lambda i: f"example {i}"),
            )
        )
        at_ceiling = int(np.isclose(group[method], ceiling).sum())
        ticks[str(repeats)] = str(repeats) + (
            f"<br>{at_ceiling} of {len(group)} at the ceiling" if not log and at_ceiling else ""
        )
    _level(fig, ceiling, f"ceiling log2(#refs) = {ceiling:.2f}", "dash", log=log)
    _level(fig, float(np.log2(np.e)), "untrained: log2(e) = 1.44", "dot", log=log)
    fig.update_layout(
        title=f"exposure at epoch {epoch}, {_method_words(method)}"
        + (" (skew-normal fit on the references' loss floor)" if floored else ""),
        xaxis_title="times seen per epoch",
        xaxis_type="category",  # 1, 10, 50 evenly spaced, in order
        xaxis_categoryorder="array",
        xaxis_categoryarray=list(ticks),
        xaxis_tickvals=list(ticks),
        xaxis_ticktext=list(ticks.values()),
        yaxis_title=label("exposure") + (", log scale" if log else ""),
        yaxis_type="log" if log else "linear",
        boxmode="overlay",  # one group a category: each box centred on its own
        showlegend=False,  # the x axis names each box's group
        height=400,
        margin=margin(top=50),
    )
    if log:
        fig.update_yaxes(**_log_ticks([*rows[method], ceiling, np.log2(np.e)]))
    else:  # room above the ceiling for the boxes that reach it
        fig.update_yaxes(range=[0, ceiling * 1.15])
    return fig


def _log_ticks(values) -> dict:
    """Ticks of a log axis over `values` at 1, 2 and 5 times each power of ten (over more
    than four decades, the powers alone), written out in full (plotly's own minor ticks read
    "5" for 0.5 and for 50 alike)."""
    finite = np.asarray([v for v in values if np.isfinite(v) and v > 0], dtype=float)
    if not finite.size:
        return {}
    decades = np.arange(np.floor(np.log10(finite.min())), np.ceil(np.log10(finite.max())) + 1)
    steps = (1, 2, 5) if len(decades) <= 5 else (1,)
    ticks = [float(m * 10.0**e) for e in decades for m in steps]
    ticks = [t for t in ticks if finite.min() / 2 <= t <= finite.max() * 2]
    return {"tickvals": ticks, "ticktext": [format(t, ",g") for t in ticks]}


def _method_words(method: str) -> str:
    """How a method computes exposure, from its label: "exposure (bits, X)" -> "X"."""
    words = label(method).partition("(bits, ")[2].removesuffix(")")
    return words or label(method)


def _level(fig: go.Figure, y: float, text: str, dash: str, *, log: bool) -> None:
    """A horizontal line at `y` under the boxes, labelled at the right just above it (on a
    log axis an annotation sits at log10 of its value, a line at the value itself)."""
    fig.add_hline(y=y, line={"dash": dash, "color": "#555555", "width": 1}, layer="below")
    fig.add_annotation(
        xref="paper",
        x=1,
        xanchor="right",
        y=float(np.log10(y)) if log else y,
        yanchor="bottom",
        showarrow=False,
        text=text,
        font={"size": 11, "color": "#555555"},
    )


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
    floored : the epochs whose fit is floored or capped (exposure_fits.parquet)
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
                name="fit on the references' loss floor or largest loss",
            )
        )
    log = method.startswith("exposure_extrapolation")
    if log:
        fig.update_yaxes(**_log_ticks(over[method]))
    fig.update_layout(
        title=f"{statistic} exposure over epochs, {_method_words(method)}",
        xaxis_title="epoch",
        yaxis_title=f"{statistic} {label('exposure')}" + (", log scale" if log else ""),
        yaxis_type="log" if log else "linear",
        height=380,
        margin=margin(),
    )
    return fig
