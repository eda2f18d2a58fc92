"""The example table of a run too large to hold, queried where it lies: DuckDB over
examples.parquet and the derived tables, filtered, counted, sorted and cut into pages on the
server, so that a page of a million examples reads without the table ever sitting in memory.

`example_sql` is `examples.example_table` (and, on a text run, the dashboard's text kinds:
``plain`` and ``duplicate``, no label columns) written as one SELECT over the run's files:
examples.parquet with its kind, left-joined by example_id with derived/scores.parquet, the
held-out estimate's columns and LiRA's ``vulnerability``, the k-NN agreement at the last
embedded layer and ``neurons_zeroed``, where the verified manifest lists them. With source
``train`` the trace scores come from the training minibatches under the plain names
(`memdash.analysis.store.sources.select_source`). A float's NaN reads as NULL (as in
`memdash sql`), so a range and a sort treat it as pandas does: outside every range, last.

Each call opens an in-memory connection locked down as `memdash sql`'s (files read only in
the run's folder, nothing written, the settings locked), answers and closes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from memdash.analysis.store import Run, RunFormatError
from memdash.analysis.store.files import check_part
from memdash.analysis.store.layout import EXAMPLES_COLUMNS
from memdash.analysis.store.sources import SUFFIX, TRACE_SCORES, check_source
from memdash.analysis.tables.example_filter import (
    PAGE_SIZE,
    ExampleFacets,
    ExampleFilter,
    check_columns,
    check_page,
)
from memdash.analysis.tables.examples import COUNTERFACTUAL_COLUMNS, HELDOUT_COLUMNS
from memdash.analysis.tables.sql import _CONFIG, _literal, one_line

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

EXTRA = "memdash_extra"  # the name a caller's extra columns are registered under
NO_LABELS = ("label", "true_label", "is_noisy")  # a text run's table drops them
KIND_SQL = (
    "CASE WHEN e.is_canary AND e.split = 'train' THEN 'canary' WHEN e.is_noisy THEN 'flipped' "
    "WHEN e.split = 'train' THEN 'clean' ELSE e.split END"
)
TEXT_KIND_SQL = (  # the dashboard's text kinds (`memdash.dashboard.data.run.text_kinds`)
    f"CASE WHEN e.split = 'train' AND e.corruption = 'duplicate' THEN 'duplicate' "
    f"WHEN ({KIND_SQL}) = 'clean' THEN 'plain' ELSE ({KIND_SQL}) END"
)


def example_columns(run: Run, *, extra: pd.DataFrame | None = None) -> list[str]:
    """The example table's columns, in `example_sql`'s order (source ``eval``: the
    ``_train`` trace scores under their own names)."""
    return [name for name, _ in _joined(run, extra)[1]]


def example_facets(
    run: Run,
    *,
    source: str = "eval",
    ranged: tuple[str, ...] = (),
    extra: pd.DataFrame | None = None,
) -> ExampleFacets:
    """The whole table's facets (`example_filter.facets_of`) in one aggregate query."""
    with _Query(run, source, extra) as query:
        columns = query.columns
        wanted = [c for c in ranged if c in columns]
        aggregates = ["count(*)", "list(DISTINCT kind ORDER BY kind)"]
        aggregates += ["list(DISTINCT label ORDER BY label)" if "label" in columns else "[]"]
        for c in wanted:
            aggregates += [f"min({_name(c)})::DOUBLE", f"max({_name(c)})::DOUBLE"]
        row = query.run(f"SELECT {', '.join(aggregates)} FROM examples").to_pylist()[0]
        row = list(row.values())
    ranges = {
        c: (lo, hi)
        for c, lo, hi in zip(wanted, row[3::2], row[4::2], strict=True)
        if lo is not None
    }
    return ExampleFacets(
        n_examples=int(row[0]),
        columns=tuple(columns),
        kinds=tuple(row[1]),
        labels=tuple(int(v) for v in row[2]),
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
    answered by DuckDB. Only the page's rows reach pandas."""
    check_page(offset, limit)
    with _Query(run, source, extra) as query:
        check_columns([sort], query.columns, "sort")
        condition, parameters = _where(where, query.columns)
        counted = query.run(f"SELECT count(*) AS n FROM examples WHERE {condition}", parameters)
        total = int(counted.column("n")[0].as_py())
        order = f"{_name(sort)} {'DESC' if descending else 'ASC'} NULLS LAST"
        if sort != "example_id":
            order += ", example_id ASC"
        page = query.run(
            f"SELECT * FROM examples WHERE {condition} ORDER BY {order} "
            f"LIMIT {int(limit)} OFFSET {int(offset)}",
            parameters,
        )
        return _frame(page), total


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
        chosen = query.columns if columns is None else columns
        check_columns(chosen, query.columns, "rows")
        condition, parameters = _where(where, query.columns)
        listed = ", ".join(_name(c) for c in chosen)
        return _frame(
            query.run(
                f"SELECT {listed} FROM examples WHERE {condition} ORDER BY example_id",
                parameters,
            )
        )


def example_sql(run: Run, *, source: str = "eval", extra: pd.DataFrame | None = None) -> str:
    """The SELECT of the run's example table over its files (see the module docstring); with
    `extra`, its columns joined by example_id from a frame registered as `EXTRA`."""
    check_source(source)
    joins, columns = _joined(run, extra)
    swapped = (
        {s for s in TRACE_SCORES if f"{s}{SUFFIX['train']}" in dict(columns)}
        if source == "train"
        else set()
    )
    listed = []
    for name, expression in columns:
        if name.removesuffix(SUFFIX["train"]) in swapped and name.endswith(SUFFIX["train"]):
            continue  # under its plain name, in the plain column's place
        if name in swapped:
            expression = dict(columns)[name + SUFFIX["train"]]
        listed.append(f"{expression} AS {_name(name)}")
    return f"SELECT {', '.join(listed)} FROM {' '.join(joins)}"


# ------------------------------------------------------------------------ the SQL
def _joined(run: Run, extra: pd.DataFrame | None) -> tuple[list[str], list[tuple[str, str]]]:
    """The FROM clause's parts (examples.parquet, then a LEFT JOIN per derived table) and
    the table's columns as (name, expression), in `examples.example_table`'s order."""
    file = run.path / "examples.parquet"
    check_part(run.path, file, EXAMPLES_COLUMNS, None)
    schema = pq.read_schema(file)
    text = run.is_text
    kind = TEXT_KIND_SQL if text else KIND_SQL
    kept = [c for c in schema.names if c != "example_id" and not (text and c in NO_LABELS)]
    columns = [("example_id", "e.example_id"), ("kind", kind)]
    columns += [(c, _value(f"e.{_name(c)}", schema.field(c).type)) for c in kept]
    joins = [f"{_read(file)} AS e"]
    for i, (relation, schema) in enumerate(_derived(run, extra)):
        alias = f"d{i}"
        joins.append(f"LEFT JOIN {relation} AS {alias} ON {alias}.example_id = e.example_id")
        columns += [
            (f.name, _value(f"{alias}.{_name(f.name)}", f.type))
            for f in schema
            if f.name != "example_id"
        ]
    return joins, columns


def _derived(run: Run, extra: pd.DataFrame | None) -> list[tuple[str, pa.Schema]]:
    """The relations `examples.example_table` joins, each as (SQL, its schema)."""
    manifest = run.derived_manifest()
    out = []

    def add(name: str, wanted: tuple[str, ...] | None = None, where: str = "") -> None:
        file = run.derived_path(name)
        schema = pq.read_schema(file)
        keep = [f for f in schema if wanted is None or f.name in ("example_id", *wanted)]
        listed = ", ".join(_name(f.name) for f in keep)
        out.append((f"(SELECT {listed} FROM {_read(file)}{where})", pa.schema(keep)))

    if "scores" in manifest:
        add("scores.parquet")
    if "heldout" in manifest:
        files = manifest["heldout"].get("files", [])
        text = "counterfactual.parquet" in files
        add(
            "counterfactual.parquet" if text else "heldout.parquet",
            COUNTERFACTUAL_COLUMNS if text else HELDOUT_COLUMNS,
        )
        if "membership.parquet" in files:
            add("membership.parquet", ("vulnerability",))
    if "knn" in manifest:
        last = _last_layer(run)
        if last is not None:
            file = run.derived_path("knn_examples.parquet")
            rows = (
                f"(SELECT example_id, knn_pred, agrees AS knn_agrees, knn_is_true FROM "
                f"{_read(file)} WHERE layer = {_literal(last)})"
            )
            kinds = pq.read_schema(file)
            schema = pa.schema(
                [kinds.field("example_id"), kinds.field("knn_pred")]
                + [pa.field("knn_agrees", kinds.field("agrees").type)]
                + [kinds.field("knn_is_true")]
            )
            out.append((rows, schema))
    if "flipping" in manifest:
        add("localization.parquet", ("neurons_zeroed",))
    if extra is not None:
        out.append((EXTRA, pa.Schema.from_pandas(extra, preserve_index=False)))
    return out


def _last_layer(run: Run) -> str | None:
    """The last embedded layer of derived/knn_examples.parquet (None when it has no rows)."""
    layers = pq.read_table(run.derived_path("knn_examples.parquet"), columns=["layer"])
    names = layers.column("layer").unique().to_pylist()
    return run.in_layer_order(names)[-1] if names else None


def _where(where: ExampleFilter, columns: list[str]) -> tuple[str, list]:
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
        score = _name(where.score)
        inside = f"({score} BETWEEN ? AND ?)"
        parts.append(f"({inside} OR {score} IS NULL)" if where.keep_missing else inside)
        parameters += [float(where.low), float(where.high)]
    parts += [f"{_name(c)} IS NOT NULL" for c in where.defined]
    return " AND ".join(parts), parameters


def _value(expression: str, dtype: pa.DataType) -> str:
    """A column's expression, a float's NaN as NULL."""
    if pa.types.is_floating(dtype):
        return f"CASE WHEN isnan({expression}) THEN NULL ELSE {expression} END"
    return expression


def _name(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _read(file: Path) -> str:
    return f"read_parquet({_literal(str(Path(file).resolve()))})"


def _frame(table: pa.Table) -> pd.DataFrame:
    """A result as a frame (an integer column with NULLs turns float, NaN for NULL, as a
    pandas merge leaves it)."""
    return table.to_pandas()


class _Query:
    """An in-memory DuckDB connection with the view ``examples`` (`example_sql`), locked down
    as `memdash sql`'s; DuckDB's errors are raised as RunFormatError naming the run."""

    def __init__(self, run: Run, source: str, extra: pd.DataFrame | None) -> None:
        self.run_ = run
        self.source = source
        self.extra = extra
        self.connection: DuckDBPyConnection | None = None
        self.columns: list[str] = []

    def __enter__(self) -> _Query:
        import duckdb

        sql = example_sql(self.run_, source=self.source, extra=self.extra)
        self.connection = duckdb.connect(":memory:", config=dict(_CONFIG))
        try:
            if self.extra is not None:
                self.connection.register(EXTRA, self.extra)
            self.connection.execute(f"CREATE VIEW examples AS {sql}")
            folder = _literal(f"{self.run_.path.resolve()}/")
            self.connection.execute(f"SET allowed_directories = [{folder}]")
            self.connection.execute("SET enable_external_access = false")
            self.connection.execute("SET lock_configuration = true")
            described = self.connection.sql("DESCRIBE examples").fetchall()
        except duckdb.Error as err:
            self.__exit__(None, None, None)
            raise self._error(err) from err
        self.columns = [row[0] for row in described]
        return self

    def run(self, query: str, parameters: list | None = None) -> pa.Table:
        """The result of `query` (its ``?`` bound to `parameters`) as an Arrow table."""
        import duckdb

        try:
            return self.connection.sql(query, params=parameters or None).to_arrow_table()
        except duckdb.Error as err:
            raise self._error(err) from err

    def _error(self, err: Exception) -> RunFormatError:
        return RunFormatError(self.run_.path, "examples.parquet and derived/", one_line(err))

    def __exit__(self, *exc) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
