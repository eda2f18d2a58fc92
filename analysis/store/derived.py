"""A run's derived results (RUN/derived/: the tables analysis computed, and the manifest of
what each step computed them from) and the held-out arrays of `memdash estimate`
(RUN/heldout/).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from memdash.analysis.store.atomic import write_json, write_parquet
from memdash.analysis.store.errors import RunFormatError
from memdash.analysis.store.files import load_npy
from memdash.analysis.store.layout import DERIVED_NAME, PLAIN_NAME


def derived_path(run: Path, name: str) -> Path:
    """RUN/derived/NAME, where NAME is a file name, optionally under one folder."""
    if not DERIVED_NAME.match(name):
        raise ValueError(f"derived name {name!r} is not a plain file name (or folder/name)")
    return run / "derived" / name


def read_derived(run: Path, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """RUN/derived/NAME as a frame (`columns` only, when given)."""
    file = derived_path(run, name)
    if not file.is_file():
        raise RunFormatError(run, f"derived/{name}", "missing; run `memdash analyze`")
    try:
        return pq.read_table(file, columns=columns).to_pandas()
    except (pa.ArrowException, OSError) as err:
        raise RunFormatError(run, f"derived/{name}", f"unreadable ({err})") from err


def write_derived(run: Path, name: str, frame: pd.DataFrame) -> None:
    """Write `frame` as RUN/derived/NAME."""
    file = derived_path(run, name)
    file.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(file, frame)


def read_manifest(run: Path) -> dict[str, Any]:
    """derived/manifest.json: per step, what its result was computed from ({} if none)."""
    file = run / "derived" / "manifest.json"
    try:
        manifest = json.loads(file.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return {}  # none, or unreadable: everything is recomputed
    return manifest if isinstance(manifest, dict) else {}


def replace_derived(
    run: Path, step: str, tables: dict[str, pd.DataFrame], entry: dict[str, Any]
) -> None:
    """Write a step's tables, remove the files it wrote before and no longer does,
    then record `entry` plus the file list in the manifest (last, so an
    interruption leaves the step stale)."""
    old = read_manifest(run).get(step)
    for name, frame in tables.items():
        write_derived(run, name, frame)
    previous = old.get("files", []) if isinstance(old, dict) else []
    for name in previous:
        if isinstance(name, str) and name not in tables and DERIVED_NAME.match(name):
            derived_path(run, name).unlink(missing_ok=True)
    manifest = read_manifest(run) | {step: entry | {"files": sorted(tables)}}
    write_json(run / "derived" / "manifest.json", manifest)


def heldout_array(run: Path, name: str) -> np.ndarray:
    """An array of `memdash estimate` under RUN/heldout/ (see analysis/ensemble/estimate.py)."""
    if not PLAIN_NAME.match(name):
        raise ValueError(f"heldout file {name!r} is not a plain file name")
    return load_npy(run, f"heldout/{name}", False)
