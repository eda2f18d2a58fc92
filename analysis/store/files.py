"""Reading one file of a run, checked: a Parquet table's schema against the expected column
kinds (from its footer, without reading data) and a damaged file or array named as a
`RunFormatError` with the run and the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from memdash.analysis.store.errors import RunFormatError

KIND_CHECKS: dict[str, Callable[[pa.DataType], bool]] = {
    "int": pa.types.is_integer,
    "float": pa.types.is_floating,
    "bool": pa.types.is_boolean,
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
}


def check_schema(
    run: Path, rel: str, schema: pa.Schema, expected: dict[str, str], columns: list[str] | None
) -> None:
    """Check that `schema` holds the `expected` columns (those of `columns`, when given) with
    their kinds, and every one of `columns`; RunFormatError names `run` and `rel`."""
    needed = expected if columns is None else {c: expected[c] for c in columns if c in expected}
    for column, kind in needed.items():
        if column not in schema.names:
            raise RunFormatError(run, rel, f"missing column {column!r} (expected {kind})")
        dtype = schema.field(column).type
        if not KIND_CHECKS[kind](dtype):
            raise RunFormatError(run, rel, f"column {column!r} is {dtype}, expected {kind}")
    if columns is not None:
        unknown = [c for c in columns if c not in schema.names]
        if unknown:
            raise RunFormatError(run, rel, f"no column(s) {unknown}; has {schema.names}")


def check_part(run: Path, file: Path, expected: dict[str, str], columns: list[str] | None) -> str:
    """Read one Parquet file's footer and check its schema; its name relative to the run."""
    rel = str(file.relative_to(run))
    try:
        schema = pq.read_schema(file)
    except (pa.ArrowException, OSError) as err:
        raise RunFormatError(run, rel, f"not a readable Parquet file ({err})") from err
    check_schema(run, rel, schema, expected, columns)
    return rel


def read_part(
    run: Path, file: Path, expected: dict[str, str], columns: list[str] | None
) -> pa.Table:
    """One Parquet part, its schema checked; damage is named as a RunFormatError."""
    rel = check_part(run, file, expected, columns)
    try:
        return pq.read_table(file, columns=columns or list(expected))
    except (pa.ArrowException, OSError) as err:
        raise RunFormatError(run, rel, f"damaged Parquet data ({err})") from err


def read_parts(
    run: Path, files: list[Path], expected: dict[str, str], columns: list[str] | None
) -> pd.DataFrame:
    """Parquet parts read and joined into one frame (an empty, typed frame without parts)."""
    tables = [read_part(run, file, expected, columns) for file in files]
    if not tables:
        return empty_frame(expected, columns)
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


def read_table(
    run: Path, file: Path, expected: dict[str, str], columns: list[str] | None
) -> pd.DataFrame:
    """One Parquet table of the run, which must exist, its schema checked."""
    rel = str(file.relative_to(run))
    if not file.is_file():
        raise RunFormatError(run, rel, "missing")
    check_part(run, file, expected, columns)
    try:
        return pq.read_table(file, columns=columns).to_pandas()
    except (pa.ArrowException, OSError) as err:
        raise RunFormatError(run, rel, f"damaged Parquet data ({err})") from err


def empty_frame(expected: dict[str, str], columns: list[str] | None) -> pd.DataFrame:
    """A frame without rows whose columns have the dtypes of their kinds."""
    dtypes = {"int": "int64", "float": "float32", "bool": "bool", "string": "object"}
    names = columns or list(expected)
    return pd.DataFrame({c: pd.Series(dtype=dtypes[expected.get(c, "float")]) for c in names})


def load_npy(run: Path, rel: str, mmap: bool) -> np.ndarray:
    """RUN/`rel` as an array (memory-mapped when `mmap`), never unpickling."""
    try:
        return np.load(run / rel, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, EOFError, OSError) as err:
        raise RunFormatError(run, rel, f"not a readable .npy array ({err})") from err
