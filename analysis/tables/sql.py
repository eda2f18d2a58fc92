"""Queries across runs: the runs as DuckDB views (`memdash sql`), every row carrying its run's
name, read in a sandbox that writes nothing.

The views, each with a ``run`` column (the run's unique name, `runs.unique_names`):

- ``runs``: one row per run, from run.json (`runs.RUNS_COLUMNS`);
- ``examples``: every run's examples.parquet;
- ``trace``: every run's eval trace (the end-of-epoch pass over every example), its committed
  parts (``trace.parquet/eval-epoch_EEE.parquet``, epochs up to ``epochs_completed``);
- ``trace_train``: the same of the training minibatches' trace, where recorded;
- ``scores``: every analysed run's derived/scores.parquet, with the held-out estimate's columns
  (``mem_score`` ..., `examples.HELDOUT_COLUMNS`; a text run's counterfactual ones) joined by
  example where `memdash estimate` computed them (a run with an estimate and no scores has
  those columns alone).

Runs are concatenated by column name (a column a run lacks is null in its rows), and a
float's NaN, memdash's "not defined" (never learned, no held-out model, a test example's
curvature), reads as NULL: comparisons and aggregates skip it as SQL does (DuckDB would
count NaN above every number, so ``mem_score > 0.5`` held for it, and average it). The
database is in memory, spilling to disk is off, extensions are neither installed nor
loaded, a query may be a single SELECT (``FROM``, ``WITH``, ``DESCRIBE``, ``SUMMARIZE``,
``SHOW`` included) or EXPLAIN and nothing else, files are read only inside the runs' folders
(DuckDB's ``allowed_directories`` with external access off) and the configuration is then
locked: a query reads the runs and writes nothing anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from memdash.analysis.store import Run
from memdash.analysis.store.layout import EXAMPLES_COLUMNS, TRACE_COLUMNS
from memdash.analysis.tables.examples import COUNTERFACTUAL_COLUMNS, HELDOUT_COLUMNS
from memdash.analysis.tables.runs import run_names, runs_frame

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

# view -> what a row is (`memdash sql --help` lists them)
VIEWS = {
    "runs": "one row per run (run.json: status, dataset, model, noise, seed, seed_group, "
    "epochs, accuracies, dp_epsilon, ...)",
    "examples": "every run's examples.parquet (example_id, split, label, is_noisy, ...)",
    "trace": "every run's eval trace (epoch, example_id, loss, prob_label, margin, correct, ...)",
    "trace_train": "every run's training-minibatch trace, where recorded",
    "scores": "every analysed run's derived scores, with mem_score ... where estimated",
}
# the statements a query may be (DuckDB's StatementType names): reads only
READ_ONLY = ("SELECT", "EXPLAIN")
# the store's column kinds as DuckDB types: the columns of a view that no run fills
_SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN"}
_CONFIG = {
    "temp_directory": "",  # no spilling: nothing written, not even temporary files
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


class QueryError(ValueError):
    """A query that cannot run: not one read-only statement, or DuckDB's error, on one line."""


def open_views(runs: list[Run]) -> DuckDBPyConnection:
    """An in-memory DuckDB connection holding the views `VIEWS` of `runs`, locked down: it
    reads files only inside the runs' folders, never writes, and its settings cannot be
    changed (see the module docstring). Close it when done."""
    import duckdb

    connection = duckdb.connect(":memory:", config=dict(_CONFIG))
    try:
        frame = pa.Table.from_pandas(runs_frame(runs), preserve_index=False)
        connection.register("runs_frame", frame)
        connection.execute("CREATE TABLE runs AS SELECT * FROM runs_frame")
        connection.unregister("runs_frame")
        for view, sql in _view_sql(runs).items():
            columns = connection.execute(f"DESCRIBE {sql}").fetchall()
            listed = ", ".join(_nan_as_null(name, kind) for name, kind, *_ in columns)
            connection.execute(f"CREATE VIEW {view} AS SELECT {listed} FROM ({sql})")
        folders = ", ".join(_literal(f"{run.path.resolve()}/") for run in runs)
        connection.execute(f"SET allowed_directories = [{folders}]")
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
    except BaseException:
        connection.close()
        raise
    return connection


def check_query(query: str) -> str:
    """The query's one statement, when it is read-only (`READ_ONLY`); QueryError otherwise:
    no statement, several, or one that is not a read, in one line."""
    import duckdb

    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as err:
        raise QueryError(one_line(err)) from err
    if not statements:
        raise QueryError("no SQL statement given")
    if len(statements) > 1:
        raise QueryError(f"one statement at a time, got {len(statements)}")
    kind = statements[0].type.name
    if kind == "MULTI":  # DuckDB plans a PIVOT without its values as several statements
        raise QueryError("a PIVOT needs its values listed: PIVOT ... ON column IN (v1, v2, ...)")
    if kind not in READ_ONLY:
        raise QueryError(f"a {kind} statement: memdash sql only reads (SELECT, or EXPLAIN of one)")
    return query


