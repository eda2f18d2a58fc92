"""`memdash sql`: a read-only SQL query over the runs under some roots (DuckDB views `runs`,
`examples`, `trace`, `trace_train`, `scores`; analysis/tables/sql.py), printed as a table, CSV
or JSON."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from memdash.analysis.cli._common import errors_reported, open_runs
from memdash.analysis.cli.basics import console, fail, refuse, sample_roots
from memdash.analysis.cli.specs import TEXT, Number, option
from memdash.analysis.record.ranges import ints

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

MAX_ROWS = Number(ints(1, 1_000_000))
CHUNK_VECTORS = 64  # rows fetched at a time for --csv and --json: 64 DuckDB vectors (131,072)


def sql(
    query: str = typer.Argument(
        ...,
        parser=TEXT,
        help="One SELECT over the views runs, examples, trace (eval), trace_train, scores; "
        "each row has its run's name in `run`.",
        show_default=False,
    ),
    roots: list[Path] = typer.Argument(
        None, help="Runs, or folders of runs (default sample_runs/)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print every row as a JSON list of objects instead of a table."
    ),
    as_csv: bool = typer.Option(False, "--csv", help="Print every row as CSV with a header."),
    max_rows: int = option(
        100, MAX_ROWS, "The most rows the table shows (--json and --csv print all).", "--max-rows"
    ),
) -> None:
    """Query the runs with DuckDB's SQL, read-only: nothing is written anywhere.

    Views: runs (one row per run, from run.json), examples (examples.parquet), trace (the
    eval trace: a row per epoch and example), trace_train (the training minibatches' trace),
    scores (derived/scores.parquet with the held-out mem_score where estimated). Example:
    memdash sql "SELECT run, avg(loss) FROM trace WHERE epoch = 10 GROUP BY run"
    """
    from memdash.analysis.store import RunFormatError
    from memdash.analysis.tables.sql import check_query, execute, open_views

    if as_json and as_csv:
        refuse("--json and --csv: give one")
    plain = as_json or as_csv
    notes = Console(stderr=True) if plain else console  # keep stdout pure JSON or CSV
    with errors_reported():
        check_query(query)
    roots = roots or sample_roots()
    opened, broken = open_runs(roots)
    readable = []
    for run in opened:
        try:
            run.check_parts()
            readable.append(run)
        except RunFormatError as err:
            broken.append(err)
    for err in broken:
        notes.print(f"[yellow]skipped[/] {err}", soft_wrap=True, markup=True, highlight=False)
    if not readable:
        fail(f"no runs under {', '.join(map(str, roots))}")
    with errors_reported():
        connection = open_views(readable)
        try:
            result = execute(connection, query)
            if as_json:
                _print_json(result)
            elif as_csv:
                _print_csv(result)
            else:
                _print_table(result, max_rows)
        finally:
            connection.close()


def _print_table(result: DuckDBPyConnection, max_rows: int) -> None:
    """The first `max_rows` rows as a rich table captioned with their count, and a line
    saying so when there are more."""
    columns = [d[0] for d in result.description or []]
    rows = result.fetchmany(max_rows + 1)
    shown = rows[:max_rows]
    table = Table(caption=f"{len(shown)} row{'' if len(shown) == 1 else 's'}")
    for column in columns:
        table.add_column(Text(column), overflow="fold")
    for row in shown:
        table.add_row(*(_cell(value) for value in row))
    console.print(table)
    if len(rows) > max_rows:
        console.print(f"more rows not shown (--max-rows {max_rows}); --csv or --json prints all")


def _cell(value: Any) -> Text:
    """A value as the table shows it: NULL dimmed, floats to 6 significant digits, the rest as
    text (never read as rich markup)."""
    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, float):
        return Text(f"{value:.6g}")
    return Text(str(value))


def _chunks(result: DuckDBPyConnection):
    """The result's rows as pandas frames, a chunk at a time (never all at once)."""
    while len(chunk := result.fetch_df_chunk(CHUNK_VECTORS)):
        yield chunk


def _print_csv(result: DuckDBPyConnection) -> None:
    """Every row as CSV under a header (the header alone when there is no row), written a
    chunk at a time."""
    result.fetch_df_chunk(CHUNK_VECTORS).to_csv(sys.stdout, index=False)
    for chunk in _chunks(result):
        chunk.to_csv(sys.stdout, header=False, index=False)


def _print_json(result: DuckDBPyConnection) -> None:
    """Every row as one JSON list of objects (nulls and NaN as null, dates in ISO 8601),
    written a chunk at a time."""
    sys.stdout.write("[")
    first = True
    for chunk in _chunks(result):
        lines = chunk.to_json(
            orient="records", lines=True, date_format="iso", double_precision=15
        ).splitlines()
        for line in lines:
            sys.stdout.write(("\n  " if first else ",\n  ") + line)
            first = False
    sys.stdout.write("]\n" if first else "\n]\n")
