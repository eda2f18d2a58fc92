"""Examples: every example with its scores (filter, sort, export), a gallery of the examples a
score flags (the most memorized first for a memorization score), and the current example in
detail. A text run's sequences are listed with their text and drawn as text, each token
coloured by its loss.

A large run (`paging.LARGE_RUN` examples or more) is filtered, counted and sorted on the
server by DuckDB over its Parquet files, and the browser gets one page of rows at a time
(`memdash.dashboard.data.paging`); a smaller one's table is held and filtered in pandas."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from memdash.analysis.tables.example_filter import (
    PAGE_SIZE,
    ExampleFacets,
    ExampleFilter,
    facets_of,
    filter_examples,
)
from memdash.dashboard import data, state
from memdash.dashboard.app_pages.common import (
    SCORES,
    choose_run,
    drawn_first,
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
from memdash.dashboard.data import paging
from memdash.dashboard.data import run as run_data
from memdash.dashboard.labels import DIRECTIONS, HIGHER, label, md_text, ranking_text, value_text

GALLERY_SIZE = 12
TABLE_ROWS = 10_000  # rows sent to the browser; the CSV holds every filtered example
BASE_COLUMNS = ["example_id", "kind", "split", "label", "true_label"]
TEXT_COLUMNS = ["example_id", "kind", "split", "text", "n_tokens", "duplicates", "secret"]


def render() -> None:
    st.title("Examples")
    path = choose_run(data.run_roots())
    if path is None:
        return
    group = data.group_of(data.run_roots(), path)
    text = run_data.is_text(path)
    if paging.is_large(path):
        _render_paged(path, group, text=text)
        return
    table = state.with_source(data.examples(path))
    if group is not None:  # easiness across the seeds of its group, after epoch 1
        table = table.merge(data.easiness(group[1], 1), on="example_id", how="left")
    drawn_first(
        lambda: example_section(path, table, key="examples"),
        above=lambda: _lists(path, group, table, text=text),
    )


def _lists(
    path: Path, group: tuple[str, tuple[str, ...]] | None, table: pd.DataFrame, *, text: bool
) -> None:
    """A run's filter, table, gallery and easiness, its whole example table in memory."""
    scores = score_columns(table)
    if not scores:
        _offer_scores(path, text=text)
    shown = filter_examples(table, _filters(facets_of(table, ranged=scores), scores, text=text))
    _table(shown, scores, path, text=text)
    if scores:
        _gallery(
            scores,
            path,
            lambda score, right: flagged_first(
                trained_only(shown, right, key="examples_untrained"), score, GALLERY_SIZE
            ),
            text=text,
        )
    if group is not None or not text:  # a text run without seeds: nothing to say
        _easiness(shown, group, text=text)


def _render_paged(path: Path, group: tuple[str, tuple[str, ...]] | None, *, text: bool) -> None:
    """A large run's page: the same widgets, every answer a DuckDB query of one page."""
    paths = None if group is None else tuple(group[1])
    raw = paging.table_columns(path, group=paths)
    source = "eval"
    if "forgetting_events" in raw:  # trace scores: from the trace the sidebar chose
        traces = {"eval"} | ({"train"} if "forgetting_events_train" in raw else set())
        source = state.source_used(traces)
        st.caption(state.source_note(source))
    # no table in memory: the open example's row is read alone, as the table would show it
    drawn_first(
        lambda: example_section(path, None, key="examples", source=source, group=paths),
        above=lambda: _paged_lists(path, group, raw, source, text=text),
    )


def _paged_lists(
    path: Path,
    group: tuple[str, tuple[str, ...]] | None,
    raw: list[str],
    source: str,
    *,
    text: bool,
) -> None:
    """A large run's filter, table, gallery and easiness, each a query of one page."""
    paths = None if group is None else tuple(group[1])
    facets = paging.facets(path, source, paths, tuple(c for c in SCORES if c in raw))
    scores = [c for c in SCORES if c in facets.ranges]
    if not scores:
        _offer_scores(path, text=text)
    where = _filters(facets, scores, text=text)
    _paged_table(path, where, facets, scores, source, paths, text=text)
    if scores:

        def top(score: str, right) -> pd.DataFrame:
            kept = trained_only(
                pd.DataFrame({"kind": facets.kinds}), right, key="examples_untrained"
            )
            kinds = tuple(k for k in kept["kind"] if where.kinds is None or k in where.kinds)
            ranked = replace(where, kinds=kinds, defined=(*where.defined, score))
            flagged = DIRECTIONS[score.removesuffix("_train")].flagged == HIGHER
            return paging.top(
                path,
                ranked,
                source=source,
                group=paths,
                sort=score,
                descending=flagged,
                limit=GALLERY_SIZE,
            )

        _gallery(scores, path, top, text=text)
    if group is not None or not text:
        shown = pd.DataFrame(columns=["example_id", "kind"])
        if group is not None:
            shown = paging.rows(path, where, ("example_id", "kind"), source=source, group=paths)
        _easiness(shown, group, text=text)