def execute(connection: DuckDBPyConnection, query: str) -> DuckDBPyConnection:
    """Run `query` (checked by `check_query`) on `connection`; its result is fetched from the
    connection returned. DuckDB's error is raised as QueryError, on one line."""
    import duckdb

    check_query(query)
    try:
        return connection.execute(query)
    except duckdb.Error as err:
        raise QueryError(one_line(err)) from err


def query_runs(runs: list[Run], query: str) -> pd.DataFrame:
    """The result of a read-only `query` over the views of `runs`, as a frame."""
    connection = open_views(runs)
    try:
        return execute(connection, query).df()
    finally:
        connection.close()


def one_line(err: Exception) -> str:
    """DuckDB's message on one line: its lines joined, without the echo of the query and the
    carets under it (``LINE 1: ...``)."""
    lines = [line.strip() for line in str(err).splitlines()]
    kept = [line for line in lines if line and not line.startswith("LINE ") and set(line) != {"^"}]
    return " ".join(kept) or type(err).__name__


# ------------------------------------------------------------------------ the views' SQL
def _view_sql(runs: list[Run]) -> dict[str, str]:
    """view -> its SELECT: each run's files, with the run's name, concatenated by name."""
    names = run_names(runs)
    readable = [(run, name) for run, name in zip(runs, names, strict=True) if _recorded(run)]

    def per_run(files: Callable[[Run], list[str]]) -> list[str]:
        return [
            f"SELECT {_literal(name)} AS run, * FROM {_read(found)}"
            for run, name in readable
            if (found := files(run))
        ]

    scores = [
        f"SELECT {_literal(name)} AS run, * FROM {sql}"
        for run, name in readable
        if (sql := _scores_source(run)) is not None
    ]
    return {
        "examples": _union(
            per_run(lambda run: [str(run.path / "examples.parquet")]), EXAMPLES_COLUMNS
        ),
        "trace": _union(per_run(lambda run: _parts(run, "eval")), TRACE_COLUMNS),
        "trace_train": _union(per_run(lambda run: _parts(run, "train")), TRACE_COLUMNS),
        "scores": _union(scores, {"example_id": "int"}),
    }


def _recorded(run: Run) -> bool:
    """Whether a run has tables to read (a run just created has written none)."""
    return run.status != "created"


def _parts(run: Run, source: str) -> list[str]:
    return [str(file) for _, file in sorted(run.trace_parts(source).items())]


def _scores_source(run: Run) -> str | None:
    """The FROM of a run's scores: derived/scores.parquet left-joined with the held-out
    estimate's columns by example; either alone; None when the run has neither (as the
    verified manifest says)."""
    manifest = run.derived_manifest()
    scores = _read([str(run.derived_path("scores.parquet"))]) if "scores" in manifest else None
    held = None
    if "heldout" in manifest:
        text = "counterfactual.parquet" in manifest["heldout"].get("files", [])
        file = run.derived_path("counterfactual.parquet" if text else "heldout.parquet")
        wanted = "|".join(("example_id", *(COUNTERFACTUAL_COLUMNS if text else HELDOUT_COLUMNS)))
        held = f"(SELECT COLUMNS('^({wanted})$') FROM {_read([str(file)])})"
    if scores and held:
        return f"{scores} LEFT JOIN {held} USING (example_id)"
    return scores or held


def _read(files: list[str]) -> str:
    listed = ", ".join(_literal(str(Path(f).resolve())) for f in files)
    return f"read_parquet([{listed}], union_by_name = true)"


def _union(selects: list[str], columns: dict[str, str]) -> str:
    """The selects concatenated by column name; without any, an empty table of `columns`
    (the store's kinds) and ``run``, so that a query naming them still binds."""
    if selects:
        return " UNION ALL BY NAME ".join(selects)
    typed = [f"CAST(NULL AS {_SQL_TYPES[kind]}) AS {c}" for c, kind in columns.items()]
    return f"SELECT CAST(NULL AS VARCHAR) AS run, {', '.join(typed)} WHERE false"


def _nan_as_null(column: str, kind: str) -> str:
    """A view's column, a float one's NaN (memdash's "not defined") as NULL."""
    name = '"' + column.replace('"', '""') + '"'
    if kind in ("FLOAT", "DOUBLE"):
        return f"CASE WHEN isnan({name}) THEN NULL ELSE {name} END AS {name}"
    return name


def _literal(text: str) -> str:
    """`text` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
