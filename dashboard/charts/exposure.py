"""Canaries' exposure: at one epoch against their repetitions, and per group over epochs
(with the epochs whose skew-normal fit sits on the references' loss floor shaded)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from memdash.dashboard.charts._common import margin
from memdash.dashboard.labels import TEXT_METHODS, label
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


# ---------------------------------------------------------------- text runs (Carlini et al.)

DASHES = {"exposure_exact": "solid", "exposure_extrapolation": "dash"}  # else dash-dot
CHANCE = float(np.log2(np.e))  # a never-trained secret's expected exact exposure (bits)
GREY = "#555555"
REFERENCES = "references (never trained)"
BAND = {"fillcolor": "rgba(150, 150, 150, 0.25)", "line_width": 0, "showlegend": True}
DIAGONAL = {"line": {"color": GREY, "width": 1}, "showlegend": True}
CEILING_NOTE = dict(line_dash="dash", annotation_text="ceiling", annotation_position="top left")
CHANCE_NOTE = dict(line_dash="dot", annotation_text="chance", annotation_position="top right")
RANK_TITLE = "rank among all |R| secrets (1 = the likeliest to the model)"


def _grouped(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with their ``group`` in words (REFERENCES, or ``canaries seen 4x``)."""
    pairs = zip(rows["kind"], rows["repeats"], strict=True)
    return rows.assign(
        group=[REFERENCES if k == "reference" else f"canaries seen {r}x" for k, r in pairs]
    )


def _group_colors(table: pd.DataFrame) -> dict[str, str]:
    """Each group's colour: references grey, canaries by repetitions (light: seen least)."""
    seen = sorted(table.loc[table["kind"] == "canary", "repeats"].unique())
    colors = {f"canaries seen {r}x": repeat_color(i) for i, r in enumerate(seen)}
    return {REFERENCES: KIND_COLORS["reference"]} | colors


def text_exposure_summary(
    table: pd.DataFrame, *, methods: list[str], statistic: str = "median"
) -> pd.DataFrame:
    """The `statistic` of each method's exposure per group of secrets and epoch, the lines of
    `text_exposure_over_epochs`: ``kind``, ``repeats``, ``epoch``, ``group``, ``n``, methods."""
    by = table.groupby(["kind", "repeats", "epoch"], as_index=False)  # sorted: canaries first
    return _grouped(by.agg(n=("example_id", "size"), **{m: (m, statistic) for m in methods}))


def text_exposure_over_epochs(
    summary: pd.DataFrame, *, methods: list[str], ceiling: float, epoch: int, statistic: str
) -> go.Figure:
    """Exposure per group of secrets over the checkpoint epochs (`text_exposure_summary`), a
    line per group and method (in the legend), with the ceiling log2|R|, chance log2(e) and
    `epoch` shaded. Where the extrapolation passes twice the ceiling, the axis turns log."""
    colors, fig = _group_colors(summary), go.Figure()
    for group, rows in summary.groupby("group", sort=False):
        for i, method in enumerate(methods):  # the legend: groups by colour, methods by dash
            fig.add_trace(
                go.Scatter(
                    x=rows["epoch"],
                    y=rows[method],
                    mode="lines+markers",
                    name=group,
                    legendgroup=group,
                    showlegend=i == 0,
                    line={"color": colors[group], "dash": DASHES.get(method, "dashdot")},
                    customdata=rows["n"],
                    hovertemplate=f"{group}<br>{TEXT_METHODS[method]}<br>epoch %{{x}}: "
                    f"{statistic} %{{y:.2f}} bits of %{{customdata}} secrets<extra></extra>",
                )
            )
    for method in methods:  # the methods' entries in the legend, by their dash
        line, name = {"color": GREY, "dash": DASHES.get(method, "dashdot")}, TEXT_METHODS[method]
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=name, line=line))
    values = summary[methods].to_numpy(dtype=float).ravel()
    top = float(np.nanmax(values, initial=ceiling))
    log = top > 2 * ceiling
    _level(fig, ceiling, f"ceiling log2|R| = {ceiling:.2f}", "dash", log=log)
    _level(fig, CHANCE, "chance: log2(e) = 1.44", "dot", log=log)
    gaps = np.diff(np.sort(summary["epoch"].unique()))
    half = 0.15 * float(gaps.min() if gaps.size else 1)  # the shade: 0.15 of a step a side
    fig.add_vrect(x0=epoch - half, x1=epoch + half, fillcolor="#bbbbbb", opacity=0.3, line_width=0)
    fig.update_layout(
        title=f"{statistic} exposure of the secrets over epochs (shaded: epoch {epoch})",
        xaxis={"title": "epoch (checkpoints)", "tickvals": sorted(summary["epoch"].unique())},
        xaxis_range=[summary["epoch"].min() - 2 * half, summary["epoch"].max() + 2 * half],
        yaxis_title=f"{statistic} {label('exposure')}" + (", log scale" if log else ""),
        yaxis_type="log" if log else "linear",
        legend={"title": "secrets (colour), method (dash)", "orientation": "h", "y": -0.2},
        height=480,
        margin=margin(top=50),
    )
    if log:
        fig.update_yaxes(**_log_ticks([*values, ceiling, CHANCE]))
    else:
        fig.update_yaxes(range=[0, top * 1.08])
    return fig


