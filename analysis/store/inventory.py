"""Every file of a run folder, sorted by what the store makes of it (docs/run-format.md).

- **expected**: a file the store writes, of a committed epoch (its content is checked by
  `Run.validate` and the derived manifest's hashes);
- **leftovers** of a writer that was killed: the hidden temporary file of an interrupted
  write, an intact part of an epoch after ``epochs_completed``, a derived table no step of
  the manifest lists. memdash never reads them and overwrites them; they are named, and the
  run is still valid;
- **unexpected**: a name the store never writes (a user's notes, a copy of a part), and a
  part of an epoch the run never committed that does not read: ``pandas.read_parquet`` of
  the trace folder reads every file in it and fails on such a file, so the promise that a
  run reads without memdash would break. `memdash info` names each and fails.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from memdash.analysis.store.errors import RunFormatError
from memdash.analysis.store.files import check_part
from memdash.analysis.store.inputs import FILES
from memdash.analysis.store.layout import (
    CHECKPOINT,
    DERIVED_NAME,
    EPOCH_DIR,
    GRADS_PART,
    HELDOUT_FILE,
    LAYER_GRADS_COLUMNS,
    PLAIN_NAME,
    TEMPORARY,
    TOKENIZER_FILE,
    TOKENS_PART,
    TRACE_COLUMNS,
    TRACE_PART,
)
from memdash.analysis.store.lock import LOCK_NAME

TOP_FILES = ("run.json", "examples.parquet", *FILES.values(), TOKENIZER_FILE, LOCK_NAME)
STRANGER = "not a file memdash writes"
# the folders of parts that other tools read whole (pandas.read_parquet(RUN/NAME))
PART_FOLDERS = {"trace.parquet": TRACE_COLUMNS, "layer_grads.parquet": LAYER_GRADS_COLUMNS}

Found = list[tuple[str, str]]


def survey(run: Path, meta: dict[str, Any], manifest: dict[str, Any]) -> tuple[Found, Found]:
    """The files of a run folder the store does not account for.

    Parameters
    ----------
    run : the run directory
    meta : its run.json (``epochs_completed``)
    manifest : its derived/manifest.json as written (the files each step lists)

    Returns
    -------
    unexpected : (file relative to the run, why) of every file that makes the run invalid
    leftovers : (file, why) of every file a killed writer left, which memdash ignores
    """
    done = int(meta["epochs_completed"])
    listed = {
        name
        for entry in manifest.values()
        if isinstance(entry, dict) and isinstance(entry.get("files"), list)
        for name in entry["files"]
        if isinstance(name, str)
    }
    unexpected: Found = []
    leftovers: Found = []
    for rel in _entries(run):
        verdict, why = _classify(run, rel, done, listed)
        if verdict == "unexpected":
            unexpected.append((rel, why))
        elif verdict == "leftover":
            leftovers.append((rel, why))
    return unexpected, leftovers


def _entries(run: Path) -> list[str]:
    """Every file of the run folder (and every link to a folder), relative, sorted; links
    are not followed."""
    found = []
    for folder, dirs, files in os.walk(run, followlinks=False):
        here = Path(folder)
        linked = [d for d in dirs if (here / d).is_symlink()]
        found += [(here / name).relative_to(run).as_posix() for name in files + linked]
    return sorted(found)


def _classify(run: Path, rel: str, done: int, listed: set[str]) -> tuple[str, str]:
    """("expected" | "leftover" | "unexpected", why) for the file `rel` of the run."""
    parts = rel.split("/")
    top, name = parts[0], parts[-1]
    if TEMPORARY.match(name):
        return "leftover", "a temporary file of an interrupted write (never read; delete it)"
    if len(parts) == 1:
        return ("expected", "") if name in TOP_FILES else ("unexpected", STRANGER)
    if top in PART_FOLDERS and len(parts) == 2:
        match = (TRACE_PART if top == "trace.parquet" else GRADS_PART).match(name)
        if match:
            return _part(run, rel, int(match.groups()[-1]), done, PART_FOLDERS[top])
        if not name.startswith((".", "_")):  # the files pyarrow does not skip
            return "unexpected", f"{STRANGER}: pandas.read_parquet(RUN/{top}) fails on it"
    if top == "embeddings" and len(parts) == 3:
        epoch = EPOCH_DIR.match(parts[1])
        if epoch and name.endswith(".npy") and PLAIN_NAME.match(name):
            return _epoch(int(epoch.group(1)), done)
    if top == "tokens" and len(parts) == 2 and (epoch := TOKENS_PART.match(name)):
        return _epoch(int(epoch.group(1)), done)
    if top == "checkpoints" and len(parts) == 2 and (epoch := CHECKPOINT.match(name)):
        return _epoch(int(epoch.group(1)), done)
    if rel == "resume/state.safetensors" or (
        top == "heldout" and len(parts) == 2 and HELDOUT_FILE.match(name)
    ):
        return "expected", ""
    if top == "derived":
        inner = "/".join(parts[1:])
        if inner == "manifest.json" or inner in listed:
            return "expected", ""
        if DERIVED_NAME.match(inner) and inner.endswith(".parquet"):
            return "leftover", (
                "not listed in derived/manifest.json (left by an interrupted analysis; "
                "memdash reads only the files a step lists)"
            )
    return "unexpected", STRANGER


def _epoch(epoch: int, done: int) -> tuple[str, str]:
    """A file of one epoch: expected when the epoch is committed, else a leftover."""
    if epoch <= done:
        return "expected", ""
    return "leftover", (
        f"epoch {epoch}, after epochs_completed {done}: left by a process killed mid-epoch "
        "(memdash ignores it; --resume overwrites it)"
    )


def _part(run: Path, rel: str, epoch: int, done: int, columns: dict[str, str]) -> tuple[str, str]:
    """A part of a folder other tools read whole: one of an epoch never committed is a
    leftover while it reads with its table's schema, unexpected when it does not."""
    if epoch <= done:
        return "expected", ""
    try:
        check_part(run, run / rel, columns, None)
    except RunFormatError as err:
        top = rel.split("/")[0]
        return "unexpected", (
            f"epoch {epoch}, which the run never committed (epochs_completed is {done}), and "
            f"{err.problem}: pandas.read_parquet(RUN/{top}) fails on it; delete it"
        )
    return _epoch(epoch, done)
