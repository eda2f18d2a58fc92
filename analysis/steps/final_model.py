"""A complete run's final model, rebuilt for the localization steps (Maini et al. 2023).

`load` rebuilds the run's model from its config and its final checkpoint, with
the tensors the experiments of `memdash.analysis.localization` need. Groups
(given labels throughout): ``clean`` (training examples neither flipped nor
canaries), ``flipped`` (``is_noisy``), ``test``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from memdash.analysis.localization.rewinding import group_accuracy
from memdash.analysis.measures.curves import training_groups
from memdash.analysis.record.config import RunConfig
from memdash.analysis.record.training import make_model
from memdash.analysis.store import Run, RunFormatError


@dataclass
class Loaded:
    """A run's final model and the tensors the experiments need."""

    config: RunConfig
    model: nn.Module
    final: dict[str, torch.Tensor]
    inputs: torch.Tensor
    labels: torch.Tensor
    groups: dict[str, torch.Tensor]  # clean, flipped, test ids

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return group_accuracy(model, self.inputs, self.labels, self.groups)


def load(run: Run, device: str = "cpu") -> Loaded:
    """The final model of a complete run (its last epoch must be checkpointed)."""
    if run.status != "complete":
        raise RunFormatError(
            run.path, "run.json", f"status {run.status!r}: localize a complete run"
        )
    last = run.epochs_completed
    if last not in run.checkpoint_epochs():
        raise RunFormatError(
            run.path,
            f"checkpoints/epoch_{last:03d}.safetensors",
            f"missing: localization needs the final weights; recorded epochs "
            f"{run.checkpoint_epochs()} (retrain with --checkpoint-epochs 0,{last})",
        )
    config = RunConfig.from_dict(run.config)
    inputs = torch.from_numpy(np.array(run.inputs(), dtype=np.float32)).to(device)
    model = make_model(config, tuple(inputs.shape[1:]), run.n_classes).to(device)
    final = {k: v.to(device) for k, v in run.checkpoint(last).items()}
    model.load_state_dict(final)
    model.eval()
    examples = run.examples()
    groups = {
        k: torch.from_numpy(np.flatnonzero(v)).to(device)
        for k, v in training_groups(examples).items()
    }
    labels = torch.tensor(examples["label"].to_numpy(np.int64), device=device)
    return Loaded(config, model, final, inputs, labels, groups)
