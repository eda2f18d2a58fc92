"""Examples: every example with its scores (filter, sort, export), a gallery of the examples a
score flags (the most memorized first for a memorization score), and the current example in
detail. A text run's sequences are listed with their text and drawn as text, each token
coloured by its loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from memdash.dashboard import data, state
from memdash.dashboard.app_pages.common import (
    choose_run,
    easiness_chart,
    flagged_first,
    offer_analysis,
    open_buttons,
    score_columns,
    score_help,
    table_config,
    trained_only,
)
from memdash.dashboard.app_pages.detail import example_grid, example_section
from memdash.dashboard.data import run as run_data
from memdash.dashboard.labels import label, md_text, ranking_text, value_text

GALLERY_SIZE = 12
TABLE_ROWS = 10_000  # rows sent to the browser; the CSV holds every filtered example
BASE_COLUMNS = ["example_id", "kind", "split", "label", "true_label"]
TEXT_COLUMNS = ["example_id", "kind", "split", "text", "n_tokens", "duplicates", "secret"]


def render() -> None:
    st.title("Examples")
    path = choose_run(data.run_roots())
    if path is None:
        return
    table = state.with_source(data.examples(path))
    group = data.group_of(data.run_roots(), path)
    if group is not None:  # easiness across the seeds of its group, after epoch 1
        table = table.merge(data.easiness(group[1], 1), on="example_id", how="left")
    scores = score_columns(table)
    text = run_data.is_text(path)
    if not scores:
        steps = ["scores"] if text else ["scores", "knn"]  # no k-NN on a language model
        offer_analysis(path, "Per-example scores", steps, "memdash analyze", "examples_compute")
    shown = _filters(table, scores, text=text)
    _table(shown, scores, path, text=text)
    if scores:
        _gallery(shown, scores, path, text=text)
    if group is not None or not text:  # a text run without seeds: nothing to say
        _easiness(shown, group, text=text)
    example_section(path, table, key="examples")


def _filters(table: pd.DataFrame, scores: list[str], *, text: bool) -> pd.DataFrame:
    left, middle, right = st.columns(3)
    kinds = sorted(table["kind"].unique())
    chosen = left.multiselect("Kinds", kinds, default=kinds, key="examples_kinds")
    mask = table["kind"].isin(chosen)
    if text:  # a sequence has no label: find it by its text
        words = middle.text_input(
            "Text contains", key="examples_text", help="case-insensitive; empty: every sequence"
        )
        if words:
            mask &= table["text"].str.contains(words, case=False, regex=False)
    else:
        labels = sorted(table["label"].unique().tolist())
        picked = middle.multiselect("Given labels", labels, default=labels, key="examples_labels")
        mask &= table["label"].isin(picked)
    if scores:
        score = right.selectbox(
            "Filter by score",
            scores,
            format_func=lambda s: label(s, text=text),
            key="examples_filter_score",
        )
        values = table[score].dropna()
        lo, hi = float(values.min()), float(values.max())
        if hi > lo:
            low, high = right.slider(
                f"{label(score, text=text)} range", lo, hi, (lo, hi), key=f"examples_range_{score}"
            )
            mask &= table[score].between(low, high) | (table[score].isna() & (low == lo))
    return table[mask]


def _table(shown: pd.DataFrame, scores: list[str], path: Path, *, text: bool) -> None:
    first = TEXT_COLUMNS + scores if text else BASE_COLUMNS  # a sequence's scores before its
    columns = first + [c for c in shown.columns if c not in first]  # lengths and flags
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
    ids = table_rows["example_id"].astype(int).tolist()
    st.dataframe(
        table_rows[columns],
        hide_index=True,
        on_select=lambda: state.open_selected("examples_table", ids),
        selection_mode="single-row",
        key="examples_table",
        height=320,
        column_config=table_config(columns, text=text),
    )
    st.download_button(
        "Download these examples as CSV",
        lambda: shown[columns].to_csv(index=False),  # made only when clicked
        file_name=f"{path.name}_examples.csv",
        mime="text/csv",
        key="examples_csv",
    )


def _gallery(shown: pd.DataFrame, scores: list[str], path: Path, *, text: bool) -> None:
    st.subheader("The examples a score flags")
    left, right = st.columns([2, 1])
    score = left.selectbox(
        "By score",
        scores,
        format_func=lambda s: label(s, text=text),
        key="examples_gallery_score",
        help=score_help(scores, path),
    )
    ranked = trained_only(shown, right, key="examples_untrained")
    top = flagged_first(ranked, score, GALLERY_SIZE)
    if top.empty:
        st.info("No example in the filter has this score.")
        return
    name = label(score, text=text)
    if text:
        st.caption(f"{ranking_text(score, text=True)}; over each: id, kind, {name}.")
        captions = [
            f"#{row.example_id} {row.kind}, {value_text(score, getattr(row, score))}"
            for row in top.itertuples(index=False)
        ]
    else:
        st.caption(f"{ranking_text(score)}; under each: id, kind, given (true) label, {name}.")
        captions = [
            f"#{row.example_id} {row.kind}: {row.label} ({row.true_label}), "
            f"{value_text(score, getattr(row, score))}"
            for row in top.itertuples(index=False)
        ]
    ids = top["example_id"].astype(int).tolist()
    cells = example_grid(path, ids, captions, per_row=6, width=84)
    open_buttons(cells, ids, key="examples_open")


def _easiness(
    shown: pd.DataFrame, group: tuple[str, tuple[str, ...]] | None, *, text: bool
) -> None:
    """Arpit et al.'s easiness over the seeds of the run's group, at a chosen epoch, as a
    histogram per kind of example."""
    st.subheader("Easiness across seeds")
    if group is None:
        st.caption(
            "Easiness needs several runs that differ only in their seed: `memdash train ... "
            "--seeds 0-2 --out DIR` trains them; each then shows how many of them get each "
            "example right."
        )
        return
    name, paths = group
    last = min(data.epochs_completed(paths))
    epoch = st.slider("After epoch", 0, last, min(1, last), key="examples_easiness_epoch")
    values = data.easiness(paths, epoch)
    rows = shown[["example_id", "kind"]].merge(values, on="example_id")
    if rows.empty:
        st.info("No training example in the filter.")
        return
    rows["seeds"] = np.rint(rows["easiness"] * len(paths)).astype(int)
    rows["of"] = len(paths)
    chart = easiness_chart(rows, group="kind")
    st.plotly_chart(chart, width="stretch", key="examples_easiness_chart")
    share = rows.groupby("kind")["easiness"].agg(
        every=lambda e: (e == 1).mean(), none=lambda e: (e == 0).mean()
    )
    right = "extractable" if text else "right"
    st.caption(
        f"The share of the {len(paths)} runs of seed group **{md_text(name)}** "
        + (
            f"in which each training sequence is extractable after epoch {epoch}. "
            if text
            else f"that classify each training example correctly after epoch {epoch} (its "
            "given label). "
        )
        + "; ".join(
            f"{kind}: {r.every:.0%} {right} in every run, {r.none:.0%} in none"
            for kind, r in share.iterrows()
        )
        + (
            "."
            if text
            else ". Arpit et al. found real data bimodal (mostly all or none); examples with "
            "random labels sit in between, learned by chance by some seeds."
        )
    )
