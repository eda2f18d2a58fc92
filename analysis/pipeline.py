"""Analyze a run: compute each derived result that is missing or stale, cache it under derived/.

Every step has a key made of its version, its parameters (the fields of
`AnalysisConfig` it uses) and what it reads (the run's committed epochs, its
status and creation time). `derived/manifest.json` records, per step, that
key, the parameters and the files written; it is updated after the files, so
an interrupted analysis recomputes the step. `memdash analyze` and the
dashboard call `analyze`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.config import AnalysisConfig
from analysis.runs import Run
from analysis.steps import compute_exposure, compute_knn, compute_scores, compute_umap


@dataclass(frozen=True)
class Step:
    """One cached analysis: what computes it and which parameters it depends on."""

    compute: Callable[[Run, AnalysisConfig, Callable[[str], None]], dict[str, pd.DataFrame]]
    params: tuple[str, ...]  # the AnalysisConfig fields in its key
    version: int  # bump when the step's output changes meaning


STEPS: dict[str, Step] = {
    "scores": Step(compute_scores, (), 1),
    "knn": Step(compute_knn, ("knn_k", "knn_metric", "knn_pca", "knn_leave_one_out"), 1),
    "umap": Step(compute_umap, ("umap_neighbors", "umap_min_dist", "seed"), 1),
    "exposure": Step(compute_exposure, (), 1),
}


def step_params(step: str, config: AnalysisConfig) -> dict[str, Any]:
    """The parameters a step's result depends on."""
    values = config.to_dict()
    return {name: values[name] for name in STEPS[step].params}


def step_key(run: Run, step: str, config: AnalysisConfig | None = None) -> str:
    """What a step's result depends on, hashed."""
    payload = {
        "step": step,
        "version": STEPS[step].version,
        "params": step_params(step, config or AnalysisConfig()),
        "epochs_completed": run.epochs_completed,
        "status": run.status,
        "created_at": run.meta.get("created_at"),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def is_fresh(run: Run, step: str, config: AnalysisConfig | None = None) -> bool:
    """Whether the step's cached result exists and was computed from the current inputs."""
    entry = run.derived_manifest().get(step)
    if not isinstance(entry, dict) or entry.get("key") != step_key(run, step, config):
        return False
    files = entry.get("files")
    return isinstance(files, list) and all(
        isinstance(f, str) and run.derived_path(f).is_file() for f in files
    )


def analyze(
    path: str | Path,
    *,
    only: list[str] | None = None,
    force: bool = False,
    config: AnalysisConfig | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> dict[str, str]:
    """Compute the missing or stale derived results of a run.

    Parameters
    ----------
    only : the steps to consider (default: all of STEPS, in order)
    force : recompute even what is up to date
    progress : called with (step, what it is doing)

    Returns
    -------
    step -> ``computed`` or ``up to date``
    """
    config = config or AnalysisConfig()
    names = only if only else list(STEPS)
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        raise ValueError(f"unknown analysis step(s) {unknown}; valid: {', '.join(STEPS)}")
    run = Run.open(path)
    report = progress or (lambda step, state: None)
    done: dict[str, str] = {}
    for name in names:
        if is_fresh(run, name, config) and not force:
            done[name] = "up to date"
        else:
            report(name, "computing")
            tables = STEPS[name].compute(run, config, lambda what, name=name: report(name, what))
            run.replace_derived(
                name,
                tables,
                {"key": step_key(run, name, config), "params": step_params(name, config)},
            )
            done[name] = "computed"
        report(name, done[name])
    return done
