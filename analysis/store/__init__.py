"""The run store: the only code that reads or writes a run directory (docs/run-format.md).

`Run` reads a run (reader.py), `RunWriter` writes one (writer.py), `discover_runs` finds
runs under a root (discover.py); the `write_*` helpers write a file atomically (atomic.py)
and `write_lock` serializes writers of one run (lock.py). The layout of a run is in
layout.py, the schema of run.json in schema.py, its checks in checks.py, the derived tables
and their manifest (with each file's SHA-256) in derived.py, the sorting of every file of a
run folder (expected, left behind, unexpected) in inventory.py, the errors in errors.py.
Nothing here imports another layer of memdash.
"""

from memdash.analysis.store.atomic import write_json, write_npy, write_parquet, write_safetensors
from memdash.analysis.store.discover import discover_runs
from memdash.analysis.store.errors import RunFormatError, RunNotWritable
from memdash.analysis.store.layout import SCHEMA_VERSION
from memdash.analysis.store.lock import write_lock
from memdash.analysis.store.reader import Run
from memdash.analysis.store.writer import RunWriter

__all__ = [
    "SCHEMA_VERSION",
    "Run",
    "RunFormatError",
    "RunNotWritable",
    "RunWriter",
    "discover_runs",
    "write_json",
    "write_lock",
    "write_npy",
    "write_parquet",
    "write_safetensors",
]
