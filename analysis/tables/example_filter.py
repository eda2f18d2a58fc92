"""What the Examples page asks of the example table: a filter (`ExampleFilter`), the choices
its widgets offer (`ExampleFacets`), and one sorted page of the rows that pass.

These are the pandas forms, on a table in memory (`examples.example_table`); `example_query`
answers the same questions with DuckDB over the run's Parquet files, for a run too large to
hold (the Examples page above `memdash.dashboard.data.paging.LARGE_RUN` examples). Both
order a page by the chosen column, missing values (NaN) last, then by example_id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

PAGE_SIZE = 100  # rows a page holds


@dataclass(frozen=True)
class ExampleFilter:
    """The rows an Examples page keeps: all the conditions given hold."""

    kinds: tuple[str, ...] | None = None  # these kinds of example (None: every kind)
    labels: tuple[int, ...] | None = None  # these given labels (None: every label)
    text: str = ""  # a text run: sequences containing this, case-insensitive ("": every one)
    score: str | None = None  # a column whose value lies in [low, high] (None: no range)
    low: float = -np.inf
    high: float = np.inf
    keep_missing: bool = False  # with `score`: rows without a value (NaN) pass too
    defined: tuple[str, ...] = ()  # columns that must have a value (not NaN)

    def __post_init__(self) -> None:
        if self.score is not None and not self.low <= self.high:
            raise ValueError(f"range of {self.score!r}: low {self.low} above high {self.high}")

    def columns(self) -> list[str]:
        """The columns the filter reads."""
        used = ["kind"] if self.kinds is not None else []
        used += ["label"] if self.labels is not None else []
        used += ["text"] if self.text else []
        used += [self.score] if self.score is not None else []
        return list(dict.fromkeys([*used, *self.defined]))


@dataclass(frozen=True)
class ExampleFacets:
    """The whole table's choices for the filter's widgets."""

    n_examples: int  # rows of the table
    columns: tuple[str, ...]  # its columns, in order
    kinds: tuple[str, ...]  # its kinds, sorted
    labels: tuple[int, ...]  # its given labels, sorted (none on a text run)
    # column -> (min, max) of its values, for the columns asked that have one
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


def check_columns(names: Iterable[str], columns: Iterable[str], what: str) -> None:
    """A ValueError naming the first of `names` that is not one of `columns`, listing them."""
    have = list(columns)
    for name in names:
        if name not in have:
            raise ValueError(f"{what}: no column {name!r}; valid: {', '.join(have)}")


def facets_of(table: pd.DataFrame, *, ranged: Iterable[str] = ()) -> ExampleFacets:
    """The facets of an example table in memory; `ranged`: the columns to give ranges of
    (those the table lacks are left out)."""
    ranges = {}
    for column in ranged:
        values = table[column].dropna() if column in table.columns else pd.Series([])
        if len(values):
            ranges[column] = (float(values.min()), float(values.max()))
    labels = sorted(table["label"].unique().tolist()) if "label" in table.columns else []
    return ExampleFacets(
        n_examples=len(table),
        columns=tuple(table.columns),
        kinds=tuple(sorted(table["kind"].unique())),
        labels=tuple(int(v) for v in labels),
        ranges=ranges,
    )


def filter_examples(table: pd.DataFrame, where: ExampleFilter) -> pd.DataFrame:
    """The rows of `table` that pass `where`, in their order."""
    check_columns(where.columns(), table.columns, "filter")
    mask = pd.Series(True, index=table.index)
    if where.kinds is not None:
        mask &= table["kind"].isin(where.kinds)
    if where.labels is not None:
        mask &= table["label"].isin(where.labels)
    if where.text:
        mask &= table["text"].str.contains(where.text, case=False, regex=False)
    if where.score is not None:
        values = table[where.score]
        mask &= values.between(where.low, where.high) | (values.isna() & where.keep_missing)
    for column in where.defined:
        mask &= table[column].notna()
    return table[mask]


def sort_examples(table: pd.DataFrame, by: str = "example_id", *, descending: bool = False):
    """`table` ordered by column `by` (NaN last), ties by example_id ascending."""
    check_columns([by], table.columns, "sort")
    keys = list(dict.fromkeys([by, "example_id"]))
    ascending = [not descending] + [True] * (len(keys) - 1)
    return table.sort_values(keys, ascending=ascending, na_position="last", kind="stable")


def page_of(
    table: pd.DataFrame,
    where: ExampleFilter,
    *,
    sort: str = "example_id",
    descending: bool = False,
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> tuple[pd.DataFrame, int]:
    """Rows ``offset .. offset + limit - 1`` of the rows passing `where`, sorted by `sort`
    (`sort_examples`), with the number of rows passing; the pandas form of
    `example_query.example_page`."""
    check_page(offset, limit)
    shown = filter_examples(table, where)
    ordered = sort_examples(shown, sort, descending=descending)
    return ordered.iloc[offset : offset + limit].reset_index(drop=True), len(shown)


def check_page(offset: int, limit: int) -> None:
    """A ValueError unless `offset` >= 0 and `limit` >= 1."""
    if offset < 0 or limit < 1:
        raise ValueError(f"a page needs offset >= 0 and limit >= 1, got {offset} and {limit}")