def _offer_scores(path: Path, *, text: bool) -> None:
    steps = ["scores"] if text else ["scores", "knn"]  # no k-NN on a language model
    offer_analysis(path, "Per-example scores", steps, "memdash analyze", "examples_compute")


def _filters(facets: ExampleFacets, scores: list[str], *, text: bool) -> ExampleFilter:
    """The filter's widgets, offering the choices of the whole table; the filter chosen."""
    left, middle, right = st.columns(3)
    kinds = list(facets.kinds)
    chosen = left.multiselect("Kinds", kinds, default=kinds, key="examples_kinds")
    where = ExampleFilter(kinds=_narrowed(chosen, kinds))
    if text:  # a sequence has no label: find it by its text
        words = middle.text_input(
            "Text contains", key="examples_text", help="case-insensitive; empty: every sequence"
        )
        where = replace(where, text=words)
    else:
        labels = list(facets.labels)
        picked = middle.multiselect("Given labels", labels, default=labels, key="examples_labels")
        where = replace(where, labels=_narrowed(picked, labels))
    if scores:
        score = right.selectbox(
            "Filter by score",
            scores,
            format_func=lambda s: label(s, text=text),
            key="examples_filter_score",
        )
        lo, hi = facets.ranges[score]
        if hi > lo:
            low, high = right.slider(
                f"{label(score, text=text)} range", lo, hi, (lo, hi), key=f"examples_range_{score}"
            )
            where = replace(where, score=score, low=low, high=high, keep_missing=low == lo)
    return where


def _narrowed(chosen: list, offered: list) -> tuple | None:
    """The values chosen, or None when every value offered is (no condition to test)."""
    return None if set(chosen) == set(offered) else tuple(chosen)


def _paged_table(
    path: Path,
    where: ExampleFilter,
    facets: ExampleFacets,
    scores: list[str],
    source: str,
    group: tuple[str, ...] | None,
    *,
    text: bool,
) -> None:
    """One page of the rows passing the filter, sorted on the server, with a page control."""
    first = TEXT_COLUMNS + scores if text else BASE_COLUMNS
    columns = first + [c for c in facets.columns if c not in first]
    by, order, pager = st.columns([2, 1, 1])
    sort = by.selectbox(
        "Sort by", columns, format_func=lambda c: label(c, text=text), key="examples_sort"
    )
    descending = order.toggle("Descending", key="examples_descending")
    number = int(st.session_state.get("examples_page", 1))

    def read(number: int) -> tuple[pd.DataFrame, int]:
        offset = (number - 1) * PAGE_SIZE
        return paging.page(
            path,
            where,
            source=source,
            group=group,
            sort=sort,
            descending=descending,
            offset=offset,
        )

    rows, total = read(number)
    pages = max(1, -(-total // PAGE_SIZE))
    if number > pages:  # a narrower filter: its last page
        number = st.session_state["examples_page"] = pages
        rows, total = read(number)
    pager.number_input("Page", min_value=1, max_value=pages, step=1, key="examples_page")
    start = (number - 1) * PAGE_SIZE
    st.caption(
        (
            f"Rows {start + 1:,}-{start + len(rows):,} of {total:,} examples that match, "
            f"by {label(sort, text=text)} ({'descending' if descending else 'ascending'}, "
            "missing values last). The server filters and sorts; the browser gets one page "
            f"of {PAGE_SIZE}. Click a row to open it below."
        )
        if total
        else "No example matches the filter."
    )
    _rows_and_download(
        rows[columns],
        path,
        text=text,
        what=f"the {total:,} examples",
        csv=lambda: paging.csv(path, where, columns, source=source, group=group),
    )


def _rows_and_download(
    rows: pd.DataFrame, path: Path, *, text: bool, what: str, csv: Callable[[], str]
) -> None:
    """The table's rows (a click opens the example below) and a CSV download of `what`,
    made by `csv` only when clicked."""
    ids = rows["example_id"].astype(int).tolist()
    st.dataframe(
        rows,
        hide_index=True,
        on_select=lambda: state.open_selected("examples_table", ids),
        selection_mode="single-row",
        key="examples_table",
        height=320,
        column_config=table_config(list(rows.columns), text=text),
    )
    st.download_button(
        f"Download {what} as CSV",
        csv,
        file_name=f"{path.name}_examples.csv",
        mime="text/csv",
        key="examples_csv",
    )


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
    _rows_and_download(
        shown.head(TABLE_ROWS)[columns],
        path,
        text=text,
        what="these examples",
        csv=lambda: shown[columns].to_csv(index=False),
    )


def _gallery(
    scores: list[str],
    path: Path,
    top_of: Callable[[str, object], pd.DataFrame],
    *,
    text: bool,
) -> None:
    """The examples at the flagged end of a chosen score, first `GALLERY_SIZE` of them by
    `top_of(score, container)` (which draws its toggle in the container)."""
    st.subheader("The examples a score flags")
    left, right = st.columns([2, 1])
    score = left.selectbox(
        "By score",
        scores,
        format_func=lambda s: label(s, text=text),
        key="examples_gallery_score",
        help=score_help(scores, path),
    )
    top = top_of(score, right)
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
