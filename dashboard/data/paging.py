"""A large run's reads: above `LARGE_RUN` examples the Examples page queries its table with
DuckDB over the run's Parquet files a page at a time (`memdash.analysis.tables.example_query`)
and a trajectory is one example's rows read by predicate pushdown
(`memdash.analysis.store.trace.example_trace`), as is the open example's row of the table
(`memdash.dashboard.data.one_example`); below it the pages hold the example table in memory
(`run.examples`) and every trajectory as (E, N) grids, as before.

Each answer is cached on the run's stamps; the page's rows are small (a page, a gallery),
the whole table never reaches the server's memory. The extra columns of a seed group
(``easiness`` after epoch 1) are joined by example_id where the run belongs to one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from memdash.analysis.store import Run
from memdash.analysis.store.trace import check_trace_source, example_trace
from memdash.analysis.tables import example_query
from memdash.analysis.tables.example_filter import PAGE_SIZE, ExampleFacets, ExampleFilter
from memdash.dashboard.data.stamps import derived_stamp, run_stamp
from memdash.dashboard.data.studies import easiness

LARGE_RUN = 100_000  # examples: from here on the Examples page pages through DuckDB
EASINESS_EPOCH = 1  # the seed group's easiness the table shows (Arpit et al.: after epoch 1)

Group = tuple[str, ...] | None  # the paths of the run's seed group, or None


def is_large(path: Path, *, threshold: int | None = None) -> bool:
    """Whether the run has at least `threshold` examples (`LARGE_RUN` when None)."""
    return n_examples(path) >= (LARGE_RUN if threshold is None else threshold)


def n_examples(path: Path) -> int:
    """The run's examples (rows of examples.parquet, from its footer)."""
    return _n_examples(str(path), run_stamp(path))


@st.cache_data(show_spinner=False, max_entries=256)
def _n_examples(path: str, stamp: float) -> int:
    return Run.open(path).n_examples()


def table_columns(path: Path, source: str = "eval", group: Group = None) -> list[str]:
    """The example table's columns (with `source`'s trace scores under the plain names)."""
    return _columns(str(path), source, group, *_stamps(path))


@st.cache_data(show_spinner=False, max_entries=64)
def _columns(path: str, source: str, group: Group, stamp: float, derived: float) -> list[str]:
    return example_query.example_columns(Run.open(path), source=source, extra=_extra(group))


def facets(path: Path, source: str, group: Group, ranged: tuple[str, ...]) -> ExampleFacets:
    """The whole table's kinds, labels and the ranges of the `ranged` columns."""
    return _facets(str(path), source, group, tuple(ranged), *_stamps(path))


@st.cache_data(show_spinner="reading the examples…", max_entries=64)
def _facets(
    path: str, source: str, group: Group, ranged: tuple[str, ...], stamp: float, derived: float
) -> ExampleFacets:
    run = Run.open(path)
    return example_query.example_facets(run, source=source, ranged=ranged, extra=_extra(group))


def page(
    path: Path,
    where: ExampleFilter,
    *,
    source: str = "eval",
    group: Group = None,
    sort: str = "example_id",
    descending: bool = False,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> tuple[pd.DataFrame, int]:
    """One page of the rows passing `where` and how many pass (`example_query.example_page`)."""
    key = (where, source, group, sort, descending, offset, limit)
    return _query(str(path), key, True, *_stamps(path))


def top(
    path: Path,
    where: ExampleFilter,
    *,
    source: str = "eval",
    group: Group = None,
    sort: str,
    descending: bool,
    limit: int,
) -> pd.DataFrame:
    """The first `limit` rows passing `where` by `sort`, uncounted (a gallery)."""
    key = (where, source, group, sort, descending, 0, limit)
    return _query(str(path), key, False, *_stamps(path))[0]


@st.cache_data(show_spinner="querying the examples…", max_entries=256)
def _query(
    path: str, key: tuple, counted: bool, stamp: float, derived: float
) -> tuple[pd.DataFrame, int | None]:
    """`page`'s rows and count (`example_query.example_page`), or `top`'s rows alone
    (`example_query.example_top`, count None)."""
    where, source, group, sort, descending, offset, limit = key
    options = {"source": source, "sort": sort, "descending": descending, "offset": offset}
    options |= {"limit": limit, "extra": _extra(group)}
    if counted:
        return example_query.example_page(Run.open(path), where, **options)
    return example_query.example_top(Run.open(path), where, **options), None


def rows(
    path: Path,
    where: ExampleFilter,
    columns: tuple[str, ...],
    *,
    source: str = "eval",
    group: Group = None,
) -> pd.DataFrame:
    """`columns` of every row passing `where`, by example_id (keep them few: one row per
    example passing)."""
    return _rows(str(path), where, tuple(columns), source, group, *_stamps(path))


@st.cache_data(show_spinner="querying the examples…", max_entries=16)
def _rows(
    path: str,
    where: ExampleFilter,
    columns: tuple[str, ...],
    source: str,
    group: Group,
    stamp: float,
    derived: float,
) -> pd.DataFrame:
    return example_query.example_rows(
        Run.open(path), where, columns=list(columns), source=source, extra=_extra(group)
    )


def csv(
    path: Path,
    where: ExampleFilter,
    columns: list[str],
    *,
    source: str = "eval",
    group: Group = None,
) -> str:
    """`columns` of every row passing `where` as CSV (made when asked for, not cached)."""
    run = Run.open(path)
    frame = example_query.example_rows(
        run, where, columns=columns, source=source, extra=_extra(group)
    )
    return frame.to_csv(index=False)


def trajectory(path: Path, example_id: int, source: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """One example's trace from `source` read by predicate pushdown: ``epoch`` (0 included)
    and `columns` as floats, NaN where it is absent (`run.trajectory`'s frame)."""
    return _trajectory(str(path), int(example_id), source, tuple(columns), run_stamp(path))


@st.cache_data(show_spinner=False, max_entries=1024)
def _trajectory(
    path: str, example_id: int, source: str, columns: tuple[str, ...], stamp: float
) -> pd.DataFrame:
    check_trace_source(source)
    run = Run.open(path)
    parts = run.trace_parts(source)
    epochs, values, _ = example_trace(run.path, parts, example_id, columns, first_epoch=0)
    return pd.DataFrame({"epoch": epochs} | values)


def _stamps(path: Path) -> tuple[float, float]:
    return run_stamp(path), derived_stamp(path)


def _extra(group: Group) -> pd.DataFrame | None:
    """The seed group's easiness of each training example (None without a group)."""
    return None if group is None else easiness(tuple(group), EASINESS_EPOCH)
