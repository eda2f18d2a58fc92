"""Figures from DataFrames: pure functions, no Streamlit calls, unit-tested on their own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from memdash.analysis.measures.curves import GROUPS
from memdash.dashboard.labels import RATIO_COLUMNS, label
from memdash.dashboard.palette import (
    ATTACK_COLORS,
    GROUP_COLORS,
    KIND_COLORS,
    MEMBER_COLORS,
    SEQUENTIAL,
    kind_color,
    repeat_color,
)

RUN_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
# kinds drawn first lie underneath: never-trained examples under the trained ones
DRAW_ORDER = ("test", "reference", "clean", "canary", "flipped")


def training_curves(curves: pd.DataFrame, *, metric: str = "accuracy") -> go.Figure:
    """Accuracy (or loss) by epoch: one line per (run, group), colour by group, dash by run.

    Parameters
    ----------
    curves : columns ``run``, ``epoch``, ``group``, and `metric`
    """
    fig = go.Figure()
    runs = list(dict.fromkeys(curves["run"])) if len(curves) else []
    for r, run in enumerate(runs):
        for group in GROUPS:
            rows = curves[(curves["run"] == run) & (curves["group"] == group)]
            if rows.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=rows["epoch"],
                    y=rows[metric],
                    mode="lines",
                    name=group if len(runs) == 1 else f"{run}: {group}",
                    line={"color": GROUP_COLORS[group], "dash": RUN_DASHES[r % len(RUN_DASHES)]},
                    hovertemplate=f"{run}<br>{group}<br>epoch %{{x}}<br>{metric} %{{y:.3f}}"
                    "<extra></extra>",
                )
            )
    fig.update_layout(
        xaxis_title="epoch (0 = before training)",
        yaxis_title=f"{metric} (labels trained with)" if metric == "accuracy" else metric,
        legend_title="examples",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        height=420,
    )
    if metric == "accuracy":
        fig.update_yaxes(range=[0, 1.02])
    if len(curves) and curves["epoch"].max() <= 20:
        fig.update_xaxes(dtick=1)  # whole epochs only
    return fig


# --- one example --------------------------------------------------------------------------


def _as_signal_or_image(x: np.ndarray) -> np.ndarray:
    """Drop a leading single channel: (1, H, W) -> (H, W), (1, L) -> (L,)."""
    x = np.asarray(x, dtype=np.float32)
    return x[0] if x.ndim >= 2 and x.shape[0] == 1 else x


def _is_rgb(x: np.ndarray) -> bool:
    return x.ndim == 3 and x.shape[0] == 3


def _unit(x: np.ndarray) -> np.ndarray:
    """Scaled to [0, 1] by its own range (a constant input becomes 0)."""
    span = float(x.max() - x.min()) or 1.0
    return (x - x.min()) / span


def example_input(x: np.ndarray, *, title: str = "", photo: bool = False) -> go.Figure:
    """An example's input: an RGB image for 3-channel images, a grey image for other 2-D
    inputs (dark ink on white, as digits are drawn; as they are for a `photo`), a line for
    1-D ones (images of other channel counts: the mean over channels)."""
    x = _as_signal_or_image(x)
    fig = go.Figure()
    if _is_rgb(x):
        rgb = np.round(_unit(x).transpose(1, 2, 0) * 255).astype(np.uint8)
        fig.add_trace(go.Image(z=rgb, hoverinfo="skip"))
        fig.update_yaxes(visible=False)
        fig.update_xaxes(visible=False)
    else:
        x = x.mean(axis=0) if x.ndim == 3 else x
        if x.ndim == 2:
            fig.add_trace(
                go.Heatmap(
                    z=x,
                    colorscale="Greys",
                    reversescale=photo,
                    showscale=False,
                    hoverinfo="skip",
                )
            )
            fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
            fig.update_xaxes(visible=False)
        else:
            fig.add_trace(go.Scatter(y=x.ravel(), mode="lines", line={"color": "#333"}))
            fig.update_xaxes(title="position")
    fig.update_layout(title=title, height=260, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def thumbnail(x: np.ndarray, *, height: int = 28, photo: bool = False) -> np.ndarray:
    """A float image in [0, 1] for st.image: (H, W, 3) for RGB images, (H, W) for other 2-D
    inputs (ink dark, unless a `photo`), a rasterized line for 1-D ones."""
    x = _as_signal_or_image(x)
    if _is_rgb(x):
        return _unit(x).transpose(1, 2, 0)
    if x.ndim == 3:
        x = x.mean(axis=0)
    scaled = _unit(x)
    if x.ndim == 2:
        return scaled if photo else 1.0 - scaled
    rows = np.round((1 - scaled.ravel()) * (height - 1)).astype(int)
    image = np.ones((height, len(rows)), np.float32)
    image[rows, np.arange(len(rows))] = 0.0
    return image


def trajectory(frame: pd.DataFrame) -> go.Figure:
    """One example over epochs: probability of the given label and loss, correct marked,
    forgetting events (correct -> wrong) flagged.

    Parameters
    ----------
    frame : columns ``epoch``, ``prob_label``, ``loss``, ``correct``
    """
    frame = frame.sort_values("epoch")
    correct = frame["correct"].astype(bool).to_numpy()
    forgot = np.flatnonzero(correct[:-1] & ~correct[1:]) + 1
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=frame["epoch"],
            y=frame["prob_label"],
            name="p(given label): filled when right, open when wrong",
            mode="lines+markers",
            marker={
                "symbol": np.where(correct, "circle", "circle-open"),
                "size": 7,
                "color": "#333333",
            },
            line={"color": "#333333"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=frame["epoch"],
            y=frame["loss"],
            name="loss",
            yaxis="y2",
            line={"color": "#999999", "dash": "dot"},
        )
    )
    if len(forgot):
        fig.add_trace(
            go.Scatter(
                x=frame["epoch"].to_numpy()[forgot],
                y=frame["prob_label"].to_numpy()[forgot],
                name="forgetting event (right, then wrong)",
                mode="markers",
                marker={"symbol": "x", "size": 12, "color": "#000000"},
            )
        )
    last = int(frame["epoch"].max()) if len(frame) else 1
    fig.update_layout(
        xaxis={"title": "epoch", "tickformat": "d", "dtick": 1 if last <= 20 else None},
        yaxis={"title": "p(given label)", "range": [0, 1.02]},
        yaxis2={"title": "loss (nats)", "overlaying": "y", "side": "right", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.25},
        height=320,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig


# --- shared building blocks ---------------------------------------------------------------


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
) -> go.Figure:
    """A heatmap of `value` over the (x, y) pairs of a long table, cells annotated; rows and
    columns in the given orders (others left out)."""
    grid = frame.pivot_table(index=y, columns=x, values=value, aggfunc="mean")
    if y_order is not None:
        grid = grid.reindex([v for v in y_order if v in grid.index])
    if x_order is not None:
        grid = grid[[v for v in x_order if v in grid.columns]]
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[str(c) for c in grid.columns],
            y=[str(i) for i in grid.index],
            zmin=zmin,
            zmax=zmax,
            colorscale=SEQUENTIAL,
            text=np.round(grid.to_numpy(), 2),
            texttemplate="%{text}" if grid.size <= 200 else None,
            hovertemplate=f"{label(x)} %{{x}}<br>{label(y)} %{{y}}<br>{label(value)} %{{z:.3f}}"
            "<extra></extra>",
            colorbar={"title": label(value)},
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title=label(x),
        yaxis_title=label(y),
        xaxis_type="category",
        height=max(220, 60 + 40 * len(grid)),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def lines(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    color: str,
    title: str = "",
    dash: str | None = None,
    colors: dict[str, str] | None = None,
) -> go.Figure:
    """One line per value of `color` (and of `dash`, drawn dashed), y against x; kinds of
    example and study series in their palette colours, others from `colors` if given.

    A numeric x is drawn in increasing order; categories (layers, modes) in the order the
    rows give them.
    """
    fig = go.Figure()
    groups = [color] if dash is None else [color, dash]
    if pd.api.types.is_numeric_dtype(frame[x]):
        frame = frame.sort_values(x, kind="stable")
    for key, rows in frame.groupby(groups, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        name = " / ".join(str(k) for k in key)
        style = {"dash": RUN_DASHES[list(frame[dash].unique()).index(key[1]) % 6]} if dash else {}
        chosen = (colors or {}).get(str(key[0])) or kind_color(str(key[0]))
        if chosen:  # clean, flipped, true labels, ...: their palette colour
            style["color"] = chosen
        fig.add_trace(
            go.Scatter(x=rows[x], y=rows[y], mode="lines+markers", name=label(name), line=style)
        )
    if y in RATIO_COLUMNS:  # a share: from 0 to 1, so differences are not magnified
        fig.update_yaxes(range=[0, 1.02])
    fig.update_layout(
        title=title,
        xaxis_title=label(x),
        yaxis_title=label(y),
        height=360,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def histograms(frame: pd.DataFrame, *, value: str, group: str, title: str = "") -> go.Figure:
    """Overlaid histograms of `value`, one per group, as shares of the group, all on the same
    bins (whole numbers for integer values); kinds in their palette colours."""
    values = frame[value].dropna().astype(float)
    bins = shared_bins(values.to_numpy(), integer=value_is_integer(values))
    fig = go.Figure()
    for name, rows in _groups(frame.dropna(subset=[group]), group).items():
        fig.add_trace(
            go.Histogram(
                x=rows[value],
                name=name,
                opacity=0.6,
                histnorm="percent",
                xbins=bins,
                autobinx=False,
                marker={"color": kind_color(name)},
            )
        )
    fig.update_layout(
        barmode="overlay",
        title=title,
        xaxis_title=label(value),
        yaxis_title="% of the group",
        height=320,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def layer_distribution(frame: pd.DataFrame, *, value: str, layers: list[str]) -> go.Figure:
    """Per layer (in forward order), the distribution of `value` for each kind of example,
    side by side: boxes of the quartiles with every example drawn as a point."""
    fig = go.Figure()
    for kind, rows in _groups(frame, "kind").items():
        fig.add_trace(
            go.Box(
                x=rows["layer"],
                y=rows[value],
                name=kind,
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker={"color": KIND_COLORS.get(kind), "size": 3},
            )
        )
    present = [layer for layer in layers if layer in set(frame["layer"])]
    fig.update_layout(
        boxmode="group",
        xaxis={"type": "category", "categoryorder": "array", "categoryarray": present},
        xaxis_title=label("layer"),
        yaxis_title=label(value),
        yaxis_rangemode="tozero",
        height=380,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig


def _draw_rank(kind: object) -> int:
    return DRAW_ORDER.index(kind) if kind in DRAW_ORDER else len(DRAW_ORDER)


def value_is_integer(values: pd.Series) -> bool:
    """Whether every value is a whole number (counts, epochs)."""
    return bool(len(values)) and bool(np.all(np.mod(values.to_numpy(float), 1) == 0))


def shared_bins(values: np.ndarray, *, integer: bool, n: int = 30) -> dict[str, float]:
    """One set of histogram bins for every group: unit bins centred on whole numbers for
    integer values, else `n` equal bins over the range."""
    if len(values) == 0:
        return {"start": 0.0, "end": 1.0, "size": 1.0}
    lo, hi = float(np.min(values)), float(np.max(values))
    if integer:
        return {"start": lo - 0.5, "end": hi + 0.5, "size": 1.0}
    size = (hi - lo) / n if hi > lo else 1.0
    return {"start": lo, "end": hi + size * 1e-9, "size": size}


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
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
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
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def scatter(
    table: pd.DataFrame,
    *,
    x: str,
    y: str,
    color: str,
    title: str = "",
    max_points: int | None = None,
    seed: int = 0,
) -> go.Figure:
    """A WebGL scatter of examples (``example_id`` first in customdata, for selections),
    coloured by a numeric column (colour scale) or a categorical one (one trace per value,
    kinds in their palette colours, never-trained kinds drawn underneath).

    Hover says, in words, the example's kind, given and true label and the coloured value.
    `max_points` draws a seeded sample of that many examples (None: all).
    """
    if max_points is not None and len(table) > max_points:
        table = table.sample(max_points, random_state=seed)
    fig = go.Figure()
    values = table[color]
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric:  # one trace per kind (hover names it), one shared colour scale
        scale = {"cmin": float(values.min()), "cmax": float(values.max())}
        by_kind = _groups(table, "kind") if "kind" in table.columns else {"": table}
        for i, (kind, rows) in enumerate(by_kind.items()):
            marker = {"color": rows[color], "colorscale": SEQUENTIAL, "size": 5, **scale}
            if i == 0:
                marker |= {"showscale": True, "colorbar": {"title": label(color)}}
            fig.add_trace(_points(rows, x, y, color, marker=marker, name=kind, kind=kind))
    else:
        for value, rows in _groups(table, color).items():
            colour = KIND_COLORS.get(value) if color == "kind" else None
            name = value if color == "kind" else f"{label(color)} = {value}"
            kind = value if color == "kind" else None
            fig.add_trace(
                _points(
                    rows, x, y, color, marker={"size": 5, "color": colour}, name=name, kind=kind
                )
            )
    for axis, column in (("xaxis", x), ("yaxis", y)):  # shares from 0 to 1; spreads from 0
        if column in RATIO_COLUMNS:
            fig.update_layout({axis: {"range": [0, 1.02]}})
        elif column == "variability":
            fig.update_layout({axis: {"rangemode": "tozero"}})
    fig.update_layout(
        title=title,
        xaxis_title=label(x),
        yaxis_title=label(y),
        dragmode="lasso",
        height=520,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def _groups(table: pd.DataFrame, column: str) -> dict[str, pd.DataFrame]:
    """Rows by the value of `column` (as text), never-trained kinds first (drawn underneath)."""
    groups = dict(list(table.groupby(table[column].astype(str), sort=True)))
    return {k: groups[k] for k in sorted(groups, key=_draw_rank)}


HOVER_COLUMNS = ("example_id", "label", "true_label")


def _points(
    rows: pd.DataFrame,
    x: str,
    y: str,
    color: str,
    *,
    marker: dict,
    name: str,
    kind: str | None,
):
    """One WebGL trace of examples: hover gives the id, kind, labels and coloured value.

    ``customdata`` is numeric only (id first, for selections; then the labels and the
    coloured value), so Plotly sends it as a packed typed array: 20,000 points stay fast.
    The kind, constant within a trace, is written into the hover template.
    """
    columns = [c for c in HOVER_COLUMNS if c in rows.columns]
    numeric = pd.api.types.is_numeric_dtype(rows[color]) and not pd.api.types.is_bool_dtype(
        rows[color]
    )
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


def point_example_id(point: dict) -> int | None:
    """The example id of one selected point: the first element of its customdata, which
    arrives as a number, a list, or (a row of a packed typed array) a dict keyed "0", "1"..."""
    value = point.get("customdata")
    if isinstance(value, dict):
        value = value.get("0", next(iter(value.values()), None))
    elif isinstance(value, list | tuple):
        value = value[0] if value else None
    return None if value is None else int(value)


def selected_example_ids(selection: dict | None) -> list[int]:
    """The example ids of the points a plotly selection event holds (box, lasso or click)."""
    if not selection:
        return []
    points = selection.get("selection", selection).get("points", [])
    ids = [point_example_id(point) for point in points]
    return sorted({i for i in ids if i is not None})


def roc_curves(curves: pd.DataFrame, *, fpr: float | None = None) -> go.Figure:
    """Membership-inference ROCs (``attack``, ``fpr``, ``tpr``) on log-log axes, as Carlini
    et al. plot them (the low-FPR corner is what matters), with chance (TPR = FPR) dotted
    and, given `fpr`, a line at the false-positive rate the attacker accepts."""
    fig = go.Figure()
    low = float(curves["fpr"].min()) if len(curves) else 1e-5
    fig.add_trace(
        go.Scatter(
            x=[low, 1],
            y=[low, 1],
            mode="lines",
            name="chance",
            line={"dash": "dot", "color": "#7F7F7F"},
        )
    )
    for attack, rows in curves.groupby("attack", sort=False):
        fig.add_trace(
            go.Scatter(
                x=rows["fpr"],
                y=rows["tpr"].clip(lower=low),  # a TPR of 0 has no place on a log axis
                mode="lines",
                name=f"{attack} LiRA" if attack != "global" else "global threshold",
                line={"color": ATTACK_COLORS.get(str(attack)), "shape": "hv"},
            )
        )
    if fpr is not None:
        fig.add_vline(x=fpr, line={"dash": "dash", "color": "#7F7F7F"})
    decades = {"type": "log", "range": [np.log10(low), 0], "dtick": 1, "exponentformat": "power"}
    fig.update_xaxes(title=label("fpr"), **decades)
    fig.update_yaxes(title=label("tpr"), **decades)
    fig.update_layout(
        title="membership inference ROC (log-log)",
        height=440,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def member_histograms(
    phi_in: np.ndarray, phi_out: np.ndarray, *, threshold: float, title: str = ""
) -> go.Figure:
    """One example's confidence phi under the models that trained on it and those that held
    it out (shares of each, shared bins), with the attacker's threshold."""
    values = np.r_[phi_in, phi_out]
    bins = shared_bins(values, integer=False, n=30)
    fig = go.Figure()
    for name, part in (("held it out", phi_out), ("trained on it", phi_in)):
        fig.add_trace(
            go.Histogram(
                x=part,
                name=f"models that {name}" if name == "held it out" else f"models {name}",
                opacity=0.6,
                histnorm="percent",
                xbins=bins,
                autobinx=False,
                marker={"color": MEMBER_COLORS[name]},
            )
        )
    fig.add_vline(x=threshold, line={"dash": "dash", "color": "#000000"})
    fig.update_layout(
        barmode="overlay",
        title=title,
        xaxis_title="confidence phi = log(p / (1 - p)) of the label",
        yaxis_title="% of the models",
        height=320,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.3},
    )
    return fig
