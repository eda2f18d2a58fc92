"""Every point of a large scatter, in a browser (issue #27): a density raster of all the
points under a WebGL scatter of a seeded sample of them.

Why this and not one WebGL trace of every point (`benchmarks/pages_million.py`, a synthetic
1,000,000-example run on this 2-core machine, shared, so figures vary with its load): one
Scattergl trace of every point, even with numeric customdata only (packed typed arrays), is
45 MB of figure JSON coloured by kind and 70 MB by a score, built and serialized in 0.6-1.2 s;
headless Chromium then took 39-44 s to draw it, and a lasso's list did not come within 120 s,
since a box or lasso sends back one object per selected point (Streamlit's plotly selection
event). Binned like datashader, every point still counts: the plot area is cut into `RASTER`
bins (about 1.5 screen pixels each), each bin coloured by the mean of its examples' colours
(the mix of kinds, or of a score's colours on the palette's scale) and as opaque as the log
of its count; the raster is a PNG layout image under the traces (about 130 kB), the whole
figure 1.2-1.8 MB built in 0.2-0.4 s (numpy's ``bincount``). Over it a seeded sample of about
`OVERLAY_POINTS` examples, every rare kind kept, gives hover, click-to-open and the legend.
A box or lasso is read back from its geometry (`memdash.dashboard.charts.selection`), so it
selects every example inside, not only the sampled ones, and the browser sends only the
sample's points. The Embeddings page so drew in 6.6 s from opening on a fresh server (5.2 s
for a 2,000-example run), 1.8 s reloaded, and listed a mouse lasso's 126,192 examples 1.4 s
after its release. Zooming in magnifies the raster's bins (the server does not redraw it).

Up to `DENSITY_ABOVE` points a chart is today's scatter of every point (`scatters.scatter`).
No new dependency: numpy for the bins, Pillow (Streamlit's own) for the PNG.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go
from PIL import Image

from memdash.dashboard.charts._common import SHARE_RANGE, _draw_rank, is_numeric
from memdash.dashboard.charts.scatters import scatter
from memdash.dashboard.labels import RATIO_COLUMNS
from memdash.dashboard.palette import SEQUENTIAL, kind_color

# above this many points a chart draws the density of all and a sample on top: the Embeddings
# page drew a seeded sample of 20,000 by default before, so the runs it drew whole still are
DENSITY_ABOVE = 20_000
OVERLAY_POINTS = 20_000  # the sample drawn as points over the density (hover, click, legend)
RASTER = (640, 280)  # bins across and up: about 1.5 screen pixels each on a 520 px chart
RARE_POINTS = 500  # a kind (or value) drawn with at least this many of its points, if it has them
OVERLAY_SIZE = 3  # the sample's markers: small, so the density around them stays visible
MIN_ALPHA = 0.35  # a bin holding one example; the fullest bin is opaque (log scale between)
MISSING_RGB = (187, 187, 187)  # a bin whose examples have no value of the coloured score
# the values of a categorical column other than kind, in the order drawn: plotly's own
# qualitative colours, set on the points too so that the raster and the points agree
CATEGORY_COLORS = tuple(plotly.colors.qualitative.Plotly)
OTHER_KIND = "#999999"  # a kind the palette does not know


def axis_range(values: np.ndarray, column: str) -> tuple[float, float]:
    """The range an axis of `column` shows: a share from 0 to 1 (`SHARE_RANGE`), a spread
    (variability) from 0, anything else its finite values' span padded by 3% (a constant
    column by 0.5 each side; no finite value: 0 to 1)."""
    if column in RATIO_COLUMNS:
        return SHARE_RANGE
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (0.0, 1.0)
    lo, hi = float(finite.min()), float(finite.max())
    pad = 0.03 * (hi - lo) if hi > lo else 0.5
    if column == "variability":
        return (min(lo, 0.0), hi + pad)
    return (lo - pad, hi + pad)


def raster_bins(
    x: np.ndarray,
    y: np.ndarray,
    *,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    shape: tuple[int, int] = RASTER,
) -> np.ndarray:
    """The bin of each point in a raster `shape` = (across, up) over the ranges: int64, shape
    (N,), ``row * across + column`` with row 0 at the bottom; -1 for a point outside the
    ranges or with a NaN coordinate (points on the top or right edge fall in the last bin)."""
    across, up = shape
    col = np.floor((x - x_range[0]) / (x_range[1] - x_range[0]) * across)
    row = np.floor((y - y_range[0]) / (y_range[1] - y_range[0]) * up)
    col = np.where(col == across, across - 1, col)  # the right edge belongs to the raster
    row = np.where(row == up, up - 1, row)
    inside = (col >= 0) & (col < across) & (row >= 0) & (row < up)  # NaN compares False
    return np.where(inside, row * across + col, -1).astype(np.int64)


def raster_rgba(
    bins: np.ndarray,
    rgb: np.ndarray,
    *,
    shape: tuple[int, int] = RASTER,
) -> np.ndarray:
    """The raster's image: each bin the mean colour of its points (`rgb`, float (N, 3) in 0
    to 255; a NaN row is a point drawn in `MISSING_RGB`), as opaque as the log of its count
    (`MIN_ALPHA` for one point, 1 for the fullest bin), empty bins transparent. Returns uint8
    (up, across, 4) with the top row first, as an image is stored."""
    across, up = shape
    keep = bins >= 0
    bins, rgb = bins[keep], np.where(np.isnan(rgb[keep]), MISSING_RGB, rgb[keep])
    count = np.bincount(bins, minlength=across * up).astype(float)
    image = np.zeros((across * up, 4))
    for channel in range(3):
        total = np.bincount(bins, weights=rgb[:, channel], minlength=across * up)
        image[:, channel] = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    if count.max() > 0:
        scale = np.log1p(count) / np.log1p(count.max())
        image[:, 3] = np.where(count > 0, 255 * (MIN_ALPHA + (1 - MIN_ALPHA) * scale), 0)
    return np.rint(image).astype(np.uint8).reshape(up, across, 4)[::-1]


def category_colors(table: pd.DataFrame, color: str) -> dict[str, str]:
    """A colour per value of a categorical column (as text), in the order `groups` draws
    them: kinds in the palette's colours, any other column's values in `CATEGORY_COLORS`."""
    values = sorted({str(v) for v in pd.unique(table[color])})
    values = sorted(values, key=_draw_rank)  # never-trained kinds first, as `groups` does
    if color == "kind":
        return {v: kind_color(v) or OTHER_KIND for v in values}
    return {v: CATEGORY_COLORS[i % len(CATEGORY_COLORS)] for i, v in enumerate(values)}


def point_rgb(
    table: pd.DataFrame, color: str, *, colors: dict[str, str] | None = None
) -> np.ndarray:
    """Each row's colour as float (N, 3), 0 to 255: its category's (`colors`, keyed by the
    value as text), or its value on the palette's sequential scale between the column's
    finite min and max (NaN: a NaN row)."""
    values = table[color]
    if colors is not None:
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        lut = np.array([_rgb(colors.get(str(u), OTHER_KIND)) for u in uniques], float)
        return lut[codes]
    numbers = values.to_numpy(dtype=float)
    if np.isnan(numbers).all():
        return np.full((len(numbers), 3), np.nan)
    lut = np.array(_scale_rgb(SEQUENTIAL, 256), float)
    lo, hi = np.nanmin(numbers), np.nanmax(numbers)
    where = (numbers - lo) / (hi - lo) if hi > lo else np.zeros_like(numbers)
    index = np.rint(np.nan_to_num(where, nan=0.0) * 255).astype(int)
    return np.where(np.isnan(numbers)[:, None], np.nan, lut[index])


def overlay_rows(table: pd.DataFrame, by: str | None, *, n: int, seed: int = 0) -> pd.DataFrame:
    """A seeded sample of about `n` rows to draw as points, in the table's order: each value
    of column `by` (None: no groups) about its share of `n`, but at least about
    `RARE_POINTS` of it (all when it has no more), so that a rare kind (a few canaries
    among a million) still has points to hover, click and name in the legend. Each row is
    kept with its group's probability (one seeded uniform draw per row: no sort)."""
    if len(table) <= n:
        return table
    if by is None:
        codes = np.zeros(len(table), np.int64)
    else:
        codes = pd.factorize(table[by], use_na_sentinel=False)[0]
    counts = np.bincount(codes)
    take = np.maximum(n * counts / len(table), np.minimum(counts, RARE_POINTS))
    keep = np.random.default_rng(seed).random(len(table)) < (take / counts)[codes]
    return table[keep]


