"""Reading a run's trace: its committed part files, and a source's trace as (E, N) grids.

The trace is stored long, one Parquet part per (source, epoch) under RUN/trace.parquet/;
parts of epochs after ``epochs_completed`` (left by a killed process) are never read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from memdash.analysis.store.errors import RunFormatError
from memdash.analysis.store.files import read_part
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
