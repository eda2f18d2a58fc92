"""Some examples' rows read where they lie, so that opening one example of a million reads a
row of each file rather than the files: the example table's rows of a few examples
(`example_rows`: `examples.example_table` with every file read for those ids alone) and a
derived per-example file's rows of them (`derived_rows`: an example's k-NN predictions at
each layer, its nearest training examples).

Each file is read by DuckDB with the ids as its predicate (the row groups whose example_id
statistics exclude them skipped, the other columns decoded only near a matching row), then
typed as a whole read types it (`pyarrow.parquet.read_schema`), so that the rows equal the
whole table's, dtypes included. A left join widens the columns of a file that lacks some
example of the run (an int becomes a float, a bool an object): `RowReader` widens a file's
columns alike when its rows do not cover every example, whether or not the ids asked for
are among those lacking.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from memdash.analysis.store import Run, RunFormatError
from memdash.analysis.store.files import check_part
from memdash.analysis.store.layout import EXAMPLES_COLUMNS
from memdash.analysis.tables.example_query import RunConnection
from memdash.analysis.tables.example_sql import _read, quoted
from memdash.analysis.tables.examples import TableReader, example_kind, example_table


def example_rows(run: Run, ids: Sequence[int], *, scores: bool = True) -> pd.DataFrame:
    """The example table's rows of the examples `ids`, in that order: the rows of
    `examples.example_table(run)` at those positions (row i is example i), the same
    columns, values and dtypes, its index the ids.

    Parameters
    ----------
    run : the run
    ids : distinct example ids, each in 0 .. N - 1 (N examples)
    scores : False: examples.parquet's columns and the kind alone, the table's first
        columns (no derived file is read)

    Raises
    ------
    ValueError : an id twice, or one the run does not have
    RunFormatError : a file that cannot be read, naming it
    """
    wanted = _checked_ids(run, ids)
    with RunConnection(run) as query:
        read = RowReader(run, wanted, query)
        table = example_table(run, read=read) if scores else read.examples()
        if not scores:
            table.insert(1, "kind", example_kind(table))
    table.index = pd.Index(wanted, dtype="int64")
    return table


def derived_rows(
    run: Run, name: str, ids: Sequence[int], *, columns: list[str] | None = None
) -> pd.DataFrame:
    """The rows of derived/NAME whose ``example_id`` is one of `ids`, in the file's order,
    typed as `Run.read_derived` types them: ``knn_examples.parquet``'s rows of an example are
    its k-NN predictions at each layer, ``neighbors.parquet``'s its nearest training
    examples.

    Parameters
    ----------
    run : the run
    name : a derived file with an ``example_id`` column
    ids : example ids (an id without rows has none)
    columns : the columns to read (all when None)
    """
    wanted = [int(i) for i in ids]
    with RunConnection(run) as query:
        return _file_rows(run, query, run.derived_path(name), wanted, columns)


class RowReader(TableReader):
    """`examples.example_table`'s reads of the examples `ids` alone (see the module
    docstring): examples.parquet's rows in the order of `ids`, each derived file's rows of
    them, widened where the file does not cover every example."""

    def __init__(self, run: Run, ids: list[int], query: RunConnection) -> None:
        super().__init__(run)
        self.ids = ids
        self.query = query
        self.n_examples = run.n_examples()
        self._layers: dict[str, list[str]] = {}

    def examples(self) -> pd.DataFrame:
        file = self.run.path / "examples.parquet"
        check_part(self.run.path, file, EXAMPLES_COLUMNS, None)
        frame = _file_rows(self.run, self.query, file, self.ids, None)
        if len(frame) != len(self.ids):  # the run store's contract: row i is example i
            raise RunFormatError(self.run.path, "examples.parquet", "example_id must be 0..N-1")
        order = {example: i for i, example in enumerate(self.ids)}
        position = frame["example_id"].map(order).to_numpy()
        return frame.iloc[np.argsort(position, kind="stable")].reset_index(drop=True)

    def derived(
        self, name: str, columns: list[str] | None = None, *, layer: str | None = None
    ) -> pd.DataFrame:
        file = self.run.derived_path(name)
        frame = _file_rows(self.run, self.query, file, self.ids, columns, layer=layer)
        layers = 1 if layer is None else len(self.layers(name))
        if _covers_every_example(
            self.run, self.query, file, self.n_examples, layers=layers, layer=layer
        ):
            return frame
        return _widened(frame)

    def layers(self, name: str) -> list[str]:
        if name not in self._layers:
            file = self.run.derived_path(name)
            found = self.query.run(
                f"SELECT DISTINCT layer FROM {_read(file)}", reads=_name(self.run, file)
            )
            self._layers[name] = [str(v) for v in found.column("layer").to_pylist()]
        return self._layers[name]


def _checked_ids(run: Run, ids: Sequence[int]) -> list[int]:
    wanted = [int(i) for i in ids]
    n = run.n_examples()
    outside = [i for i in wanted if not 0 <= i < n]
    if outside:
        raise ValueError(
            f"example {outside[0]} is not in run {run.name!r}: its ids are 0 to {n - 1}"
        )
    if len(set(wanted)) < len(wanted):
        twice = next(i for i in wanted if wanted.count(i) > 1)
        raise ValueError(f"example ids must be distinct; {twice} is asked for twice")
    return wanted


def _file_rows(
    run: Run,
    query: RunConnection,
    file: Path,
    ids: list[int],
    columns: list[str] | None,
    *,
    layer: str | None = None,
) -> pd.DataFrame:
    """`columns` (all when None) of `file`'s rows of `ids` (and of `layer` when given), typed
    as pyarrow reads the whole file."""
    rel = _name(run, file)
    if not file.is_file():
        raise RunFormatError(run.path, rel, "missing; run `memdash analyze`")
    try:
        schema = pq.read_schema(file)
    except (pa.ArrowException, OSError) as err:
        raise RunFormatError(run.path, rel, f"not a readable Parquet file ({err})") from err
    wanted = schema.names if columns is None else list(columns)
    absent = [c for c in [*wanted, "example_id"] if c not in schema.names]
    if absent:
        raise RunFormatError(run.path, rel, f"no column {absent[0]!r}")
    listed = ", ".join(quoted(c) for c in wanted)
    condition, parameters = _condition(ids, layer)
    found = query.run(
        f"SELECT {listed} FROM {_read(file)} WHERE {condition}", parameters, reads=rel
    )
    typed = pa.schema([schema.field(c).remove_metadata() for c in wanted])
    try:
        return found.cast(typed).to_pandas()
    except pa.ArrowException as err:
        raise RunFormatError(run.path, rel, f"rows not of the file's types ({err})") from err


def _covers_every_example(
    run: Run, query: RunConnection, file: Path, n: int, *, layers: int, layer: str | None
) -> bool:
    """Whether `file` (its rows of `layer`, when given, one of its `layers`) has a row of
    each of the run's `n` examples, so that a left join of the example table leaves none
    without a match. A per-example file has a row per example (and layer) at most: its
    footer answers when it holds as many rows as it can, each of an example (by the row
    groups' example_id statistics), or, without layers, fewer than the examples; otherwise
    its rows of the examples are counted."""
    meta = pq.ParquetFile(file).metadata
    if meta.num_rows == n * layers and _ids_within(meta, n):
        return True
    if layer is None and meta.num_rows < n:
        return False
    condition = "example_id BETWEEN 0 AND ?" + ("" if layer is None else " AND layer = ?")
    parameters = [n - 1] + ([] if layer is None else [layer])
    counted = query.run(
        f"SELECT count(*) AS n FROM {_read(file)} WHERE {condition}",
        parameters,
        reads=_name(run, file),
    )
    return int(counted.column("n")[0].as_py()) == n


def _ids_within(meta: pq.FileMetaData, n: int) -> bool:
    """Whether every row group's example_id statistics lie in 0 .. n - 1."""
    column = meta.schema.to_arrow_schema().get_field_index("example_id")
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(column).statistics
        if stats is None or not stats.has_min_max or stats.min < 0 or stats.max >= n:
            return False
    return True


def _widened(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame`'s columns typed as a left join that misses some example types them."""
    key = pd.DataFrame({"example_id": np.array([-1], dtype=frame["example_id"].dtype)})
    missing = key.merge(frame.iloc[:0], on="example_id", how="left")
    return frame.astype({c: missing[c].dtype for c in frame.columns if c != "example_id"})


def _condition(ids: list[int], layer: str | None) -> tuple[str, list]:
    """The rows of `ids` (inlined: the scan skips row groups by their statistics)."""
    listed = ", ".join(str(int(i)) for i in ids) or "NULL"
    if layer is None:
        return f"example_id IN ({listed})", []
    return f"example_id IN ({listed}) AND layer = ?", [layer]


def _name(run: Run, file: Path) -> str:
    return str(Path(file).relative_to(run.path))