def png_data_uri(rgba: np.ndarray) -> str:
    """An RGBA image (uint8, (rows, columns, 4)) as a PNG data URI."""
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def density_scatter(
    table: pd.DataFrame,
    *,
    x: str,
    y: str,
    color: str,
    title: str = "",
    overlay: int = OVERLAY_POINTS,
    shape: tuple[int, int] = RASTER,
    seed: int = 0,
) -> go.Figure:
    """Every row of `table` as a density raster (`raster_rgba`, a layout image under the
    plot's traces) and a seeded sample of `overlay` rows as small WebGL points over it (the
    example id first in their numeric customdata; hover, click and legend), coloured alike:
    by kind or any categorical column (`category_colors`), or by a score on one shared
    colour scale of all the rows. The axes show the raster's ranges (`axis_range`)."""
    x_values, y_values = table[x].to_numpy(dtype=float), table[y].to_numpy(dtype=float)
    x_range, y_range = axis_range(x_values, x), axis_range(y_values, y)
    numeric = is_numeric(table[color])
    colors = None if numeric else category_colors(table, color)
    bins = raster_bins(x_values, y_values, x_range=x_range, y_range=y_range, shape=shape)
    image = raster_rgba(bins, point_rgb(table, color, colors=colors), shape=shape)
    values = table[color] if numeric else None
    # the sample keeps every rare value of the colour, or (a score) every rare kind
    by = color if not numeric else "kind" if "kind" in table.columns else None
    fig = scatter(
        overlay_rows(table, by, n=overlay, seed=seed),
        x=x,
        y=y,
        color=color,
        title=title,
        size=OVERLAY_SIZE,
        colors=colors,
        value_range=(float(values.min()), float(values.max())) if numeric else None,
    )
    fig.add_layout_image(
        source=png_data_uri(image),
        xref="x",
        yref="y",
        x=x_range[0],
        y=y_range[1],
        sizex=x_range[1] - x_range[0],
        sizey=y_range[1] - y_range[0],
        sizing="stretch",
        layer="below",
    )
    return fig.update_layout(
        xaxis={"range": list(x_range), "autorange": False},
        yaxis={"range": list(y_range), "autorange": False},
    )


