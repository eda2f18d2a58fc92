"""Counterfactual memorization of a text run's sequences (Zhang et al. 2021): by token accuracy
against by log-likelihood, one point a sequence coloured by its kind, and each score by the
copies a sequence had per epoch (duplicated sequences by their count, canaries by their
repeats). Plotly figures from the example table: no Streamlit calls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from memdash.dashboard.charts._common import margin
from memdash.dashboard.labels import label
from memdash.dashboard.palette import kind_color

# drawn first lie underneath: plain sequences, then duplicated ones, then canaries
CF_KINDS = ("plain", "duplicate", "canary")
CF_SCORES = ("cf_mem_accuracy", "cf_mem_loglik")


def axis_title(column: str) -> str:
    """`column`'s label on two lines, its parenthesis on the second: the whole label is longer
    than a half-width chart's y-axis."""
    words = label(column)
    head, sep, tail = words.partition(" (")
    return f"{head}<br>({tail}" if sep else words


def copies_group(table: pd.DataFrame) -> pd.Series:
    """Per sequence its kind and copies per epoch: ``plain``, ``duplicate x4``, ``canary x16``
    (``duplicates``: the presentations per epoch of a duplicated sequence or a canary)."""
    kind = table["kind"].astype(str)
    copies = table["duplicates"].astype(int).astype(str)
    named = kind.isin(["duplicate", "canary"])
    return pd.Series(np.where(named, kind + " x" + copies, kind), index=table.index)


def _ordered_groups(table: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(group, kind, rows) in drawing order: by kind (`CF_KINDS`), then by copies."""
    rows = table[table["kind"].isin(CF_KINDS)].assign(group=copies_group(table))
    rank = rows["kind"].map({k: i for i, k in enumerate(CF_KINDS)})
    rows = rows.assign(_rank=rank).sort_values(["_rank", "duplicates"], kind="stable")
    return [
        (str(group), str(part["kind"].iloc[0]), part)
        for group, part in rows.groupby("group", sort=False)
    ]


def counterfactual_scatter(table: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Counterfactual memorization by log-likelihood (x) against by token accuracy (y), one
    WebGL trace per kind (`CF_KINDS` in the palette's colours), ``example_id`` first in
    customdata (for selections) and the copies per epoch second."""
    fig = go.Figure()
    x, y = "cf_mem_loglik", "cf_mem_accuracy"
    for kind in CF_KINDS:
        rows = table[table["kind"] == kind]
        if rows.empty:
            continue
        custom = rows[["example_id", "duplicates"]].to_numpy(dtype=float)
        fig.add_trace(
            go.Scattergl(
                x=rows[x],
                y=rows[y],
                mode="markers",
                name=kind,
                marker={"color": kind_color(kind), "size": 6 if kind == "plain" else 8},
                customdata=custom,
                hovertemplate=(
                    f"example %{{customdata[0]:d}}<br>kind: {kind}, %{{customdata[1]:d}} "
                    f"per epoch<br>{label(x)}: %{{x:.3g}}<br>{label(y)}: %{{y:.3g}}<extra></extra>"
                ),
            )
        )
    fig.add_hline(y=0, line={"dash": "dot", "color": "#7F7F7F"})
    fig.add_vline(x=0, line={"dash": "dot", "color": "#7F7F7F"})
    fig.update_layout(
        title=title,
        xaxis_title=label(x),
        yaxis_title=axis_title(y),
        height=440,
        margin=margin(),
        legend={"orientation": "h", "y": -0.2},
        dragmode="lasso",
    )
    return fig


def counterfactual_by_copies(table: pd.DataFrame, score: str = "cf_mem_accuracy") -> go.Figure:
    """`score` of the training sequences as one box per kind and copies per epoch (plain,
    duplicate x2 .. x32, canary x1 .. x64), each in its kind's colour, every point drawn."""
    fig = go.Figure()
    for group, kind, rows in _ordered_groups(table.dropna(subset=[score])):
        fig.add_trace(
            go.Box(
                y=rows[score],
                name=group,
                marker={"color": kind_color(kind), "size": 4},
                boxpoints="all" if len(rows) <= 64 else "outliers",
                customdata=rows[["example_id"]].to_numpy(dtype=float),
                hovertemplate=f"example %{{customdata[0]:d}} ({group})<br>"
                f"{label(score)}: %{{y:.3g}}<extra></extra>",
            )
        )
    fig.add_hline(y=0, line={"dash": "dot", "color": "#7F7F7F"})
    fig.update_layout(
        title=f"{label(score)} by copies per epoch",
        yaxis_title=axis_title(score),
        showlegend=False,
        height=400,
        margin=margin(),
    )
    return fig


def median_by_copies(table: pd.DataFrame) -> pd.DataFrame:
    """Per kind and copies per epoch (`copies_group`): ``sequences`` and the median of both
    counterfactual scores, in drawing order."""
    out = []
    for group, kind, rows in _ordered_groups(table.dropna(subset=["cf_mem_accuracy"])):
        out.append(
            {
                "group": group,
                "kind": kind,
                "sequences": len(rows),
                "cf_mem_accuracy": float(rows["cf_mem_accuracy"].median()),
                "cf_mem_loglik": float(rows["cf_mem_loglik"].median()),
            }
        )
    return pd.DataFrame(out, columns=["group", "kind", "sequences", *CF_SCORES])
