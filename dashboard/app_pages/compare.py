"""Compare runs: two runs of the same examples side by side, example by example."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data, state
from memdash.dashboard.app_pages.common import SCORES, chosen_curves, score_columns


def render() -> None:
    st.title("Compare runs")
    roots = data.run_roots()
    summaries = data.run_summaries(roots)
    healthy = summaries.index[summaries["status"] != "error"].tolist()
    if len(healthy) < 2:
        st.info("Comparing needs two readable runs under " + ", ".join(roots) + ".")
        return
    label = lambda i: f"{summaries.loc[i, 'run']} ({summaries.loc[i, 'dataset']})"  # noqa: E731
    left, right = st.columns(2)
    a = left.selectbox("Run A", healthy, index=0, format_func=label, key="compare_a")
    b = right.selectbox("Run B", healthy, index=1, format_func=label, key="compare_b")
    path_a, path_b = data.run_path(roots, a), data.run_path(roots, b)
    ta, tb = state.with_source(data.examples(path_a), data.examples(path_b))
    problem = mismatch(ta, tb)
    if problem:
        st.warning(f"These runs cannot be compared example by example: {problem}.")
        return
    scores = [s for s in score_columns(ta) if s in score_columns(tb)]
    if not scores:
        st.info("The two runs share no computed score: run `memdash analyze` on both.")
        return
    score = st.selectbox("Score", scores, key="compare_score", help=SCORES[scores[0]][1])
    both = paired(ta, tb, score)
    st.plotly_chart(
        charts.scatter(
            both,
            x=f"{score} A",
            y=f"{score} B",
            color="kind",
            title=f"{score}: run A against run B, one point per example",
        ),
        width="stretch",
        key="compare_scatter",
    )
    higher = SCORES[score][0]
    values = both[[f"{score} A", f"{score} B"]].stack()
    default = float(values.quantile(0.9 if higher else 0.1))
    threshold = st.slider(
        f"Memorized when {score} is {'above' if higher else 'below'}",
        float(values.min()),
        float(values.max()),
        default,
        key="compare_threshold",
    )
    only_a, only_b = memorized_in_one(both, score, threshold, higher)
    c1, c2 = st.columns(2)
    c1.markdown(f"**Memorized in A only: {len(only_a)}**")
    c1.dataframe(only_a, hide_index=True, key="compare_only_a")
    c2.markdown(f"**Memorized in B only: {len(only_b)}**")
    c2.dataframe(only_b, hide_index=True, key="compare_only_b")
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
    """One row per example: id, kind and label in run A, and the score in both runs."""
    out = a[["example_id", "kind", "label"]].copy()
    out[f"{score} A"] = a[score].to_numpy()
    out[f"{score} B"] = b[score].to_numpy()
    return out.dropna()


def memorized_in_one(
    both: pd.DataFrame, score: str, threshold: float, higher: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Examples past the threshold in run A but not in B, and the other way round."""
    in_a = both[f"{score} A"] > threshold if higher else both[f"{score} A"] < threshold
    in_b = both[f"{score} B"] > threshold if higher else both[f"{score} B"] < threshold
    return both[in_a & ~in_b], both[in_b & ~in_a]
