"""Analyze a run: compute each derived result that is missing or stale, cache it under derived/.

Every step has a key made of its parameters and what it reads (the run's
committed epochs and status); `derived/manifest.json` holds the key each
result was computed from, written after the result, so an interrupted
analysis recomputes the step. `memdash analyze` and the dashboard call this.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.dynamics import trace_matrices, trace_scores
from analysis.runs import Run

SCORE_COLUMNS = ("correct", "prob_label", "margin", "loss")
STEP_VERSION = {"scores": 1}  # bump when a step's output changes meaning


def compute_scores(run: Run) -> pd.DataFrame:
    """derived/scores.parquet: one row per example, the trace scores of `analysis.dynamics`.

    Columns from the eval source over epochs 1..E, and the same from the
    training-minibatch source with a ``_train`` suffix where the run recorded it.
    """
    n = run.n_examples()
    out = pd.DataFrame({"example_id": np.arange(n, dtype=np.int64)})
    for source in run.trace_sources():
        trace = run.trace(source, columns=["epoch", "example_id", *SCORE_COLUMNS])
        epochs, m = trace_matrices(trace, n, SCORE_COLUMNS)
        if not len(epochs):
            continue
        scores = trace_scores(
            correct=m["correct"],
            prob_label=m["prob_label"],
            margin=m["margin"],
            loss=m["loss"],
            epochs=epochs,
        )
        suffix = "" if source == "eval" else f"_{source}"
        out = out.join(scores.add_suffix(suffix))
    return out


STEPS: dict[str, tuple[str, Callable[[Run], pd.DataFrame]]] = {
    "scores": ("scores.parquet", compute_scores),
}


def step_key(run: Run, step: str, params: dict[str, Any] | None = None) -> str:
    """What a step's result depends on, hashed."""
    payload = {
        "step": step,
        "version": STEP_VERSION[step],
        "params": params or {},
        "epochs_completed": run.epochs_completed,
        "status": run.status,
        "created_at": run.meta.get("created_at"),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def analyze(
    path: str | Path,
    *,
    only: list[str] | None = None,
    force: bool = False,
    progress: Callable[[str, str], None] | None = None,
) -> dict[str, str]:
    """Compute the missing or stale derived results of a run.

    Returns
    -------
    step -> ``computed`` or ``up to date``
    """
    names = only if only else list(STEPS)
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        raise ValueError(f"unknown analysis step(s) {unknown}; valid: {', '.join(STEPS)}")
    run = Run.open(path)
    manifest = run.derived_manifest()
    done: dict[str, str] = {}
    for name in names:
        file, compute = STEPS[name]
        key = step_key(run, name)
        fresh = manifest.get(name) == key and run.derived_path(file).is_file()
        if fresh and not force:
            done[name] = "up to date"
        else:
            if progress is not None:
                progress(name, "computing")
            run.write_derived(file, compute(run))
            run.record_derived(name, key)
            done[name] = "computed"
        if progress is not None:
            progress(name, done[name])
    return done
