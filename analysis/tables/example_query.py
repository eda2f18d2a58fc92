"""The example table of a run too large to hold, queried where it lies: DuckDB over
examples.parquet and the derived tables (`example_sql.ExampleTable`), filtered, counted,
sorted and cut into pages on the server, so that a page of a million examples reads without
the table ever sitting in memory. The answers equal `example_filter`'s on the table in
memory (`examples.example_table`): NaN is outside every range and sorts last.

Each call opens an in-memory connection locked down as `memdash sql`'s (files read only in
the run's folder, nothing written, the settings locked), answers and closes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import pandas as pd
import pyarrow as pa

from memdash.analysis.store import Run, RunFormatError
from memdash.analysis.tables.example_filter import (
    PAGE_SIZE,
    ExampleFacets,
    ExampleFilter,
    check_columns,
    check_page,
)
from memdash.analysis.tables.example_sql import EXTRA, ExampleTable, quoted
from memdash.analysis.tables.sql import _CONFIG, _literal, one_line

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection


def example_columns(
    run: Run, *, source: str = "eval", extra: pd.DataFrame | None = None
) -> list[str]:
    """The example table's columns, in `examples.example_table`'s order (with source
    ``train``, the ``_train`` trace scores under the plain names, in their place)."""
    return list(ExampleTable(run, source, extra).columns)


def example_facets(
    run: Run,
    *,
    source: str = "eval",
    ranged: tuple[str, ...] = (),
    extra: pd.DataFrame | None = None,
) -> ExampleFacets:
    """The whole table's facets (`example_filter.facets_of`): its kinds and labels from
    examples.parquet, each range from the file that holds the column."""
    with _Query(run, source, extra) as query:
        columns = query.table.columns
        wanted = [c for c in ranged if c in columns]
        label = "list(DISTINCT label ORDER BY label)" if "label" in columns else "[]"
        used = query.table.sql(["kind", *(["label"] if "label" in columns else [])])
        kinds = query.run(
            f"SELECT count(*) AS n, list(DISTINCT kind ORDER BY kind) AS kinds, {label} AS labels "
            f"FROM ({used})"
        ).to_pylist()[0]
        bounds = query.run(query.table.ranges(wanted)).to_pylist()[0]
    ranges = {
        c: (bounds[f"lo_{j}"], bounds[f"hi_{j}"])
        for j, c in enumerate(wanted)
        if bounds[f"lo_{j}"] is not None
    }
    return ExampleFacets(
        n_examples=int(kinds["n"]),
        columns=tuple(columns),
        kinds=tuple(kinds["kinds"]),
        labels=tuple(int(v) for v in kinds["labels"]),
        ranges=ranges,
    )


def example_page(
    run: Run,
    where: ExampleFilter,
    *,
    source: str = "eval",
    sort: str = "example_id",
    descending: bool = False,
    offset: int = 0,
    limit: int = PAGE_SIZE,
    extra: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, int]:
    """Rows ``offset .. offset + limit - 1`` of the rows passing `where`, ordered by `sort`
    (NULL last, ties by example_id), and the number of rows passing: `example_filter.page_of`
    answered by DuckDB.

    Three queries, each joining only the files it reads: the count, the page's example ids
    (the filter's and the sort's columns), then every column of those ids alone."""
    check_page(offset, limit)
    with _Query(run, source, extra) as query:
        total = _count(query, where)
        return _top(query, where, sort, descending, offset, limit), total


def example_top(
    run: Run,
    where: ExampleFilter,
    *,
    source: str = "eval",
    sort: str = "example_id",
    descending: bool = False,
    offset: int = 0,
    limit: int = PAGE_SIZE,
    extra: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """`example_page`'s rows without their count (a gallery's first few)."""
    check_page(offset, limit)
    with _Query(run, source, extra) as query:
        return _top(query, where, sort, descending, offset, limit)


def _count(query: _Query, where: ExampleFilter) -> int:
    condition, parameters = _where(where, query.table.columns)
    used = query.table.sql(list(dict.fromkeys(["example_id", *where.columns()])))
    counted = query.run(f"SELECT count(*) AS n FROM ({used}) WHERE {condition}", parameters)
    return int(counted.column("n")[0].as_py())


def _top(
    query: _Query, where: ExampleFilter, sort: str, descending: bool, offset: int, limit: int
) -> pd.DataFrame:
    """The rows of the page: its example ids ranked on the filter's and the sort's columns,
    then every column of those ids alone."""
    check_columns([sort], query.table.columns, "sort")
    condition, parameters = _where(where, query.table.columns)
    order = f"{quoted(sort)} {'DESC' if descending else 'ASC'} NULLS LAST"
    if sort != "example_id":
        order += ", example_id ASC"
    ranked = query.table.sql(list(dict.fromkeys(["example_id", *where.columns(), sort])))
    found = query.run(
        f"SELECT example_id FROM ({ranked}) WHERE {condition} ORDER BY {order} "
        f"LIMIT {int(limit)} OFFSET {int(offset)}",
        parameters,
    )
    return _rows_of(query, found.column("example_id").to_pylist())


def example_rows(
    run: Run,
    where: ExampleFilter,
    *,
    columns: list[str] | None = None,
    source: str = "eval",
    extra: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every row passing `where` (its `columns`, all when None), by example_id: what a page
    needs of all of them (a histogram by kind, a CSV)."""
    with _Query(run, source, extra) as query:
        chosen = list(query.table.columns) if columns is None else list(columns)
        check_columns(chosen, query.table.columns, "rows")
        condition, parameters = _where(where, query.table.columns)
        sql = query.table.sql(list(dict.fromkeys([*chosen, *where.columns(), "example_id"])))
        listed = ", ".join(quoted(c) for c in chosen)
        return query.run(
            f"SELECT {listed} FROM ({sql}) WHERE {condition} ORDER BY example_id", parameters
        ).to_pandas()


