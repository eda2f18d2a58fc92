"""Running analysis steps from the dashboard: the pipeline of `memdash analyze` on one run.

The cached reads of `memdash.dashboard.data.run` key on the derived manifest, which a step
rewrites last, so what a step records is read on the next rerun.
"""

from __future__ import annotations

from pathlib import Path


def compute(path: Path, steps: list[str], progress) -> None:
    """Run analysis or localization steps on a run (the pipeline of `memdash analyze`)."""
    from memdash.analysis.steps.pipeline import LOCALIZE_STEPS, STEPS, analyze

    registry = LOCALIZE_STEPS if set(steps) <= set(LOCALIZE_STEPS) else STEPS
    analyze(path, only=steps, steps=registry, progress=progress)  # caches key on the manifest
