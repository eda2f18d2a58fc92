"""Comparing two runs: a score in run A against run B, one point per example, with the
threshold and the examples past it in one run only.

`one_run_only` is what the Compare page counts and what the chart rings: one function, so
the numbers beside the chart are the points it shows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from memdash.dashboard.charts._common import SHARE_RANGE
from memdash.dashboard.charts.distributions import value_is_integer
from memdash.dashboard.charts.scatters import scatter, threshold_lines
from memdash.dashboard.labels import HIGHER, RATIO_COLUMNS, label
from memdash.dashboard.palette import pair_kind_color

JITTER = 0.3  # whole-number scores move by less than half a unit, so the line sits between
# an example whose kind differs between the runs: its symbol says in which run it is unusual
PAIR_SYMBOLS = {"A": "diamond", "B": "square"}
RING_SYMBOLS = {"A": "circle-open", "B": "square-open"}


def past(values: pd.Series, threshold: float, end: str) -> pd.Series:
    """Whether each value is past the threshold at `end`: above it for ``HIGHER``, below it
    for ``LOWER`` (the threshold itself is not past)."""
    return values > threshold if end == HIGHER else values < threshold


def one_run_only(
    both: pd.DataFrame, score: str, threshold: float, end: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The examples past the threshold (at `end`) in run A but not in B, and the other way
    round; `both` has the columns ``"{score} A"`` and ``"{score} B"``."""
    in_a = past(both[f"{score} A"], threshold, end)
    in_b = past(both[f"{score} B"], threshold, end)
    return both[in_a & ~in_b], both[in_b & ~in_a]


def boundary(threshold: float, end: str, *, integer: bool) -> float:
    """Where the threshold line is drawn: at the threshold, or for whole-number values
    between the last whole number not past it and the first one past it (so jittered
    points fall on the side they are counted on)."""
    if not integer:
        return float(threshold)
    return math.floor(threshold) + 0.5 if end == HIGHER else math.ceil(threshold) - 0.5


def paired_scatter(
    both: pd.DataFrame, *, score: str, threshold: float, end: str, word: str, seed: int = 0
) -> go.Figure:
    """A score in run A against run B, one point per example coloured by its kinds in both
    runs (in the palette's colours; a kind that differs between them drawn in the unusual
    kind's colour, its symbol saying in which run); whole-number scores jittered (seeded,
    by less than half a unit) so equal values do not hide each other, their axes ticked at
    whole numbers. The threshold is drawn on both axes and the examples past it in one run
    only are ringed where their points are, one trace per run named ``"{word} in A only
    (N)"``, N the count the page lists."""
    x, y = f"{score} A", f"{score} B"
    integer = value_is_integer(both[x]) and value_is_integer(both[y])
    shown = both.assign(kind=both["kinds"])
    if integer:
        rng = np.random.default_rng(seed)
        shown[x] = shown[x] + rng.uniform(-JITTER, JITTER, len(shown))
        shown[y] = shown[y] + rng.uniform(-JITTER, JITTER, len(shown))
    fig = scatter(
        shown,
        x=x,
        y=y,
        color="kind",
        title=f"{label(score)}: run A against run B, one point per example"
        + (" (jittered: the values are whole numbers)" if integer else ""),
    )
    for trace in fig.data:
        if " in A, " in (trace.name or ""):
            unusual = "B" if trace.name.startswith("clean in A") else "A"
            trace.marker.color = pair_kind_color(trace.name)
            trace.marker.symbol = PAIR_SYMBOLS[unusual]
            trace.marker.size = 7
    line = boundary(threshold, end, integer=integer)
    threshold_lines(fig, x=line, y=line)
    only = dict(zip("AB", one_run_only(both, score, threshold, end), strict=True))
    for side, rows in only.items():
        ringed = shown[shown["example_id"].isin(rows["example_id"])]
        if len(ringed):
            fig.add_trace(
                go.Scattergl(
                    x=ringed[x],
                    y=ringed[y],
                    mode="markers",
                    marker={
                        "size": 11,
                        "symbol": RING_SYMBOLS[side],
                        "color": "#333333",
                        "line": {"width": 1},
                    },
                    name=f"{word} in {side} only ({len(rows):,})",
                    hoverinfo="skip",
                )
            )
    _axes(fig, shown[[x, y]], score=score, integer=integer, line=line)
    return fig


def _axes(fig: go.Figure, values: pd.DataFrame, *, score: str, integer: bool, line: float) -> None:
    """A share from 0 to 1 on both axes; a count's axes ticked at whole numbers only, each
    over its run's (jittered) values and the threshold line."""
    if score.removesuffix("_train") in RATIO_COLUMNS:
        fig.update_xaxes(range=SHARE_RANGE)
        fig.update_yaxes(range=SHARE_RANGE)
        return
    if not integer:
        return
    for update, column in zip((fig.update_xaxes, fig.update_yaxes), values.columns, strict=True):
        lo = min(round(float(values[column].min())), math.floor(line))
        hi = max(round(float(values[column].max())), math.ceil(line))
        update(range=[lo - 0.5, hi + 0.5], tick0=0, dtick=whole_step(hi - lo))


def whole_step(span: float, most: int = 12) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that ticks `span` at most `most` times."""
    step = 1
    while span / step > most:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    return step
