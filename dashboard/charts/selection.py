"""Reading a plotly selection event back: the example ids of the selected points (the first
element of each point's customdata)."""

from __future__ import annotations


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
