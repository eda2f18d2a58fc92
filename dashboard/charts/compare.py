"""Comparing two runs: a score in run A against run B, one point per example, with the
threshold and the examples memorized in one run only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from memdash.dashboard.charts.distributions import value_is_integer
from memdash.dashboard.charts.scatters import ring, scatter, threshold_lines
from memdash.dashboard.labels import label


def paired_scatter(
    both: pd.DataFrame, *, score: str, threshold: float, flagged: pd.DataFrame, seed: int = 0
) -> go.Figure:
    """A score in run A against run B, one point per example coloured by its kinds in both
    runs; integer scores jittered (seeded, by less than half a unit) so equal values do not
    hide each other; the threshold drawn on both axes and the examples it flags ringed where
    their (jittered) points are."""
    x, y = f"{score} A", f"{score} B"
    integer = value_is_integer(both[x]) and value_is_integer(both[y])
    shown = both.assign(kind=both["kinds"])
    if integer:
        rng = np.random.default_rng(seed)
        shown[x] = shown[x] + rng.uniform(-0.3, 0.3, len(shown))
        shown[y] = shown[y] + rng.uniform(-0.3, 0.3, len(shown))
    fig = scatter(
        shown,
        x=x,
        y=y,
        color="kind",
        title=f"{label(score)}: run A against run B, one point per example"
        + (" (jittered: the values are whole numbers)" if integer else ""),
    )
    threshold_lines(fig, x=threshold, y=threshold)
    rings = shown[shown["example_id"].isin(flagged["example_id"])]
    return ring(fig, rings, x=x, y=y, name="memorized in one run only")
