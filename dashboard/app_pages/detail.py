"""The shared example detail: every page that lists or draws examples opens one here.

The current example lives in the sidebar and the URL (`memdash.dashboard.state`); a page
calls `example_section` under its lists, and any "open" (a gallery button, a table row, a
clicked point, a neighbour) makes that example the current one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from memdash.analysis.store.sources import SOURCES
from memdash.dashboard import charts, data, state
from memdash.dashboard.app_pages.common import (
    SCORES,
    lacks_embeddings,
    open_buttons,
    score_columns,
    shell_path,
    show_command,
    thumbnail_grid,
)
from memdash.dashboard.labels import label, value_text

NEIGHBOURS = 12


def example_section(path: Path, table: pd.DataFrame, *, key: str) -> None:
    """The current example's detail, or how to open one."""
    st.subheader("One example")
    example_id = state.current_example(len(table))
    if example_id is None:
        st.caption(
            "Open an example from any list or chart on this page, or type its id under "
            "“Example” in the sidebar (it stays in the URL)."
        )
        return
    show_example(path, table, example_id, key=key)


def facts(row: pd.Series) -> pd.DataFrame:
    """An example's labels and scores in words: one row per fact, integers as integers,
    missing values as n/a, the memorization score with its 95% interval."""
    rows = [(label(c), value_text(c, row[c])) for c in ("kind", "label", "true_label")]
    for score in score_columns(row.to_frame().T):
        text = value_text(score, row[score])
        if score == "mem_score" and pd.notna(row.get("mem_lo")):
            text += f" (95% interval {row['mem_lo']:.2f} to {row['mem_hi']:.2f})"
        rows.append((label(score), text))
    return pd.DataFrame(rows, columns=["fact", "value"])


def show_example(path: Path, table: pd.DataFrame, example_id: int, *, key: str) -> None:
    """One example: its input, labels and scores, trajectory, k-NN and nearest neighbours."""
    row = table.iloc[example_id]
    inputs = data.inputs(path)
    left, right = st.columns([1, 2])
    left.plotly_chart(
        charts.example_input(
            np.asarray(inputs[example_id]),
            title=f"example {example_id}",
            photo=data.photo_inputs(path),
        ),
        width="stretch",
        key=f"{key}_input",
    )
    # a static table: its cells wrap in the narrow column (a data grid would clip them)
    left.table(facts(row), hide_index=True)
    if score_columns(row.to_frame().T):
        left.caption("What each score means:", help=_score_help())
    source = state.source_used(data.trace_sources(path))
    traj = data.trajectory(path, example_id, source)
    if traj["correct"].notna().any():
        right.caption(f"Trajectory from the {SOURCES[source]}.")
        right.plotly_chart(charts.trajectory(traj.dropna()), width="stretch", key=f"{key}_traj")
    else:
        right.info(f"This run has no {SOURCES[source]} trace for this example.")
    _neighbours(path, example_id, table, key=key)


def _score_help() -> str:
    return "; ".join(f"{label(s)}: {meaning}" for s, meaning in SCORES.items())


def _neighbours(path: Path, example_id: int, table: pd.DataFrame, *, key: str) -> None:
    if lacks_embeddings(path, "Nearest neighbours and k-NN predictions"):
        return
    knn = data.derived(path, "knn_examples.parquet")
    nbrs = data.derived(path, "neighbors.parquet")
    if knn is None or nbrs is None or knn.empty:
        st.info("Nearest neighbours and k-NN predictions are not computed for this run yet:")
        show_command(f"memdash analyze {shell_path(path)}")
        return
    mine = knn[knn["example_id"] == example_id][
        ["layer", "knn_pred", "dnn_pred", "agrees", "knn_is_true"]
    ]
    st.markdown(
        f"**k-NN against the network** at epoch {int(knn['epoch'].iloc[0])}: what a vote of "
        "the nearest training examples predicts at each layer, and whether the network agrees."
    )
    st.dataframe(mine.rename(columns=label), hide_index=True)
    near = nbrs[nbrs["example_id"] == example_id].sort_values("rank").head(NEIGHBOURS)
    if near.empty:
        return
    st.markdown(
        f"**Nearest training examples** at layer `{near['layer'].iloc[0]}` "
        "(given label, true label in brackets, distance); open one to follow it"
    )
    labels = table.set_index("example_id").loc[near["neighbor_id"]]
    captions = [
        f"#{n.neighbor_id}: {lab} ({true}), {n.distance:.1f}"
        for n, lab, true in zip(
            near.itertuples(index=False), labels["label"], labels["true_label"], strict=True
        )
    ]
    ids = near["neighbor_id"].astype(int).tolist()
    cells = thumbnail_grid(path, ids, captions, per_row=6, width=70)
    open_buttons(cells, ids, key=f"{key}_neighbour")
