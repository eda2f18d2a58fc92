"""Analyze a run: compute each derived result that is missing or stale, cache it under derived/.

Every step has a key made of its version, its parameters (the fields of
`AnalysisConfig` it uses) and what it reads (the run's committed epochs, its
status and creation time). `derived/manifest.json` records, per step, that
key, the parameters, the seconds it took, the files written and each file's SHA-256 and
size; it is
updated after the files, so an interrupted analysis recomputes the step, and so
is a step whose file no longer matches its hash (truncated, overwritten).
`memdash analyze` (STEPS) and `memdash localize` (LOCALIZE_STEPS) and the
dashboard call `analyze`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from memdash.analysis.record.config import AnalysisConfig, LocalizeConfig
from memdash.analysis.steps.exposure import compute_exposure
from memdash.analysis.steps.extraction import compute_extraction
from memdash.analysis.steps.flipping import compute_flipping
from memdash.analysis.steps.jobs import Jobs, jobs_for
from memdash.analysis.steps.knn import compute_knn
from memdash.analysis.steps.retraining import compute_retraining
from memdash.analysis.steps.rewinding import compute_rewinding
from memdash.analysis.steps.scores import compute_scores
from memdash.analysis.steps.text_exposure import compute_text_exposure
from memdash.analysis.steps.umap import compute_umap
from memdash.analysis.store import Run, write_lock

Config = AnalysisConfig | LocalizeConfig
KINDS = ("classifier", "text")


@dataclass(frozen=True)
class Step:
    """One cached analysis: what computes it and which parameters it depends on."""

    compute: Callable[[Run, Any, Callable[[str], None]], dict[str, pd.DataFrame]]
    params: tuple[str, ...]  # the config fields in its key
    version: int  # bump when the step's output changes meaning
    kinds: tuple[str, ...] = KINDS  # the kinds of run it applies to (`run_kind`)
    text_version: int | None = None  # on text runs, its own version (a text code path)
    parts: bool = False  # runs independent parts through `jobs` (local or Ray; `jobs_for`)


def run_kind(run: Run) -> str:
    """``text`` for a language model's run (sequences), else ``classifier``."""
    return "text" if run.is_text else "classifier"


def applies(step: str, run: Run) -> bool:
    """Whether a step has anything to compute on this kind of run (k-NN against the
    network's predicted class, for one, needs a classifier)."""
    return run_kind(run) in ALL_STEPS[step].kinds


def _exposure(run: Run, config: Any, progress: Callable[[str], None]) -> dict[str, pd.DataFrame]:
    """The canaries' exposure: the Secret Sharer's ranking among every secret on a text run,
    the loss-based interpolation and extrapolation on a classifier's."""
    if run.is_text:
        return compute_text_exposure(run, config, progress)
    return compute_exposure(run, config, progress)


STEPS: dict[str, Step] = {
    "scores": Step(compute_scores, (), 1),
    "knn": Step(
        compute_knn,
        (
            *("knn_k", "knn_metric", "knn_pca", "knn_leave_one_out"),
            *("knn_method", "knn_lists", "knn_probes"),  # the search: exact or IVF
        ),
        1,
        kinds=("classifier",),
        parts=True,
    ),
    "umap": Step(
        compute_umap, ("umap_neighbors", "umap_min_dist", "seed", "umap_sample"), 2, parts=True
    ),
    "exposure": Step(_exposure, (), 4, text_version=1),
    "extraction": Step(compute_extraction, (), 1, kinds=("text",)),
}
_FLIP = (
    *("flip_examples", "flip_max_units", "flip_others", "flip_own_weight"),
    *("flip_output_layer", "seed"),
)
LOCALIZE_STEPS: dict[str, Step] = {
    "rewinding": Step(compute_rewinding, (), 1, kinds=("classifier",)),
    "retraining": Step(compute_retraining, ("retrain_epochs", "seed"), 1, kinds=("classifier",)),
    "flipping": Step(compute_flipping, _FLIP, 1, kinds=("classifier",)),
}
ALL_STEPS = STEPS | LOCALIZE_STEPS


def _default_config(step: str) -> Config:
    return LocalizeConfig() if step in LOCALIZE_STEPS else AnalysisConfig()


