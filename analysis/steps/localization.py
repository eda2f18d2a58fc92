"""The localization steps of `memdash localize` (Maini et al. 2023) on a recorded run.

Each rebuilds the run's model from its config and checkpoints (the final
epoch and, for retraining, epoch 0), computes with `memdash.analysis.localization.rewinding` and
`memdash.analysis.localization.flipping`, and returns ``{derived file name: DataFrame}``.
Groups (given labels throughout): ``clean`` (training examples neither
flipped nor canaries), ``flipped`` (``is_noisy``), ``test``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from memdash.analysis.localization.flipping import flip_batched, masked_correct, n_units
from memdash.analysis.localization.rewinding import group_accuracy, retrain, rewind
from memdash.analysis.measures.curves import training_groups
from memdash.analysis.record.config import LocalizeConfig, RunConfig
from memdash.analysis.record.models import layer_names
from memdash.analysis.record.training import make_model, make_optimizer
from memdash.analysis.store import Run, RunFormatError

Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    del message


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


LOCALIZATION_COLUMNS = (
    *("example_id", "kind", "neurons_zeroed", "flipped", "hit_cap"),
    *("accuracy_before", "accuracy_after", "collateral_drop"),
)


def flip_sample(run: Run, config: LocalizeConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seeded examples to flip (flipped ones, then clean ones), their kinds, and the
    fixed batch of other training examples.

    Only examples the final model predicts with their given label are
    candidates: one it gets wrong has nothing to flip.
    """
    examples = run.examples()
    last = run.trace("eval", columns=["example_id", "correct"], epochs=[run.epochs_completed])
    fitted = np.zeros(len(examples), bool)
    fitted[last["example_id"].to_numpy()] = last["correct"].to_numpy(bool)
    groups = training_groups(examples)
    rng = np.random.default_rng(config.seed)
    picked, kinds = [], []
    for kind in ("flipped", "clean"):
        ids = np.flatnonzero(groups[kind] & fitted)
        take = np.sort(rng.choice(ids, size=min(config.flip_examples, len(ids)), replace=False))
        picked.append(take)
        kinds += [kind] * len(take)
    train_ids = np.flatnonzero((examples["split"] == "train").to_numpy())
    others = np.sort(
        rng.choice(train_ids, size=min(config.flip_others, len(train_ids)), replace=False)
    )
    return np.concatenate(picked).astype(np.int64), np.array(kinds), others.astype(np.int64)


def flip_layers(model: nn.Module, config: LocalizeConfig) -> list[str]:
    """The layers whose units flipping may zero: the hidden ones, and ``out`` if asked."""
    names = layer_names(model)
    return names if config.flip_output_layer else names[:-1]


def compute_flipping(
    run: Run, config: LocalizeConfig, progress: Progress = _quiet
) -> dict[str, pd.DataFrame]:
    """derived/localization.parquet (per example) and localization_layers.parquet
    (per example and layer: ``units_zeroed``, long form for heatmaps).

    Per example: ``neurons_zeroed``, ``flipped`` (the prediction left the given
    label), ``hit_cap``, and the accuracy of the other training examples
    (given labels) before and after its units were zeroed, with the
    ``collateral_drop`` between them.
    """
    data = load(run, config.device)
    ids, kinds, others = flip_sample(run, config)
    if not len(ids):
        return {
            "localization.parquet": pd.DataFrame(columns=list(LOCALIZATION_COLUMNS)),
            "localization_layers.parquet": pd.DataFrame(
                columns=["example_id", "kind", "layer", "units_zeroed"]
            ),
        }
    device = data.inputs.device
    layers = flip_layers(data.model, config)
    progress(f"flipping {len(ids)} examples")
    result = flip_batched(
        data.model,
        data.inputs,
        data.labels,
        torch.from_numpy(ids).to(device),
        torch.from_numpy(others).to(device),
        own_weight=config.flip_own_weight,
        max_units=min(config.flip_max_units, n_units(data.model, layers) - 1),
        layers=layers,
    )
    progress("collateral damage")
    train_ids = torch.cat([data.groups["clean"], data.groups["flipped"]]).sort().values
    before = masked_correct(
        data.model,
        data.inputs,
        data.labels,
        {n: torch.ones(1, m.shape[1], dtype=torch.bool) for n, m in result.masks.items()},
        train_ids,
    )[0].numpy()
    after = masked_correct(data.model, data.inputs, data.labels, result.masks, train_ids).numpy()
    position = np.searchsorted(train_ids.cpu().numpy(), ids)
    n_other = len(train_ids) - 1  # every flipped example is a training example
    acc_before = (before.sum() - before[position]) / n_other
    acc_after = (after.sum(axis=1) - after[np.arange(len(ids)), position]) / n_other
    table = pd.DataFrame(
        {
            "example_id": ids,
            "kind": kinds,
            "neurons_zeroed": result.neurons_zeroed,
            "flipped": result.flipped,
            "hit_cap": ~result.flipped,
            "accuracy_before": acc_before,
            "accuracy_after": acc_after,
            "collateral_drop": acc_before - acc_after,
        },
        columns=list(LOCALIZATION_COLUMNS),
    )
    layers = pd.DataFrame(
        {
            "example_id": np.repeat(ids, len(result.layers)),
            "kind": np.repeat(kinds, len(result.layers)),
            "layer": np.tile(result.layers, len(ids)),
            "units_zeroed": result.per_layer.ravel(),
        }
    )
    return {"localization.parquet": table, "localization_layers.parquet": layers}
