"""The scores step: derived/scores.parquet, the trace scores of every example."""

from __future__ import annotations

import numpy as np
import pandas as pd

from memdash.analysis.measures.curvature import mean_over_epochs
from memdash.analysis.measures.dynamics import trace_scores
from memdash.analysis.record.config import AnalysisConfig
from memdash.analysis.steps._common import Progress, _quiet
from memdash.analysis.store import Run

SCORE_COLUMNS = ("correct", "prob_label", "margin", "loss")
# eval-pass measures recorded on request (Arpit et al.; Garg, Roy et al.): each a score,
# the example's mean over the recorded epochs
MEASURE_COLUMNS = ("loss_sensitivity", "curvature")


def compute_scores(
    run: Run, config: AnalysisConfig | None = None, progress: Progress = _quiet
) -> dict[str, pd.DataFrame]:
    """derived/scores.parquet: one row per example, the trace scores of `measures.dynamics`.

    Columns from the eval source over epochs 1..E, and the same from the
    training-minibatch source with a ``_train`` suffix where the run recorded it; where the
    eval trace has ``loss_sensitivity`` or ``curvature``, its mean over epochs 1..E too (NaN
    where never recorded: curvature off the training split).
    """
    n = run.n_examples()
    out = pd.DataFrame({"example_id": np.arange(n, dtype=np.int64)})
    for source in run.trace_sources():
        progress(f"{source} trace")
        epochs, m = run.trace_grids(source, SCORE_COLUMNS)  # part by part: bounded memory
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
    recorded = [c for c in MEASURE_COLUMNS if c in run.trace_columns("eval")]
    if recorded:
        progress("recorded measures")
        _, grids = run.trace_grids("eval", recorded)
        for column in recorded:
            out[column] = mean_over_epochs(grids[column])
    return {"scores.parquet": out}
