"""Reading a run's trace: its committed part files, a source's trace as (E, N) grids, and
one example's rows by predicate pushdown; the row groups trace parts are written in.

The trace is stored long, one Parquet part per (source, epoch) under RUN/trace.parquet/;
parts of epochs after ``epochs_completed`` (left by a killed process) are never read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from memdash.analysis.store.errors import RunFormatError
from memdash.analysis.store.files import check_schema, read_part
from memdash.analysis.store.layout import SOURCES, TRACE_COLUMNS, TRACE_PART, parts


def check_trace_source(source: str) -> None:
    """A ValueError listing the valid sources unless `source` is one."""
    if source not in SOURCES:
        raise ValueError(f"unknown trace source {source!r}; valid: {', '.join(SOURCES)}")


def trace_parts(
    run: Path, epochs_completed: int, source: str | None = None
) -> dict[tuple[str, int], Path]:
    """The part files of epochs up to `epochs_completed` by (source, epoch), of `source`
    only when given."""
    return {
        (m.group(1), int(m.group(2))): p
        for p, m in parts(run / "trace.parquet", TRACE_PART)
        if int(m.group(2)) <= epochs_completed and source in (None, m.group(1))
    }


def trace_grids(
    run: Path,
    source_parts: dict[tuple[str, int], Path],
    n_examples: int,
    columns: Iterable[str],
    *,
    first_epoch: int = 1,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One source's trace parts as (E, N) float64 arrays, read one part at a time.

    Parameters
    ----------
    run : the run directory
    source_parts : (source, epoch) -> part file, of one source (`trace_parts`)
    n_examples : N, the number of examples
    columns : the trace columns to read
    first_epoch : the first epoch read

    Returns
    -------
    epochs : int, shape (E,), the recorded epochs >= `first_epoch`
    grids : column -> float64 array of shape (E, N), NaN where an example is absent
    """
    columns = list(columns)
    found = sorted((e, f) for (_, e), f in source_parts.items() if e >= first_epoch)
    epochs = np.array([e for e, _ in found], dtype=np.int64)
    grids = {c: np.full((len(found), n_examples), np.nan) for c in columns}
    for row, (_, file) in enumerate(found):
        table = read_part(run, file, TRACE_COLUMNS, ["example_id", *columns])
        ids = table.column("example_id").to_numpy()
        if len(ids) and (ids.min() < 0 or ids.max() >= n_examples):
            rel = str(file.relative_to(run))
            raise RunFormatError(run, rel, f"example_id outside 0..{n_examples - 1}")
        for c in columns:
            grids[c][row, ids] = table.column(c).to_numpy(zero_copy_only=False)
    return epochs, grids


# Parts are written sorted by example_id in about TRACE_ROW_GROUPS row groups (of at least
# MIN_ROW_GROUP rows: a part of fewer rows is one row group, as before), so that the min/max
# statistics of example_id of each row group cover a range of ids of their own and one
# example's read (`example_trace`) decodes one row group of each part and skips the others.
TRACE_ROW_GROUPS = 64
MIN_ROW_GROUP = 8192


def trace_row_group_size(n_rows: int) -> int:
    """The rows per row group of a trace part of `n_rows` rows: ceil(n_rows / TRACE_ROW_GROUPS),
    at least MIN_ROW_GROUP."""
    return max(MIN_ROW_GROUP, -(-int(n_rows) // TRACE_ROW_GROUPS))


def sorted_by_example(table: pa.Table) -> pa.Table:
    """A trace part's rows in ascending example_id (a stable sort, so that an example listed
    twice keeps its rows' order); the table itself when already sorted (the recorder's are)."""
    ids = table.column("example_id").to_numpy()
    if len(ids) < 2 or bool((ids[1:] >= ids[:-1]).all()):
        return table
    return table.take(np.argsort(ids, kind="stable"))


def row_groups_holding(metadata: pq.FileMetaData, column: int, value: int) -> list[int]:
    """The row groups of a Parquet file whose min/max statistics of `column` (its index)
    admit `value`; a row group without statistics is always read."""
    kept = []
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(column).statistics
        if stats is None or not stats.has_min_max or stats.min <= value <= stats.max:
            kept.append(group)
    return kept


def example_trace(
    run: Path,
    source_parts: dict[tuple[str, int], Path],
    example_id: int,
    columns: Iterable[str],
    *,
    first_epoch: int = 1,
) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """One example's rows of one source's trace, read by predicate pushdown: of each part
    only the row groups whose example_id statistics admit the example are decoded.

    Equals column `example_id` of `trace_grids` (an example listed twice in a part keeps its
    last row, as there), without reading the other examples' row groups. A run written
    before parts had several row groups (one per part) reads the same, decoding each part.

    Parameters
    ----------
    run : the run directory
    source_parts : (source, epoch) -> part file, of one source (`trace_parts`)
    example_id : the example
    columns : the trace columns to read
    first_epoch : the first epoch read

    Returns
    -------
    epochs : int, shape (E,), the recorded epochs >= `first_epoch`
    values : column -> float64 array of shape (E,), NaN where the example is absent
    row_groups : the number of row groups decoded (of all the parts)
    """
    columns = list(columns)
    found = sorted((e, f) for (_, e), f in source_parts.items() if e >= first_epoch)
    epochs = np.array([e for e, _ in found], dtype=np.int64)
    values = {c: np.full(len(found), np.nan) for c in columns}
    decoded = 0
    for row, (_, file) in enumerate(found):
        rel = str(file.relative_to(run))
        try:
            part = pq.ParquetFile(file)
            check_schema(run, rel, part.schema_arrow, TRACE_COLUMNS, ["example_id", *columns])
            groups = row_groups_holding(
                part.metadata, part.schema_arrow.get_field_index("example_id"), example_id
            )
            table = part.read_row_groups(groups, columns=["example_id", *columns])
        except (pa.ArrowException, OSError) as err:
            raise RunFormatError(run, rel, f"damaged Parquet data ({err})") from err
        decoded += len(groups)
        hits = np.flatnonzero(table.column("example_id").to_numpy() == example_id)
        if len(hits):
            last = table.slice(int(hits[-1]), 1)
            for c in columns:
                values[c][row] = last.column(c).to_numpy(zero_copy_only=False)[0]
    return epochs, values, decoded
