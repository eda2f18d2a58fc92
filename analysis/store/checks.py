"""The checks of a run: its run.json (against `schema.RUN_JSON`), the files its committed
epochs promise, links out of it, and the contents `Run.validate` checks beyond the schemas
(splits, trace part rows).

Every check raises `RunFormatError` naming the run, the file and what was expected.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from memdash.analysis import __version__
from memdash.analysis.store.errors import RunFormatError
from memdash.analysis.store.files import check_part, read_parts
from memdash.analysis.store.inputs import FILES, input_form, meta_problem
from memdash.analysis.store.layout import (
    EXAMPLES_COLUMNS,
    GRADS_PART,
    LAYER_GRADS_COLUMNS,
    SCHEMA_VERSION,
    SPLITS,
    TRACE_COLUMNS,
    parts,
)
from memdash.analysis.store.schema import RUN_JSON, kind_of, problem
from memdash.analysis.store.trace import trace_parts


def read_run_json(run: Path) -> dict[str, Any]:
    """RUN/run.json, checked against its schema (`schema.RUN_JSON`: every key memdash reads,
    its type and range), and (once anything is recorded) examples.parquet and the inputs
    (inputs.npy, or the file of the form run.json's ``inputs`` names) beside it. The keys
    every version has come first, then the schema version, then the rest, so a run of
    another version is named as one."""
    file = run / "run.json"
    if not file.is_file():
        raise RunFormatError(run, "run.json", "missing; expected a memdash run directory")
    try:
        meta = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunFormatError(run, "run.json", f"not valid JSON ({err})") from err
    if not isinstance(meta, dict):
        raise RunFormatError(run, "run.json", "expected a JSON object")
    for key in RUN_JSON.required:
        if key not in meta:
            raise RunFormatError(run, "run.json", f"missing key {key!r}")
        kinds = RUN_JSON.keys[key].kinds
        if kind_of(meta[key]) not in kinds:
            raise RunFormatError(
                run, "run.json", f"key {key!r} must be {' or '.join(kinds)}, got {meta[key]!r}"
            )
    if meta["schema_version"] != SCHEMA_VERSION:
        raise RunFormatError(
            run,
            "run.json",
            f"unknown schema_version {meta['schema_version']}; this memdash reads "
            f"{SCHEMA_VERSION} (memdash {__version__})",
        )
    found = problem(meta) or meta_problem(meta)
    if found:
        raise RunFormatError(run, "run.json", found)
    for name in ("examples.parquet", FILES[input_form(meta)]):
        if meta["status"] != "created" and not (run / name).is_file():
            raise RunFormatError(run, name, "missing")
    return meta


def missing_files(run: Path, meta: dict[str, Any]) -> list[str]:
    """The files the committed epochs promise but the run lacks, relative to the run (see
    `Run.missing_files`); `meta` is the run's run.json."""
    if meta.get("estimate_only") or str(meta["status"]) == "created":
        return []  # estimate --out: data and held-out models, no trace; created: nothing
    done = int(meta["epochs_completed"])
    found = trace_parts(run, done)
    config = dict(meta["config"])
    record = config.get("record", {}) if isinstance(config, dict) else {}
    wanted = [f"trace.parquet/eval-epoch_{e:03d}.parquet" for e in range(done + 1)]
    if record.get("record_train", any(s == "train" for s, _ in found)):
        wanted += [f"trace.parquet/train-epoch_{e:03d}.parquet" for e in range(1, done + 1)]
    grads = [int(m.group(1)) for _, m in parts(run / "layer_grads.parquet", GRADS_PART)]
    if grads:
        wanted += [f"layer_grads.parquet/epoch_{e:03d}.parquet" for e in range(1, done + 1)]
    for epoch in record.get("embed_epochs", []):
        if isinstance(epoch, int) and epoch <= done:
            wanted += [
                f"embeddings/epoch_{epoch:03d}/{layer}.npy"
                for layer in record.get("embed_layers", [])
            ]
    for epoch in record.get("checkpoint_epochs", []):
        if isinstance(epoch, int) and epoch <= done:
            wanted.append(f"checkpoints/epoch_{epoch:03d}.safetensors")
    return [f for f in wanted if not (run / f).is_file()]


def check_parts(run: Path, meta: dict[str, Any]) -> None:
    """The quick check of `Run.check_parts`: no link out of the run, every promised file
    present, every trace and layer-gradient part with a readable footer and schema."""
    check_links(run)
    if str(meta["status"]) == "created":
        return  # nothing recorded yet, nothing promised
    done = int(meta["epochs_completed"])
    missing = missing_files(run, meta)
    if missing:
        raise RunFormatError(run, missing[0], f"missing (epochs_completed is {done})")
    check_part(run, run / "examples.parquet", EXAMPLES_COLUMNS, None)
    for file in trace_parts(run, done).values():
        check_part(run, file, TRACE_COLUMNS, None)
    for file, match in parts(run / "layer_grads.parquet", GRADS_PART):
        if int(match.group(1)) <= done:  # a later part is never read (inventory names it)
            check_part(run, file, LAYER_GRADS_COLUMNS, None)


def check_links(run: Path) -> None:
    """Refuse a run whose files or folders are links leading out of the run directory.

    memdash reads and writes only inside a run: a link to elsewhere (another run's
    trace, /etc/passwd, a derived/ folder on another disk) raises RunFormatError naming
    the link and where it leads. Links that stay inside the run are fine.
    """
    root = run.resolve()
    for folder, dirs, files in os.walk(run, followlinks=False):
        for name in sorted(dirs + files):
            link = Path(folder) / name
            if link.is_symlink() and not link.resolve().is_relative_to(root):
                raise RunFormatError(
                    run,
                    str(link.relative_to(run)),
                    f"a link to {link.resolve()}, outside the run directory; memdash reads "
                    "and writes only inside a run (copy the file in instead)",
                )


def check_splits(run: Path, examples: pd.DataFrame) -> None:
    """Every example's split is one of SPLITS."""
    bad_split = set(examples["split"]) - set(SPLITS)
    if bad_split:
        raise RunFormatError(run, "examples.parquet", f"unknown split values {sorted(bad_split)}")


def check_trace_part(run: Path, file: Path, source: str, epoch: int, n_examples: int) -> None:
    """Every row of the (`source`, `epoch`) trace part has those and an id in 0..N-1."""
    table = read_parts(run, [file], TRACE_COLUMNS, None)
    if len(table) and (table["example_id"].min() < 0 or table["example_id"].max() >= n_examples):
        raise RunFormatError(
            run, f"trace.parquet/{file.name}", f"example_id outside 0..{n_examples - 1}"
        )
    if len(table) and not ((table["epoch"] == epoch) & (table["source"] == source)).all():
        raise RunFormatError(
            run,
            f"trace.parquet/{file.name}",
            f"rows must all have source={source!r} and epoch={epoch}",
        )


def ranges(values: list[int]) -> str:
    """Sorted epochs in words: ``none``, ``0..5`` when consecutive, else the list."""
    if not values:
        return "none"
    if values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}..{values[-1]}"
    return str(values)
