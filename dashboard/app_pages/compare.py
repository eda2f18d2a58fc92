"""Compare runs: two runs of the same examples side by side, example by example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data, state
from memdash.dashboard.app_pages.common import (
    SCORES,
    chosen_curves,
    score_columns,
    table_config,
    trained_only,
)
from memdash.dashboard.app_pages.detail import example_section
from memdash.dashboard.labels import label, md_text


def render() -> None:
    st.title("Compare runs")
    roots = data.run_roots()
    runs = state.readable_runs(data.run_summaries(roots))
    if len(runs) < 2:
        st.info("Comparing needs two readable runs under " + ", ".join(roots) + ".")
        return
    summaries = data.run_summaries(roots)
    path_a = state.current_run(summaries)
    name_a = state.run_name(summaries, path_a)
    others = [n for n in runs["run"] if n != name_a]
    left, right = st.columns(2)
    left.markdown(f"**Run A**: {md_text(name_a)} (the sidebar's run)")
    name_b = right.selectbox("Run B", others, key=state.RUN_B_KEY, bind="query-params")
    path_b = Path(runs.set_index("run").loc[name_b, "path"])
    ta, tb = state.with_source(data.examples(path_a), data.examples(path_b))
    problem = mismatch(ta, tb)
    if problem:
        st.warning(f"These runs cannot be compared example by example: {problem}.")
        return
    scores = [s for s in score_columns(ta) if s in score_columns(tb)]
    if not scores:
        st.info("The two runs share no computed score: run `memdash analyze` on both.")
        return
    left, middle, right = st.columns([2, 2, 1])
    score = left.selectbox(
        "Score", scores, format_func=label, key="compare_score", help=SCORES[scores[0]][1]
    )
    both = trained_only(paired(ta, tb, score), right, key="compare_untrained")
    higher = SCORES[score][0]
    values = both[[f"{score} A", f"{score} B"]].stack()
    if values.empty:
        st.info("No example has this score in both runs.")
        return
    lo, hi = float(values.min()), float(values.max())
    threshold = middle.slider(
        f"Memorized when {label(score)} is {'above' if higher else 'below'}",
        lo,
        max(hi, lo + 1e-9),
        float(values.quantile(0.9 if higher else 0.1)),
        key="compare_threshold",
    )
    only_a, only_b = memorized_in_one(both, score, threshold, higher)
    st.plotly_chart(
        charts.paired_scatter(
            both, score=score, threshold=threshold, flagged=pd.concat([only_a, only_b])
        ),
        width="stretch",
        key="compare_scatter",
    )
    c1, c2 = st.columns(2)
    for column, side, rows in ((c1, "A", only_a), (c2, "B", only_b)):
        column.markdown(f"**Memorized in {side} only: {len(rows)}** (click a row to open it)")
        ids = rows["example_id"].astype(int).tolist()
        key = f"compare_only_{side.lower()}"
        column.dataframe(
            rows,
            hide_index=True,
            key=key,
            on_select=lambda key=key, ids=ids: state.open_selected(key, ids),
            selection_mode="single-row",
            column_config=table_config(list(rows.columns)),
        )
    example_section(path_a, ta, key="compare")
    curves = chosen_curves([path_a, path_b])
    st.plotly_chart(charts.training_curves(curves), width="stretch", key="compare_curves")


def mismatch(a: pd.DataFrame, b: pd.DataFrame) -> str:
    """Why two runs' examples do not line up ("" when they do)."""
    if len(a) != len(b):
        return f"{len(a):,} examples against {len(b):,}"
    if not (a["true_label"].to_numpy() == b["true_label"].to_numpy()).all():
        return "the same ids hold different examples (true labels differ)"
    return ""


def paired(a: pd.DataFrame, b: pd.DataFrame, score: str) -> pd.DataFrame:
    """One row per example: id, its kind in both runs (``kinds``: the kind, or "clean in A,
    flipped in B" where they differ), labels in run A, and the score in both runs."""
    out = a[["example_id", "kind", "label", "true_label"]].copy()
    kind_b = b["kind"].to_numpy()
    same = out["kind"].to_numpy() == kind_b
    out["kinds"] = np.where(same, out["kind"], out["kind"] + " in A, " + kind_b + " in B")
    out[f"{score} A"] = a[score].to_numpy()
    out[f"{score} B"] = b[score].to_numpy()
    return out.dropna(subset=[f"{score} A", f"{score} B"])


def memorized_in_one(
    both: pd.DataFrame, score: str, threshold: float, higher: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Examples past the threshold in run A but not in B, and the other way round."""
    in_a = both[f"{score} A"] > threshold if higher else both[f"{score} A"] < threshold
    in_b = both[f"{score} B"] > threshold if higher else both[f"{score} B"] < threshold
    return both[in_a & ~in_b], both[in_b & ~in_a]
