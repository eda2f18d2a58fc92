"""The proxies' scoreboard cached: derived/proxies.parquet (`memdash proxies`).

`tables.proxies.compute_proxies` makes the table; this keeps it under RUN/derived/ with a
manifest entry whose key hashes its parameters, the run's training and the recorded SHA-256 of
every file it read, so it is read back while they are unchanged and computed again after
`memdash estimate`, `memdash ssft`, `memdash localize` or `memdash analyze` change them.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pandas as pd

from memdash.analysis.store import Run
from memdash.analysis.tables.proxies import compute_proxies

INPUTS = ("scores", "knn", "flipping", "ssft", "heldout")  # the steps the scoreboard reads
FILE = "proxies.parquet"


def proxies_key(run: Run, params: dict[str, Any]) -> str:
    """What the scoreboard depends on, hashed: its parameters, the run's training and the
    files of each step it reads (their recorded SHA-256s)."""
    manifest = run.derived_manifest()
    payload = {
        "params": params,
        "run": [run.meta.get("created_at"), run.epochs_completed, run.status],
        "inputs": {step: (manifest.get(step) or {}).get("hashes") for step in INPUTS},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def scoreboard_of(
    run: Run, *, share: float = 0.05, n_boot: int = 1000, seed: int = 0, write: bool = True
) -> tuple[pd.DataFrame, bool]:
    """The run's scoreboard, read from derived/proxies.parquet when it is up to date, else
    computed (and, with `write`, stored with its manifest entry). Returns (table, computed)."""
    params = {"share": share, "n_boot": n_boot, "seed": seed}
    key = proxies_key(run, params)
    entry = run.derived_manifest().get("proxies")
    if isinstance(entry, dict) and entry.get("key") == key:
        return run.read_derived(FILE), False
    start = time.perf_counter()
    board = compute_proxies(run, share=share, n_boot=n_boot, seed=seed)
    if write:
        seconds = round(time.perf_counter() - start, 3)
        run.replace_derived(
            "proxies", {FILE: board}, {"key": key, "params": params, "seconds": seconds}
        )
    return board, True