def agreement(rows: pd.DataFrame, *, method: str, ceiling: float) -> pd.DataFrame:
    """Each secret of one epoch (references first, canaries by repetitions) with its ``group``,
    whether its exact exposure lies below log2|R| - 1, where the extrapolation should agree
    with it (``comparable``), and whether the two lie within 1 bit (``agrees``)."""
    rows = rows.sort_values(["kind", "repeats"], ascending=[False, True], kind="stable")
    return _grouped(rows).assign(
        comparable=rows["exposure_exact"] < ceiling - 1,
        agrees=(rows[method] - rows["exposure_exact"]).abs() <= 1,
    )


def exact_vs_extrapolated(
    points: pd.DataFrame, *, method: str, ceiling: float, epoch: int
) -> go.Figure:
    """Exact against extrapolated exposure, a point per secret (`agreement` rows), with
    y = x, the band within 1 bit of it up to log2|R| - 1 (where the two should agree) and
    the ceiling log2|R| that exact exposure cannot pass."""
    right, edge = ceiling + 0.5, ceiling - 1  # exact exposure stops at the ceiling
    top, colors = max(right, np.nanmax(points[method]) * 1.04 + 0.5), _group_colors(points)
    fig = go.Figure()
    band = f"M 0,-1 L {edge},{edge - 1} L {edge},{edge + 1} L 0,1 Z"  # to log2|R| - 1
    fig.add_shape(type="path", path=band, name="within 1 bit, below log2|R| - 1", **BAND)
    fig.add_shape(type="line", x0=0, y0=0, x1=top, y1=top, name="y = x", **DIAGONAL)
    for group, rows in points.groupby("group", sort=False):
        fig.add_trace(  # the references first (underneath), then canaries by repetitions
            go.Scatter(
                x=rows["exposure_exact"],
                y=rows[method],
                mode="markers",
                name=group,
                marker={"color": colors[group], "size": 9, "opacity": 0.85},
                customdata=np.stack([rows["example_id"], rows["secret"], rows["rank"]], -1),
                hovertemplate="example %{customdata[0]}, secret %{customdata[1]}, rank "
                "%{customdata[2]:,}<br>exact %{x:.2f} bits, extrapolated %{y:.2f} bits"
                "<extra></extra>",
            )
        )
    note = {"annotation_text": f"log2|R| = {ceiling:.2f}", "annotation_position": "bottom left"}
    fig.add_vline(x=ceiling, line_dash="dash", line_color=GREY, **note)
    square = {"scaleanchor": "x"} if top < 1.2 * right else {}  # a bit as long on both axes
    fig.update_layout(
        title=f"exact against extrapolated exposure at epoch {epoch}",
        xaxis={"title": f"{label('exposure')}, exact", "range": [0, right], "constrain": "domain"},
        yaxis={"title": f"{label('exposure')}, extrapolated", "range": [0, top], **square},
        legend={"title": "secrets", "orientation": "h", "y": -0.15},
        height=520,
        margin=margin(top=50),
    )
    return fig


