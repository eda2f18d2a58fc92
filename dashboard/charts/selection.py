"""Reading a plotly selection event back: the example ids of the selected points (the first
element of each point's customdata), or the points of a table inside its boxes and lassos
(their geometry, for a chart that draws only a sample of its points: the browser cannot send
a million selected points back)."""

from __future__ import annotations

import numpy as np


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


def selection_shapes(selection: dict | None) -> tuple[list[dict], list[dict]]:
    """The boxes and lassos a plotly selection event holds (Streamlit's ``box`` and
    ``lasso``: each a dict with ``x`` and ``y`` lists in data coordinates; a box's are its
    two corners, a lasso's its vertices), those on the main axes only."""
    if not selection:
        return [], []
    inner = selection.get("selection", selection)

    def main_axes(shapes) -> list[dict]:
        return [
            s
            for s in shapes or []
            if s.get("xref", "x") == "x" and s.get("yref", "y") == "y" and len(s.get("x", [])) > 0
        ]

    return main_axes(inner.get("box")), main_axes(inner.get("lasso"))


def in_box(x: np.ndarray, y: np.ndarray, xs: list[float], ys: list[float]) -> np.ndarray:
    """Whether each point (`x`, `y`: shape (N,)) lies in the box spanned by the corners
    (xs[0], ys[0]) and (xs[1], ys[1]), edges included: bool, shape (N,); NaN: outside."""
    (x0, x1), (y0, y1) = sorted(xs[:2]), sorted(ys[:2])
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def in_polygon(x: np.ndarray, y: np.ndarray, xs: list[float], ys: list[float]) -> np.ndarray:
    """Whether each point (`x`, `y`: shape (N,)) lies inside the polygon of vertices
    (xs[i], ys[i]) (closed from the last back to the first), by the even-odd rule: bool,
    shape (N,); NaN: outside.

    A ray from each point towards +x crosses an edge when the point's y lies in the edge's
    half-open span [min, max) and the point is left of the edge there. With the points
    sorted by y once, each edge looks only at the points in its span (two binary searches),
    so a lasso of hundreds of vertices over a million points takes a sort and a few passes,
    not one pass per vertex. Only the points in the polygon's bounding box are sorted.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    inside = np.zeros(len(x), bool)
    vx, vy = np.asarray(xs, float), np.asarray(ys, float)
    if len(vx) < 3:
        return inside
    near = np.flatnonzero(in_box(x, y, [vx.min(), vx.max()], [vy.min(), vy.max()]))
    order = near[np.argsort(y[near], kind="stable")]
    sx, sy = x[order], y[order]
    flags = np.zeros(len(order), bool)
    for x1, y1, x2, y2 in zip(vx, vy, np.roll(vx, -1), np.roll(vy, -1), strict=True):
        if y1 == y2:
            continue  # a horizontal edge crosses no ray
        lo, hi = min(y1, y2), max(y1, y2)
        a, b = np.searchsorted(sy, lo, side="left"), np.searchsorted(sy, hi, side="left")
        crossing = x1 + (sy[a:b] - y1) * (x2 - x1) / (y2 - y1)
        flags[a:b] ^= sx[a:b] < crossing
    inside[order] = flags
    return inside


def in_selection(x: np.ndarray, y: np.ndarray, selection: dict | None) -> np.ndarray | None:
    """Whether each point (`x`, `y`: shape (N,)) lies in any box or lasso of a plotly
    selection event (`selection_shapes`): bool, shape (N,); None when the event holds no
    box or lasso (a click, or nothing)."""
    boxes, lassos = selection_shapes(selection)
    if not boxes and not lassos:
        return None
    x, y = np.asarray(x, float), np.asarray(y, float)
    chosen = np.zeros(len(x), bool)
    for box in boxes:
        chosen |= in_box(x, y, box["x"], box["y"])
    for lasso in lassos:
        chosen |= in_polygon(x, y, lasso["x"], lasso["y"])
    return chosen
