"""The flipping step of `memdash localize`: the fewest units whose zeroing flips an example.

`flip_sample` picks the seeded examples (flipped ones, then clean ones) and the
other training examples that measure the collateral damage; `flip_layers`
names the layers whose units may be zeroed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from memdash.analysis.localization.flipping import flip_batched, masked_correct, n_units
from memdash.analysis.measures.curves import training_groups
from memdash.analysis.record.config import LocalizeConfig
from memdash.analysis.record.models import layer_names
from memdash.analysis.steps._common import Progress, _quiet
from memdash.analysis.steps.final_model import load
from memdash.analysis.store import Run

LOCALIZATION_COLUMNS = (
    *("example_id", "kind", "neurons_zeroed", "flipped", "hit_cap"),
    *("accuracy_before", "accuracy_after", "collateral_drop"),
)


def _draw(rng: np.random.Generator, ids: np.ndarray, n: int) -> np.ndarray:
    """Up to `n` of `ids`, drawn without replacement, sorted."""
    return np.sort(rng.choice(ids, size=min(n, len(ids)), replace=False))


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
        take = _draw(rng, np.flatnonzero(groups[kind] & fitted), config.flip_examples)
        picked.append(take)
        kinds += [kind] * len(take)
    train_ids = np.flatnonzero((examples["split"] == "train").to_numpy())
    others = _draw(rng, train_ids, config.flip_others)
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
