"""Atomic writes: every file of a run is written to a hidden temporary sibling, then renamed.

A reader never sees half a file, and a process killed mid-write leaves the previous
version (or nothing) behind. Tables are zstd Parquet, arrays .npy, weights safetensors,
metadata JSON; nothing is pickled.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# trace parts are most of a run's bytes: ids delta-coded, floats byte-stream-split
# (which lets zstd find the shared exponents), small ints dictionary-coded.
TRACE_ENCODING = {
    "use_dictionary": ["source", "epoch", "pred"],
    "column_encoding": {
        "example_id": "DELTA_BINARY_PACKED",
        "loss": "BYTE_STREAM_SPLIT",
        "prob_label": "BYTE_STREAM_SPLIT",
        "margin": "BYTE_STREAM_SPLIT",
    },
}


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write through `write(tmp)` into a hidden temporary sibling, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Path, payload: dict[str, Any]) -> None:
    _atomic(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=2, sort_keys=True)))


def write_bytes(path: Path, data: bytes) -> None:
    _atomic(path, lambda tmp: tmp.write_bytes(data))


def as_table(data: pd.DataFrame | pa.Table) -> pa.Table:
    """`data` as an Arrow table, without pandas metadata (a table is returned as it is)."""
    if isinstance(data, pa.Table):
        return data
    return pa.Table.from_pandas(data, preserve_index=False).replace_schema_metadata(None)


def write_parquet(path: Path, data: pd.DataFrame | pa.Table, **options: Any) -> None:
    """Write a frame as zstd Parquet (no pandas metadata: any reader gets plain columns)."""
    table = as_table(data)
    _atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd", **options))


def write_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array), allow_pickle=False)

    _atomic(path, write)


def write_safetensors(path: Path, tensors: dict[str, Any], metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    clean = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    _atomic(path, lambda tmp: save_file(clean, str(tmp), metadata=metadata))