def secret_ranks(points: pd.DataFrame, *, ceiling: float, epoch: int) -> go.Figure:
    """Each secret's exact exposure at one epoch (`agreement` rows), a row per group, its rank
    among the |R| secrets on the top axis (exposure = log2|R| - log2 rank), ceiling, chance."""
    colors, fig = _group_colors(points), go.Figure()
    for group, rows in points.groupby("group", sort=False):
        fig.add_trace(
            go.Scatter(
                x=rows["exposure_exact"],
                y=rows["group"],
                mode="markers",
                name=group,
                marker={"color": colors[group], "size": 11, "opacity": 0.7},
                customdata=np.stack([rows["secret"], rows["rank"]], -1),
                hovertemplate="secret %{customdata[0]}: rank %{customdata[1]:,}, exposure "
                "%{x:.2f} bits<extra></extra>",
            )
        )
    digits = np.arange(int(round(ceiling / np.log2(10))) + 1)  # |R| = 10 ** digits
    span = [-0.4, ceiling + 0.4]
    fig.add_trace(go.Scatter(x=span, y=[None, None], xaxis="x2", showlegend=False))
    for x, note in ((ceiling, CEILING_NOTE), (CHANCE, CHANCE_NOTE)):
        fig.add_vline(x=x, line_color=GREY, **note)
    fig.update_layout(
        title=f"where each secret ranks at epoch {epoch}",
        xaxis={"title": f"{label('exposure')}, exact", "range": span},
        xaxis2={"overlaying": "x", "side": "top", "range": span, "title": RANK_TITLE},
        xaxis2_tickvals=ceiling - digits * np.log2(10),
        xaxis2_ticktext=[f"{10**d:,}" for d in digits],
        yaxis={"categoryorder": "array", "categoryarray": list(dict.fromkeys(points["group"]))},
        showlegend=False,
        height=160 + 60 * points["group"].nunique(),
        margin=margin(top=110),
    )
    return fig


def extraction_shares(extraction: pd.DataFrame, *, epoch: int, kinds: list[str]) -> pd.DataFrame:
    """Per copies per epoch, the sequences of `kinds` extractable at `epoch`: ``copies``,
    ``n``, ``extracted``, ``extracted_share`` (pooled: one copy of a duplicate is a plain one)."""
    rows = extraction[(extraction["epoch"] == epoch) & extraction["kind"].isin(kinds)]
    out = rows.groupby("copies", as_index=False)[["n", "extracted"]].sum()
    return out.assign(extracted_share=out["extracted"] / out["n"])


def extraction_chart(
    shares: pd.DataFrame, *, baseline: float | None, baseline_name: str, title: str, color: str
) -> go.Figure:
    """The share extractable against copies per epoch (`extraction_shares`) on a log2 axis,
    with the never-trained sequences' share as a dotted line."""
    fig = go.Figure(
        go.Scatter(
            x=shares["copies"],
            y=shares["extracted_share"],
            mode="lines+markers",
            marker={"color": color, "size": 9},
            line={"color": color},
            customdata=np.stack([shares["extracted"], shares["n"]], -1),
            hovertemplate="%{x} copies per epoch: %{customdata[0]} of %{customdata[1]} "
            "extractable (%{y:.0%})<extra></extra>",
        )
    )
    if baseline is not None:
        _level(fig, baseline, f"{baseline_name}: {baseline:.0%}", "dot", log=False)
    copies = sorted(shares["copies"].unique())
    fig.update_layout(
        title=title,
        xaxis={"title": "copies per epoch, log2 scale", "type": "log", "tickvals": copies},
        xaxis_range=np.log10([min(copies) / 1.3, max(copies) * 1.3]),  # room for the ends
        yaxis={"title": "share extractable", "range": (-0.04, 1.04), "tickformat": ".0%"},
        height=380,
        margin=margin(top=50),
    )
    return fig
