"""The retraining step of `memdash localize`: each layer reset and retrained alone on clean data."""

from __future__ import annotations

import pandas as pd

from memdash.analysis.localization.rewinding import retrain
from memdash.analysis.record.config import LocalizeConfig
from memdash.analysis.record.models import layer_names
from memdash.analysis.record.training import make_optimizer
from memdash.analysis.steps._common import Progress, _quiet
from memdash.analysis.steps.final_model import load
from memdash.analysis.store import Run, RunFormatError


def compute_retraining(
    run: Run, config: LocalizeConfig, progress: Progress = _quiet
) -> dict[str, pd.DataFrame]:
    """derived/retraining.parquet: per (layer, retraining epoch 0..R), with that layer
    reset to initialization and trained alone on clean examples: the accuracies."""
    data = load(run, config.device)
    if 0 not in run.checkpoint_epochs():
        raise RunFormatError(
            run.path, "checkpoints/epoch_000.safetensors", "missing: retraining resets layers to it"
        )
    init = {k: v.to(config.device) for k, v in run.checkpoint(0).items()}
    rows = []
    for layer in layer_names(data.model):
        progress(f"retraining {layer}")
        rows += retrain(
            data.model,
            data.final,
            init,
            layer,
            inputs=data.inputs,
            labels=data.labels,
            train_ids=data.groups["clean"],
            epochs=config.retrain_epochs,
            batch_size=data.config.train.batch_size,
            make_optimizer=lambda block: make_optimizer(data.config, block),
            evaluate=data.evaluate,
            seed=config.seed,
        )
    data.model.load_state_dict(data.final)
    return {"retraining.parquet": pd.DataFrame(rows)}