def every_point(
    table: pd.DataFrame,
    *,
    x: str,
    y: str,
    color: str,
    title: str = "",
    density_above: int = DENSITY_ABOVE,
) -> go.Figure:
    """A scatter of every row: each one a point up to `density_above` rows
    (`scatters.scatter`), else the density of all under a sample (`density_scatter`)."""
    if len(table) > density_above:
        return density_scatter(table, x=x, y=y, color=color, title=title)
    return scatter(table, x=x, y=y, color=color, title=title)


def is_density(fig: go.Figure) -> bool:
    """Whether a figure draws a density raster (its points are a sample of the rows)."""
    return bool(fig.layout.images)


def _rgb(colour: str) -> tuple[int, int, int]:
    """A '#rrggbb' or 'rgb(r, g, b)' colour as a tuple of 0-255 integers."""
    if colour.startswith("#"):
        return plotly.colors.hex_to_rgb(colour)
    return plotly.colors.unlabel_rgb(colour)


def _scale_rgb(name: str, n: int) -> list[tuple[float, float, float]]:
    """`n` colours evenly along a named plotly colour scale, as 0-255 tuples."""
    scale = plotly.colors.get_colorscale(name)
    samples = plotly.colors.sample_colorscale(scale, np.linspace(0, 1, n).tolist())
    return [plotly.colors.unlabel_rgb(c) for c in samples]