# parameters added after results were cached whose defaults keep every result a cached one
# can be (k-NN: exact search below `ivf`'s size, IVF above, where a cached exact search is
# the better answer; UMAP: every point fitted up to the sample size, byte for byte as
# before): left out of a step's key and params while at their defaults, so that a run
# analysed before them (the sample suite among them) stays up to date
LATER_DEFAULTS = {
    "knn_method": AnalysisConfig.knn_method,
    "knn_lists": AnalysisConfig.knn_lists,
    "knn_probes": AnalysisConfig.knn_probes,
    "umap_sample": AnalysisConfig.umap_sample,
}


def step_params(step: str, config: Config | None = None) -> dict[str, Any]:
    """The parameters a step's result depends on (those of `LATER_DEFAULTS` only when set
    to something else than their default)."""
    values = (config or _default_config(step)).to_dict()
    return {
        name: values[name]
        for name in ALL_STEPS[step].params
        if name not in LATER_DEFAULTS or values[name] != LATER_DEFAULTS[name]
    }


def step_key(run: Run, step: str, config: Config | None = None) -> str:
    """What a step's result depends on, hashed."""
    payload = {
        "step": step,
        "version": ALL_STEPS[step].version,
        "params": step_params(step, config),
        "epochs_completed": run.epochs_completed,
        "status": run.status,
        "created_at": run.meta.get("created_at"),
    }
    if run.is_text:  # a text run's steps keep their own versions (classifiers' keys unchanged)
        payload["text_version"] = ALL_STEPS[step].text_version
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def is_fresh(run: Run, step: str, config: Config | None = None) -> bool:
    """Whether the step's cached result exists, was computed from the current inputs, and
    every file of it still matches the SHA-256 and size the manifest recorded when it was
    written (`Run.derived_manifest` leaves out a step with a damaged file)."""
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
    config: Config | None = None,
    progress: Callable[[str, str], None] | None = None,
    steps: dict[str, Step] = STEPS,
    backend: str = "local",
    address: str | None = None,
    workers: int | None = None,
) -> dict[str, str]:
    """Compute the missing or stale derived results of a run.

    Parameters
    ----------
    only : the steps to consider (default: all of `steps`, in order)
    force : recompute even what is up to date
    config : the parameters (AnalysisConfig for STEPS, LocalizeConfig for LOCALIZE_STEPS)
    progress : called with (step, what it is doing)
    steps : STEPS (`memdash analyze`) or LOCALIZE_STEPS (`memdash localize`)
    backend, address, workers : where the independent parts of the steps that have them
        (each layer and epoch's k-NN, each layer's UMAP) run: ``local`` (here, one after the
        other) or ``ray`` (Ray tasks on the cluster at `address`, or on a local one of
        `workers` CPUs started when first needed; the same results byte for byte)

    Returns
    -------
    step -> ``computed``, ``up to date`` or ``not for text runs`` / ``not for classifiers``
    (a step that does not apply to the run's kind, `applies`)
    """
    config = config or (LocalizeConfig() if steps is LOCALIZE_STEPS else AnalysisConfig())
    names = only if only else list(steps)
    unknown = [n for n in names if n not in steps]
    if unknown:
        raise ValueError(f"unknown step(s) {unknown}; valid: {', '.join(steps)}")
    jobs = jobs_for(backend, address, workers)
    run = Run.open(path)
    run.check_parts()  # a missing or damaged part is named here, not deep inside a step
    report = progress or (lambda step, state: None)
    done: dict[str, str] = {}
    with write_lock(run.path, "memdash analyze", on_wait=lambda text: report(names[0], text)):
        try:
            for name in names:
                done[name] = _run_step(run, name, steps[name], config, force, report, jobs)
                report(name, done[name])
        finally:
            jobs.close()
    return done


def _run_step(
    run: Run,
    name: str,
    step: Step,
    config: Config,
    force: bool,
    report: Callable[[str, str], None],
    jobs: Jobs,
) -> str:
    """Compute one step of `analyze` if it applies and is not up to date; what became of it."""
    if not applies(name, run):
        return f"not for {'text runs' if run.is_text else 'classifiers'}"
    if is_fresh(run, name, config) and not force:
        return "up to date"
    report(name, "computing")
    start = time.perf_counter()
    extra = {"jobs": jobs} if step.parts else {}
    tables = step.compute(run, config, partial(report, name), **extra)
    entry = {"key": step_key(run, name, config), "params": step_params(name, config)}
    entry["seconds"] = round(time.perf_counter() - start, 3)  # the proxies' cost
    run.replace_derived(name, tables, entry)
    return "computed"
