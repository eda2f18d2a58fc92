"""Compare runs: two runs of the same examples side by side, example by example (two text
runs of the same sequences: the scores as a text run means them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from memdash.dashboard import charts, data, state
from memdash.dashboard.app_pages.common import (
    chosen_curves,
    score_columns,
    score_help,
    trained_only,
)
from memdash.dashboard.app_pages.detail import example_section
from memdash.dashboard.charts.text import for_text_run
from memdash.dashboard.data import run as run_data
from memdash.dashboard.labels import (
    DIRECTIONS,
    HIGHER,
    INTEGER_COLUMNS,
    direction_text,
    label,
    md_text,
)


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
    text = run_data.is_text(path_a)
    paths = runs.set_index("run")["path"]
    others = [n for n in runs["run"] if n != name_a]  # runs of run A's kind first
    others.sort(key=lambda n: run_data.is_text(Path(paths[n])) != text)
    left, right = st.columns(2)
    left.markdown(f"**Run A**: {md_text(name_a)} (the sidebar's run)")
    name_b = right.selectbox("Run B", others, key=state.RUN_B_KEY, bind="query-params")
    path_b = Path(runs.set_index("run").loc[name_b, "path"])
    ta, tb = state.with_source(data.examples(path_a), data.examples(path_b))
    problem = mismatch(ta, tb, text_a=text, text_b=run_data.is_text(path_b))
    if problem:
        st.warning(f"These runs cannot be compared example by example: {problem}.")
        return
    scores = [s for s in score_columns(ta) if s in score_columns(tb)]
    if not scores:
        st.info("The two runs share no computed score: run `memdash analyze` on both.")
        return
    left, middle, right = st.columns([2, 2, 2])
    score = left.selectbox(
        "Score",
        scores,
        format_func=lambda s: label(s, text=text),
        key="compare_score",
        help=score_help(scores, path_a),
    )
    both = trained_only(paired(ta, tb, score), right, key="compare_untrained")
    end, word = reading(score)
    values = both[[f"{score} A", f"{score} B"]].stack()
    if values.empty:
        st.info("No example has this score in both runs.")
        return
    threshold = _threshold(middle, score, values, end, word, text=text)
    if word != "memorized":
        st.caption(
            f"{label(score, text=text).capitalize()} is not a memorization score: the lists "
            f"below say where it is {word} in one run only, not which run memorized."
        )
    only_a, only_b = charts.one_run_only(both, score, threshold, end)

    def drawn(figure):  # the charts' words and colours as a text run means them
        return for_text_run(figure) if text else figure

    st.plotly_chart(
        drawn(charts.paired_scatter(both, score=score, threshold=threshold, end=end, word=word)),
        width="stretch",
        key="compare_scatter",
    )
    labels = ["text"] if text else ["label", "true_label"]
    shown = ["example_id", "kinds", *labels, f"{score} A", f"{score} B"]
    for side, rows in (("A", only_a), ("B", only_b)):  # full width: no header is cut
        st.markdown(f"**{word.capitalize()} in {side} only: {len(rows)}** (click a row to open it)")
        ids = rows["example_id"].astype(int).tolist()
        key = f"compare_only_{side.lower()}"
        st.dataframe(
            rows[shown],
            hide_index=True,
            width="stretch",
            height=ROW_HEIGHT * (min(max(len(rows), 1), LIST_ROWS) + 1) + 3,
            key=key,
            on_select=lambda key=key, ids=ids: state.open_selected(key, ids),
            selection_mode="single-row",
            column_config=list_config(shown, score, text=text),
        )
    example_section(path_a, ta, key="compare")
    curves = chosen_curves([path_a, path_b])
    st.plotly_chart(drawn(charts.training_curves(curves)), width="stretch", key="compare_curves")


ROW_HEIGHT, LIST_ROWS = 35, 8  # st.dataframe's row height in pixels; rows shown unscrolled


def mismatch(
    a: pd.DataFrame, b: pd.DataFrame, *, text_a: bool = False, text_b: bool = False
) -> str:
    """Why two runs' examples do not line up ("" when they do); `text_a`, `text_b`: whether
    each is a text run (its examples sequences)."""
    if text_a != text_b:
        return "one is a language model's run (sequences), the other a classifier's"
    if len(a) != len(b):
        return f"{len(a):,} examples against {len(b):,}"
    if text_a:
        if not (a["text"].to_numpy() == b["text"].to_numpy()).all():
            return "the same ids hold different sequences (their texts differ)"
    elif not (a["true_label"].to_numpy() == b["true_label"].to_numpy()).all():
        return "the same ids hold different examples (true labels differ)"
    return ""


def paired(a: pd.DataFrame, b: pd.DataFrame, score: str) -> pd.DataFrame:
    """One row per example: id, its kind in both runs (``kinds``: the kind, or "clean in A,
    flipped in B" where they differ), labels (a text run's text) in run A, and the score in
    both runs."""
    kept = [c for c in ("label", "true_label", "text") if c in a.columns]
    out = a[["example_id", "kind", *kept]].copy()
    kind_b = b["kind"].to_numpy()
    same = out["kind"].to_numpy() == kind_b
    out["kinds"] = np.where(same, out["kind"], out["kind"] + " in A, " + kind_b + " in B")
    out[f"{score} A"] = a[score].to_numpy()
    out[f"{score} B"] = b[score].to_numpy()
    return out.dropna(subset=[f"{score} A", f"{score} B"])


def reading(score: str) -> tuple[str, str]:
    """The end of `score` the threshold counts (``HIGHER`` or ``LOWER``, from the label
    dictionary) and the word for an example past it: "memorized" for a memorization score,
    else "high" or "low" (its hard end: not a claim about memorization)."""
    direction = DIRECTIONS[score]
    if direction.memorized:
        return direction.memorized, "memorized"
    return direction.flagged, "high" if direction.flagged == HIGHER else "low"


def _threshold(
    container, score: str, values: pd.Series, end: str, word: str, *, text: bool = False
) -> float:
    """The threshold slider (whole numbers for a whole-number score), starting at the 90th
    percentile of the flagged end."""
    side = "above" if end == HIGHER else "below"
    title = f"{word.capitalize()} when {label(score, text=text)} is {side}"
    start = float(values.quantile(0.9 if end == HIGHER else 0.1))
    lo, hi = float(values.min()), float(values.max())
    if charts.value_is_integer(values):
        top = max(int(hi), int(lo) + 1)
        start = min(max(round(start), int(lo)), top)
        return container.slider(title, int(lo), top, start, step=1, key="compare_threshold")
    return container.slider(title, lo, max(hi, lo + 1e-9), start, key="compare_threshold")


def list_config(columns: list[str], score: str, *, text: bool = False) -> dict:
    """The lists' column settings: the paired score headed by its run alone (the score's
    name, in the help, is the chart's and the selector's), the kinds in both runs as kind."""
    config = {
        column: st.column_config.NumberColumn(label(column), format="%d", width="small")
        for column in columns
        if column in ("example_id", "label", "true_label")
    }
    config["kinds"] = st.column_config.Column(
        "kind", help="its kind in both runs, or in each where they differ"
    )
    if "text" in columns:
        config["text"] = st.column_config.TextColumn(label("text"), width="large")
    for side in ("A", "B"):
        config[f"{score} {side}"] = st.column_config.NumberColumn(
            f"run {side}",
            help=f"{label(score, text=text)} in run {side} ({direction_text(score)})",
            format="%d" if score in INTEGER_COLUMNS else "%.3f",
            width="small",
        )
    return config
