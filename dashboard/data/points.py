"""The points a map page draws, for runs of up to millions of examples: each example's place
on a layer's 2-D map at one epoch with the few example columns the chart colours and names
points by, joined once and kept (not the whole example table copied on every rerun)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from memdash.dashboard.data.run import derived, examples
from memdash.dashboard.data.stamps import derived_file_stamp, derived_stamp, run_stamp


def map_points(path: Path, layer: str, epoch: int, columns: tuple[str, ...]) -> pd.DataFrame | None:
    """The examples on `layer`'s map (derived/umap/LAYER.parquet) at `epoch`: columns
    ``example_id``, ``x``, ``y`` and `columns` of the example table (those it has), one
    row per example placed, in the map's order; None when the map is not computed.

    Shared between reruns without a copy (a million rows): read-only. The example table's
    row i is example i (the run store's contract), so the join is a take, not a merge.
    """
    name = f"umap/{layer}.parquet"
    stamps = (run_stamp(path), derived_stamp(path), derived_file_stamp(path, name))
    return _map_points(str(path), name, int(epoch), tuple(columns), stamps)


@st.cache_resource(show_spinner="placing the points…", max_entries=8)
def _map_points(
    path: str, name: str, epoch: int, columns: tuple[str, ...], stamps: tuple
) -> pd.DataFrame | None:
    points = derived(Path(path), name)
    if points is None:
        return None
    table = examples(Path(path))
    at = points[points["epoch"].to_numpy() == epoch]
    ids = at["example_id"].to_numpy()
    known = (ids >= 0) & (ids < len(table))  # an id the run does not have is not drawn
    ids = ids[known]
    out = pd.DataFrame(
        {
            "example_id": ids,
            "x": at["x"].to_numpy()[known],
            "y": at["y"].to_numpy()[known],
        }
    )
    for column in dict.fromkeys(columns):
        if column in table.columns and column not in out.columns:
            out[column] = table[column].to_numpy()[ids]
    return out


def rows_of(table: pd.DataFrame, ids: pd.Series | np.ndarray) -> pd.DataFrame:
    """The rows of the example table for `ids`, in that order (row i is example i)."""
    return table.iloc[np.asarray(ids, dtype=np.int64)]
