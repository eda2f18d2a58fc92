"""What the charts share: margins, the 0-to-1 axis of shares, run dashes, the order kinds are
drawn in, and the overlaid share histogram."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

RUN_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
# kinds drawn first lie underneath: never-trained examples under the trained ones
DRAW_ORDER = ("test", "reference", "clean", "canary", "flipped")
# a share, from 0 to 1 (with room for the markers at 1), so differences are not magnified
SHARE_RANGE = (0, 1.02)


def margin(*, top: int = 40) -> dict[str, int]:
    """Tight margins at the sides and below; `top` leaves room for a title."""
    return {"l": 10, "r": 10, "t": top, "b": 10}


def run_dash(i: int) -> str:
    """The dash of the `i`-th run (or series) drawn, cycling through RUN_DASHES."""
    return RUN_DASHES[i % len(RUN_DASHES)]


def is_numeric(values: pd.Series) -> bool:
    """Whether a column is drawn on a colour scale: numbers, but not booleans."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _draw_rank(kind: object) -> int:
    return DRAW_ORDER.index(kind) if kind in DRAW_ORDER else len(DRAW_ORDER)


def groups(table: pd.DataFrame, column: str) -> dict[str, pd.DataFrame]:
    """Rows by the value of `column` (as text), never-trained kinds first (drawn underneath)."""
    by_value = dict(list(table.groupby(table[column].astype(str), sort=True)))
    return {k: by_value[k] for k in sorted(by_value, key=_draw_rank)}


def share_histogram(
    values: pd.Series | np.ndarray, *, name: str, bins: dict[str, float], color: str | None
) -> go.Histogram:
    """One of several overlaid histograms: shares (percent) of its own values, on `bins`."""
    return go.Histogram(
        x=values,
        name=name,
        opacity=0.6,
        histnorm="percent",
        xbins=bins,
        autobinx=False,
        marker={"color": color},
    )
