"""The rewinding step of `memdash localize`: each layer of the final model rewound in turn."""

from __future__ import annotations

import pandas as pd

from memdash.analysis.localization.rewinding import rewind
from memdash.analysis.record.config import LocalizeConfig
from memdash.analysis.record.models import layer_names
from memdash.analysis.steps._common import Progress, _quiet
from memdash.analysis.steps.final_model import load
from memdash.analysis.store import Run


def compute_rewinding(
    run: Run, config: LocalizeConfig, progress: Progress = _quiet
) -> dict[str, pd.DataFrame]:
    """derived/rewinding.parquet: per (layer, checkpoint epoch), the final model with
    that layer rewound: ``clean_acc``, ``flipped_acc``, ``test_acc``."""
    data = load(run, config.device)
    progress("rewinding every layer to every checkpoint")
    checkpoints = {e: run.checkpoint(e) for e in run.checkpoint_epochs()}
    rows = rewind(data.model, data.final, checkpoints, layer_names(data.model), data.evaluate)
    return {"rewinding.parquet": pd.DataFrame(rows)}
