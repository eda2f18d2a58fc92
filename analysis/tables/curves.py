"""A run's accuracy and loss curves by kind of example (`measures.curves` on its trace)."""

from __future__ import annotations

import pandas as pd

from memdash.analysis.measures.curves import accuracy_curves_from_grids
from memdash.analysis.store import Run


def run_accuracy_curves(run: Run, source: str) -> pd.DataFrame:
    """`accuracy_curves` of a run's trace from `source`, epoch 0 included, read part by part
    (`Run.trace_grids`): the long trace never sits in memory."""
    examples = run.examples(["split", "is_noisy", "is_canary"])
    epochs, grids = run.trace_grids(source, ["correct", "loss"], first_epoch=0)
    return accuracy_curves_from_grids(epochs, grids["correct"], grids["loss"], examples)
