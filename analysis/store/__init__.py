"""The run store: the only code that reads or writes a run directory (docs/run-format.md).

`Run` reads a run, `RunWriter` writes one, `discover_runs` finds runs under a root; the
`write_*` helpers write a file atomically and `write_lock` serializes writers of one run.
Nothing here imports another layer of memdash.
"""

from memdash.analysis.store.runs import (
    SCHEMA_VERSION,
    Run,
    RunFormatError,
    RunNotWritable,
    RunWriter,
    discover_runs,
    write_json,
    write_lock,
    write_npy,
    write_parquet,
    write_safetensors,
)

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
