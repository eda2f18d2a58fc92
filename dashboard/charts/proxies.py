"""The proxies' scoreboard (`memdash proxies`) drawn: each proxy's Spearman correlation with the
held-out memorization score and its precision in the ensemble's top share, and one proxy
against the score, example by example."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from memdash.dashboard.charts._common import margin
from memdash.dashboard.charts.compare import JITTER, whole_step
from memdash.dashboard.charts.distributions import value_is_integer
from memdash.dashboard.charts.scatters import scatter
from memdash.dashboard.labels import LOWER, flagged_end, label, memorized_end
from memdash.dashboard.palette import SPARE_COLORS

# the scoreboard's two figures: black dots with their interval, orange open diamonds
SPEARMAN_COLOR, PRECISION_COLOR = SPARE_COLORS[0], SPARE_COLORS[1]
ROW_HEIGHT = 26  # pixels per proxy: every name readable


def end_text(score: str, *, short: bool = False) -> str:
    """The end of `score` the direction dictionary flags, in words: "higher = more memorized"
    for a memorization score, "lower = harder, more atypical" for any other ("lower =
    harder" if `short`). Raises ValueError for a score the dictionary lacks."""
    end = flagged_end(score)
    if end is None:
        raise ValueError(f"{score!r} has no direction in measures.directions.DIRECTIONS")
    if memorized_end(score.split("@")[0].removesuffix("_train")):
        return f"{end} = more memorized"
    return f"{end} = harder" if short else f"{end} = harder, more atypical"


def axis_title(score: str) -> str:
    """An axis title: the score's label and, on a second line, its flagged end."""
    return f"{label(score)}<br>({end_text(score)})"


def proxy_scatter(table: pd.DataFrame, *, proxy: str, title: str = "", seed: int = 0) -> go.Figure:
    """Each example's `proxy` (y) against its held-out memorization score (x), coloured by
    kind (`charts.scatter`: the example id first in customdata). A proxy flagged low is drawn
    with its axis reversed, so that on both axes the flagged end (more memorized, or harder)
    is up and right: a proxy that agrees with the ensemble rises to the right. A whole-number
    proxy (a count, an epoch, a 0/1 disagreement) is jittered (seeded, by less than half a
    unit) so equal values do not hide each other, its axis ticked at whole numbers and its
    hover giving the value itself."""
    integer = value_is_integer(table[proxy])
    shown = table
    if integer:
        rng = np.random.default_rng(seed)
        shown = table.assign(**{proxy: table[proxy] + rng.uniform(-JITTER, JITTER, len(table))})
        title += " (jittered: the values are whole numbers)"
    fig = scatter(shown, x="mem_score", y=proxy, color="kind", title=title)
    fig.update_layout(xaxis_title=axis_title("mem_score"), yaxis_title=axis_title(proxy))
    if integer:
        _hover_whole_numbers(fig, table, proxy)
        lo, hi = round(float(table[proxy].min())), round(float(table[proxy].max()))
        pad = max(0.5, 0.03 * (hi - lo))  # the jitter, and room for the markers at the ends
        fig.update_yaxes(range=[lo - pad, hi + pad], tick0=0, dtick=whole_step(hi - lo))
    if flagged_end(proxy) == LOWER:
        drawn = fig.layout.yaxis.range  # a share's 0 to 1, a count's whole numbers, or None
        if drawn:
            fig.update_yaxes(range=list(drawn)[::-1])
        else:
            fig.update_yaxes(autorange="reversed")
        fig.update_layout(yaxis_title=axis_title(proxy) + ", axis reversed")
    return fig


def _hover_whole_numbers(fig: go.Figure, table: pd.DataFrame, proxy: str) -> None:
    """Each kind's trace hovers with the proxy's own (unjittered) value, added to its
    customdata."""
    for trace in fig.data:
        rows = table[table["kind"].astype(str) == trace.name]
        if trace.customdata is None or len(rows) != len(trace.customdata):
            continue
        custom = np.asarray(trace.customdata, dtype=float)
        trace.customdata = np.column_stack([custom, rows[proxy].to_numpy(float)])
        trace.hovertemplate = trace.hovertemplate.replace(
            f"{label(proxy)} %{{y:.3f}}", f"{label(proxy)} %{{customdata[{custom.shape[1]}]:d}}"
        )


def scoreboard_chart(board: pd.DataFrame, *, title: str = "") -> go.Figure:
    """One row per proxy (in the board's order, the first at the top, named in words): its
    Spearman correlation with the memorization score and the bootstrap 95% interval, and its
    precision in the ensemble's top share; a board without an estimate (Spearman all NaN)
    shows the flipped labels' AUROC instead."""
    names = [label(p) for p in board["proxy"]]
    fig = go.Figure()
    if board["spearman"].notna().any():
        rho = board["spearman"].to_numpy(np.float64)
        fig.add_trace(
            go.Scatter(
                x=rho,
                y=names,
                mode="markers",
                marker={"color": SPEARMAN_COLOR, "size": 9},
                error_x={
                    "type": "data",
                    "array": board["spearman_hi"].to_numpy(np.float64) - rho,
                    "arrayminus": rho - board["spearman_lo"].to_numpy(np.float64),
                    "color": SPEARMAN_COLOR,
                    "thickness": 1.5,
                    "width": 4,
                },
                name="Spearman with the memorization score (95% interval)",
                hovertemplate="%{y}: Spearman %{x:.3f}<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=board["precision_top"],
                y=names,
                mode="markers",
                marker={
                    "color": PRECISION_COLOR,
                    "size": 10,
                    "symbol": "diamond-open",
                    "line": {"width": 2},
                },
                name=f"{label('precision_top')} (the proxy's top 5% in the ensemble's)",
                hovertemplate="%{y}: precision %{x:.2f}<extra></extra>",
            )
        )
        low = min(0.0, float(np.nanmin(board[["spearman_lo", "precision_top"]].to_numpy())))
        x_title = "Spearman / precision"
    else:
        fig.add_trace(
            go.Scatter(
                x=board["auroc_flipped"],
                y=names,
                mode="markers",
                marker={"color": SPEARMAN_COLOR, "size": 9},
                name=f"{label('auroc_flipped')} (flipped labels against clean)",
                hovertemplate="%{y}: AUROC %{x:.3f}<extra></extra>",
            )
        )
        low, x_title = 0.0, label("auroc_flipped")
    fig.update_layout(
        title=title,
        height=140 + ROW_HEIGHT * len(board),
        margin=margin(),
        xaxis={"title": x_title, "range": [low - 0.02, 1.02]},
        yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
        legend={"orientation": "h", "y": -60 / (140 + ROW_HEIGHT * len(board)), "yanchor": "top"},
    )
    return fig


def widths_chart(table: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Lukasik et al.'s question, one row per proxy (``proxy``): its Spearman with the
    memorization score within a width (``within``, the mean over the family's widths) and the
    Spearman of its per-example change from the narrowest to the widest run with the score's
    change (``across``), joined by a line; ordered by ``across``, the best at the top."""
    table = table.sort_values("across", ascending=False, kind="stable")
    names = [label(p) for p in table["proxy"]]
    fig = go.Figure()
    for i, name in enumerate(names):  # the gap between the two, grey
        row = table.iloc[i]
        fig.add_trace(
            go.Scatter(
                x=[row["within"], row["across"]],
                y=[name, name],
                mode="lines",
                line={"color": "#bbbbbb", "width": 2},
                showlegend=False,
                hoverinfo="skip",
            )
        )
    for column, color, symbol, what in (
        ("within", SPEARMAN_COLOR, "circle", "within a width (mean over the widths)"),
        ("across", PRECISION_COLOR, "diamond", "of the changes from narrowest to widest"),
    ):
        fig.add_trace(
            go.Scatter(
                x=table[column],
                y=names,
                mode="markers",
                marker={"color": color, "size": 10, "symbol": symbol},
                name=f"Spearman {what}",
                hovertemplate=f"%{{y}}: Spearman {what} %{{x:.3f}}<extra></extra>",
            )
        )
    low = min(0.0, float(np.nanmin(table[["within", "across"]].to_numpy())))
    height = 140 + ROW_HEIGHT * len(table)
    fig.update_layout(
        title=title,
        height=height,
        margin=margin(),
        xaxis={"title": "Spearman with the memorization score", "range": [low - 0.05, 1.02]},
        yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
        legend={"orientation": "h", "y": -60 / height, "yanchor": "top"},
    )
    return fig


def widths_table(values: dict[str, float]) -> pd.DataFrame:
    """The `widths_chart` table of a `proxies_across_widths` finding's values (``across_P`` and
    ``within_P`` for each proxy P)."""
    proxies = [k.removeprefix("across_") for k in values if k.startswith("across_")]
    return pd.DataFrame(
        {
            "proxy": proxies,
            "across": [values[f"across_{p}"] for p in proxies],
            "within": [values[f"within_{p}"] for p in proxies],
        }
    )