def _rows_of(query: _Query, ids: list[int]) -> pd.DataFrame:
    """Every column of the examples `ids`, in that order (their ids inlined: the Parquet
    scans skip the others)."""
    listed = ", ".join(str(int(i)) for i in ids) or "NULL"
    found = query.run(
        f"SELECT * FROM ({query.table.sql()}) WHERE example_id IN ({listed}) "
        f"ORDER BY list_position([{listed}], example_id)"
    )
    return found.to_pandas()


def _where(where: ExampleFilter, columns: dict | list) -> tuple[str, list]:
    """The filter as an SQL condition and its parameters (values are always parameters;
    column names are checked against the table's and quoted)."""
    check_columns(where.columns(), columns, "filter")
    parts, parameters = ["true"], []
    if where.kinds is not None:
        parts.append("list_contains(?::VARCHAR[], kind)")
        parameters.append(list(where.kinds))
    if where.labels is not None:
        parts.append("list_contains(?::BIGINT[], label)")
        parameters.append([int(v) for v in where.labels])
    if where.text:
        parts.append("contains(upper(text), upper(?))")
        parameters.append(where.text)
    if where.score is not None:
        score = quoted(where.score)
        inside = f"({score} BETWEEN ? AND ?)"
        parts.append(f"({inside} OR {score} IS NULL)" if where.keep_missing else inside)
        parameters += [float(where.low), float(where.high)]
    parts += [f"{quoted(c)} IS NOT NULL" for c in where.defined]
    return " AND ".join(parts), parameters


TABLE_FILES = "examples.parquet and derived/"  # what a query of the example table reads


class RunConnection:
    """An in-memory DuckDB connection locked down as `memdash sql`'s (files read only in the
    run's folder, nothing written, the settings locked), `extra` registered as `EXTRA` when
    given; DuckDB's errors are raised as RunFormatError naming the run. A context manager."""

    def __init__(self, run: Run, extra: pd.DataFrame | None = None) -> None:
        self.run_ = run
        self.extra = extra
        self.connection: DuckDBPyConnection | None = None

    def __enter__(self) -> Self:
        import duckdb

        self.connection = duckdb.connect(":memory:", config=dict(_CONFIG))
        try:
            if self.extra is not None:
                self.connection.register(EXTRA, self.extra)
            folder = _literal(f"{self.run_.path.resolve()}/")
            self.connection.execute(f"SET allowed_directories = [{folder}]")
            self.connection.execute("SET enable_external_access = false")
            self.connection.execute("SET lock_configuration = true")
        except duckdb.Error as err:
            self.__exit__(None, None, None)
            raise self._error(err) from err
        return self

    def run(
        self, query: str, parameters: list | None = None, *, reads: str = TABLE_FILES
    ) -> pa.Table:
        """The result of `query` (its ``?`` bound to `parameters`) as an Arrow table; an
        error names the files it `reads`."""
        import duckdb

        try:
            return self.connection.sql(query, params=parameters or None).to_arrow_table()
        except duckdb.Error as err:
            raise self._error(err, reads) from err

    def _error(self, err: Exception, reads: str = TABLE_FILES) -> RunFormatError:
        return RunFormatError(self.run_.path, reads, one_line(err))

    def __exit__(self, *exc) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class _Query(RunConnection):
    """A `RunConnection` with the run's `ExampleTable`."""

    def __init__(self, run: Run, source: str, extra: pd.DataFrame | None) -> None:
        super().__init__(run, extra)
        self.table = ExampleTable(run, source, extra)
