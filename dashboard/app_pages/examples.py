"""Examples: every example with its scores (filter, sort, export), the most memorized ones as a
gallery, and one example in detail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from memdash.analysis.sources import SOURCES
from memdash.dashboard import charts, data, state
from memdash.dashboard.app_pages.common import (
    SCORES,
    choose_run,
    most_memorized,
    offer_analysis,
    score_columns,
    thumbnail_grid,
)

GALLERY_SIZE = 12
TABLE_ROWS = 10_000  # rows sent to the browser; the CSV holds every filtered example
BASE_COLUMNS = ["example_id", "kind", "split", "label", "true_label"]


def render() -> None:
    st.title("Examples")
    path = choose_run(data.run_roots(), key="examples_run")
    if path is None:
        return
    table = state.with_source(data.examples(path))
    scores = score_columns(table)
    if not scores:
        offer_analysis(
            path, "Per-example scores", ["scores", "knn"], "memdash analyze", "examples_compute"
        )
    shown = _filters(table, scores)
    _table(shown, scores, path)
    if scores:
        _gallery(shown, scores, path)
    _detail(table, scores, path)


def _filters(table: pd.DataFrame, scores: list[str]) -> pd.DataFrame:
    left, middle, right = st.columns(3)
    kinds = sorted(table["kind"].unique())
    chosen = left.multiselect("Kinds", kinds, default=kinds, key="examples_kinds")
    labels = sorted(table["label"].unique().tolist())
    picked = middle.multiselect("Given labels", labels, default=labels, key="examples_labels")
    mask = table["kind"].isin(chosen) & table["label"].isin(picked)
    if scores:
        score = right.selectbox("Filter by score", scores, key="examples_filter_score")
        values = table[score].dropna()
        lo, hi = float(values.min()), float(values.max())
        if hi > lo:
            low, high = right.slider(
                f"{score} range", lo, hi, (lo, hi), key=f"examples_range_{score}"
            )
            mask &= table[score].between(low, high) | (table[score].isna() & (low == lo))
    return table[mask]


def _table(shown: pd.DataFrame, scores: list[str], path: Path) -> None:
    columns = BASE_COLUMNS + [c for c in shown.columns if c not in BASE_COLUMNS]
    st.caption(
        f"{len(shown):,} examples match. Click a row to open it below; "
        "sort by clicking a column header."
        + (
            f" The table holds the first {TABLE_ROWS:,} (by id): narrow the filter, or "
            "download the CSV for all of them."
            if len(shown) > TABLE_ROWS
            else ""
        )
    )
    table_rows = shown.head(TABLE_ROWS)
    event = st.dataframe(
        table_rows[columns],
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="examples_table",
        height=320,
        column_config={
            s: st.column_config.NumberColumn(s, help=SCORES[s][1], format="%.3f") for s in scores
        },
    )
    rows = list(event.selection.rows) if event is not None else []
    ids = selected_ids(rows, table_rows)
    if ids and st.session_state.get("examples_last_row") != ids[0]:
        st.session_state["examples_last_row"] = ids[0]
        st.session_state["examples_id"] = ids[0]
    st.download_button(
        "Download these examples as CSV",
        lambda: shown[columns].to_csv(index=False),  # made only when clicked
        file_name=f"{path.name}_examples.csv",
        mime="text/csv",
        key="examples_csv",
    )


def selected_ids(rows: list[int], shown: pd.DataFrame) -> list[int]:
    """The example ids of selected row positions of the table as shown."""
    return [int(shown["example_id"].iloc[r]) for r in rows if 0 <= r < len(shown)]


def _open(example_id: int) -> None:
    st.session_state["examples_id"] = example_id


def _gallery(shown: pd.DataFrame, scores: list[str], path: Path) -> None:
    st.subheader("Most memorized")
    score = st.selectbox(
        "By score",
        scores,
        key="examples_gallery_score",
        help="; ".join(f"{s}: {SCORES[s][1]}" for s in scores),
    )
    top = most_memorized(shown, score, GALLERY_SIZE)
    if top.empty:
        st.info("No example in the filter has this score.")
        return
    has_ci = "mem_lo" in top.columns
    captions = [
        f"#{row.example_id} {row.kind}: {row.label} (true {row.true_label}) "
        f"{score} {getattr(row, score):.2f}"
        + (f" [{row.mem_lo:.2f}, {row.mem_hi:.2f}]" if score == "mem_score" and has_ci else "")
        for row in top.itertuples(index=False)
    ]
    ids = top["example_id"].tolist()
    cells = thumbnail_grid(path, ids, captions, per_row=6, width=84)
    for cell, row in zip(cells, top.itertuples(index=False), strict=True):
        cell.button(
            "open",
            key=f"examples_open_{row.example_id}",
            on_click=_open,
            args=(int(row.example_id),),
        )


def mem_interval(row: pd.Series) -> dict[str, str]:
    """The mem_score's 95% interval (Newcombe) as a fact, where the run has one."""
    if pd.isna(row.get("mem_lo")):
        return {}
    return {"mem_score 95% interval": f"[{row['mem_lo']:.2f}, {row['mem_hi']:.2f}]"}


