"""A run's derived results (RUN/derived/: the tables analysis computed, and the manifest of
what each step computed them from, with the SHA-256 and size of every file it wrote) and the
held-out arrays of `memdash estimate` (RUN/heldout/).

A derived file is trusted only while it matches what the manifest recorded when it was
written: `verified_manifest` keeps the steps whose files all match, so a truncated or
overwritten table reads as not computed (and `memdash analyze` computes it again). Each
version of a file (its size, modification time and inode) is hashed once per process
(`file_sha256`); manifests written before hashes were recorded are trusted as they are, their
tables' Parquet footers checked (`manifest_problems` says they are not verifiable).
"""

from __future__ import annotations

import hashlib
import json
import re
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
from memdash.analysis.store.trace import trace_row_group_size

MANIFEST = "derived/manifest.json"
SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DIGESTS: dict[tuple[str, int, int, int, int], str] = {}  # file version -> its SHA-256
_MAX_DIGESTS = 4096


def derived_path(run: Path, name: str) -> Path:
    """RUN/derived/NAME, where NAME is a file name, optionally under one folder."""
    if not DERIVED_NAME.match(name):
        raise ValueError(f"derived name {name!r} is not a plain file name (or folder/name)")
    return run / "derived" / name


def read_derived(run: Path, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """RUN/derived/NAME as a frame (`columns` only, when given); a file whose size is not the
    one the manifest recorded is refused as damaged."""
    file = derived_path(run, name)
    if not file.is_file():
        raise RunFormatError(run, f"derived/{name}", "missing; run `memdash analyze`")
    for entry in read_manifest(run).values():
        recorded = _recorded(entry, name)
        if _is_digest(recorded) and _differs(file, recorded, full=False):
            raise RunFormatError(run, f"derived/{name}", _mismatch(file, recorded))
    try:
        return pq.read_table(file, columns=columns).to_pandas()
    except (pa.ArrowException, OSError) as err:
        raise RunFormatError(run, f"derived/{name}", f"unreadable ({err})") from err


def write_derived(run: Path, name: str, frame: pd.DataFrame) -> None:
    """Write `frame` as RUN/derived/NAME, and record its new SHA-256 and size for every step
    of the manifest that lists it (a table rewritten through the store stays trusted)."""
    _write_table(run, name, frame)
    manifest = read_manifest(run)
    listing = [e for e in manifest.values() if isinstance(e, dict) and "hashes" in e]
    listing = [e for e in listing if name in (e.get("files") or [])]
    if listing and all(isinstance(e["hashes"], dict) for e in listing):
        for entry in listing:
            entry["hashes"][name] = file_digest(derived_path(run, name))
        write_json(run / MANIFEST, manifest)


def _write_table(run: Path, name: str, frame: pd.DataFrame) -> None:
    file = derived_path(run, name)
    file.parent.mkdir(parents=True, exist_ok=True)
    # in row groups, as the trace parts: one example's rows of a per-example table (the
    # detail of an example) skip the other groups by their statistics
    write_parquet(file, frame, row_group_size=trace_row_group_size(len(frame)))


def load_manifest(run: Path) -> tuple[dict[str, Any], str | None]:
    """derived/manifest.json as written ({} if none) and what is wrong with the file itself
    (None: nothing; else it is not JSON or not an object, and read as {})."""
    file = run / MANIFEST
    try:
        manifest = json.loads(file.read_text())
    except FileNotFoundError:
        return {}, None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return {}, f"not valid JSON ({err}); `memdash analyze` computes every step again"
    except OSError as err:
        return {}, f"unreadable ({err})"
    if not isinstance(manifest, dict):
        return {}, "expected a JSON object of steps; `memdash analyze` computes every step again"
    return manifest, None


def read_manifest(run: Path) -> dict[str, Any]:
    """derived/manifest.json as written: per step, what its result was computed from ({} if
    none, or unreadable: everything is recomputed)."""
    return load_manifest(run)[0]


def verified_manifest(run: Path, *, full: bool = True) -> dict[str, Any]:
    """The manifest's steps whose files all match what it recorded (see `step_problems`);
    a step with a missing, resized or changed file is left out: not computed."""
    return {
        step: entry
        for step, entry in read_manifest(run).items()
        if not step_problems(run, step, entry, full=full)
    }


def step_problems(run: Path, step: str, entry: Any, *, full: bool = True) -> list[tuple[str, str]]:
    """What is wrong with one step of the manifest, as (file, problem) pairs ([]: its files
    match). A recorded size is always compared; with `full`, the SHA-256 too (each version of
    a file hashed once, `file_sha256`), and a file without a recorded hash (an older manifest)
    must at least have a readable Parquet footer."""
    where = f"step {step!r}"
    if not isinstance(entry, dict):
        return [(MANIFEST, f"{where} is not an object; `memdash analyze` computes it again")]
    files, hashes = entry.get("files"), entry.get("hashes", {})
    if not isinstance(files, list) or not all(
        isinstance(f, str) and DERIVED_NAME.match(f) for f in files
    ):
        return [(MANIFEST, f"{where}: `files` is not a list of derived file names")]
    if not isinstance(hashes, dict):
        return [(MANIFEST, f"{where}: `hashes` is not an object of file name -> hash")]
    found = []
    for name in files:
        file = derived_path(run, name)
        if not file.is_file():
            found.append((f"derived/{name}", f"missing ({where} lists it)"))
        elif "hashes" not in entry:  # written before hashes were: nothing to compare
            if full and file.suffix == ".parquet":
                try:
                    pq.read_schema(file)
                except (pa.ArrowException, OSError) as err:
                    found.append((f"derived/{name}", f"not a readable Parquet file ({err})"))
        elif not _is_digest(hashes.get(name)):
            found.append((MANIFEST, f"{where}: no SHA-256 and size recorded for {name}"))
        elif _differs(file, hashes[name], full=full):
            found.append((f"derived/{name}", _mismatch(file, hashes[name])))
    return found


def manifest_problems(run: Path) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """Everything `memdash info` says of derived/: the (file, problem) pairs of the manifest
    itself and of every step's files, hashed; the files that match their recorded SHA-256
    and size; and those it cannot verify (listed by a manifest written before hashes were
    recorded), both by name under derived/."""
    manifest, wrong = load_manifest(run)
    found = [(MANIFEST, wrong)] if wrong else []
    verified: list[str] = []
    unverified: list[str] = []
    for step, entry in manifest.items():
        problems = step_problems(run, step, entry, full=True)
        found += problems
        if not problems:  # a step with a problem has no file to trust
            (unverified if "hashes" not in entry else verified).extend(entry["files"])
    return found, verified, unverified


def file_digest(file: Path) -> dict[str, Any]:
    """What the manifest records of a derived file: ``{"sha256": hex digest, "size": bytes}``."""
    return {"sha256": file_sha256(file), "size": file.stat().st_size}


def file_sha256(file: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks; each version of a file (its size,
    modification time and inode) is hashed once per process."""
    info = file.stat()
    version = (str(file), info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev)
    if version not in _DIGESTS:
        digest = hashlib.sha256()
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        if len(_DIGESTS) >= _MAX_DIGESTS:
            _DIGESTS.clear()
        _DIGESTS[version] = digest.hexdigest()
    return _DIGESTS[version]


def replace_derived(
    run: Path, step: str, tables: dict[str, pd.DataFrame], entry: dict[str, Any]
) -> None:
    """Write a step's tables, remove the files it wrote before and no longer does, then
    record `entry` plus the file list and each file's SHA-256 and size in the manifest (last,
    so an interruption leaves the step stale)."""
    old = read_manifest(run).get(step)
    for name, frame in tables.items():
        _write_table(run, name, frame)  # the manifest is written once, last
    previous = old.get("files", []) if isinstance(old, dict) else []
    for name in previous:
        if isinstance(name, str) and name not in tables and DERIVED_NAME.match(name):
            derived_path(run, name).unlink(missing_ok=True)
    hashes = {name: file_digest(derived_path(run, name)) for name in sorted(tables)}
    manifest = read_manifest(run) | {step: entry | {"files": sorted(tables), "hashes": hashes}}
    write_json(run / MANIFEST, manifest)


def heldout_array(run: Path, name: str) -> np.ndarray:
    """An array of `memdash estimate` under RUN/heldout/ (see analysis/ensemble/estimate.py)."""
    if not PLAIN_NAME.match(name):
        raise ValueError(f"heldout file {name!r} is not a plain file name")
    return load_npy(run, f"heldout/{name}", False)


def _recorded(entry: Any, name: str) -> Any:
    """What a manifest entry recorded of file `name` (None: it does not list it, or records
    no hash)."""
    if not isinstance(entry, dict) or name not in (entry.get("files") or []):
        return None
    hashes = entry.get("hashes")
    return hashes.get(name) if isinstance(hashes, dict) else None


def _is_digest(recorded: Any) -> bool:
    return (
        isinstance(recorded, dict)
        and isinstance(recorded.get("sha256"), str)
        and bool(SHA256.match(recorded["sha256"]))
        and type(recorded.get("size")) is int
    )


def _differs(file: Path, recorded: dict[str, Any], *, full: bool) -> bool:
    """Whether a file is not the one the manifest recorded: another size, or (with `full`)
    another SHA-256."""
    if file.stat().st_size != recorded["size"]:
        return True
    return full and file_sha256(file) != recorded["sha256"]


def _mismatch(file: Path, recorded: dict[str, Any]) -> str:
    """How a file differs from what the manifest recorded of it."""
    size = file.stat().st_size
    if size != recorded["size"]:
        said = f"{size} bytes where {MANIFEST} recorded {recorded['size']}"
    else:
        said = f"its SHA-256 is not the one {MANIFEST} recorded (same size, other bytes)"
    return f"{said}; `memdash analyze` computes it again"