def _detail(table: pd.DataFrame, scores: list[str], path: Path) -> None:
    st.subheader("One example")
    st.session_state.setdefault("examples_id", int(table["example_id"].iloc[0]))
    example_id = int(
        st.number_input(
            "Example id", min_value=0, max_value=len(table) - 1, step=1, key="examples_id"
        )
    )
    show_example(path, table, scores, example_id, key="examples")


def show_example(
    path: Path, table: pd.DataFrame, scores: list[str], example_id: int, *, key: str
) -> None:
    """One example: its input, labels and scores, trajectory, k-NN and nearest neighbours."""
    row = table.iloc[example_id]
    inputs = data.inputs(path)
    left, right = st.columns([1, 2])
    left.plotly_chart(
        charts.example_input(np.asarray(inputs[example_id]), title=f"example {example_id}"),
        width="stretch",
        key=f"{key}_input",
    )
    facts = {
        "kind": row["kind"],
        "given label": int(row["label"]),
        "true label": int(row["true_label"]),
        **{s: round(float(row[s]), 3) for s in scores if pd.notna(row[s])},
        **mem_interval(row),
    }
    left.dataframe(pd.Series(facts, name="value").astype(str), width="stretch")
    source = state.source_used(data.trace_sources(path))
    traj = data.trajectory(path, example_id, source)
    if traj["correct"].notna().any():
        right.caption(f"Trajectory from the {SOURCES[source]}.")
        right.plotly_chart(charts.trajectory(traj.dropna()), width="stretch", key=f"{key}_traj")
    else:
        right.info(f"This run has no {SOURCES[source]} trace for this example.")
    _neighbours(path, example_id, table)


def _neighbours(path: Path, example_id: int, table: pd.DataFrame) -> None:
    knn = data.derived(path, "knn_examples.parquet")
    nbrs = data.derived(path, "neighbors.parquet")
    if knn is None or nbrs is None or knn.empty:
        st.info(f"Nearest neighbours and k-NN predictions: run `memdash analyze {path}`.")
        return
    mine = knn[knn["example_id"] == example_id][
        ["layer", "knn_pred", "dnn_pred", "agrees", "knn_is_true"]
    ]
    st.markdown(
        f"**k-NN against the network** at epoch {int(knn['epoch'].iloc[0])}: what a vote of "
        "the nearest training examples predicts at each layer, and whether the network agrees."
    )
    st.dataframe(mine, hide_index=True)
    near = nbrs[nbrs["example_id"] == example_id].sort_values("rank").head(12)
    st.markdown(
        f"**Nearest training examples** at layer `{near['layer'].iloc[0]}` "
        "(given label, true label in brackets)"
    )
    labels = table.set_index("example_id").loc[near["neighbor_id"]]
    captions = [
        f"#{n.neighbor_id}: {lab} ({true}), {n.distance:.1f}"
        for n, lab, true in zip(
            near.itertuples(index=False), labels["label"], labels["true_label"], strict=True
        )
    ]
    thumbnail_grid(path, near["neighbor_id"].tolist(), captions, per_row=6, width=70)
