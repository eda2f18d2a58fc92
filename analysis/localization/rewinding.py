"""Layer rewinding and layer retraining (Maini et al. 2023).

Rewinding: in the final model, replace one layer's weights by the same
layer's weights from an earlier checkpoint (epoch 0 = initialization) and
measure accuracy, with the given labels, on clean and flipped training
examples and on the test set. If memorization sat in that layer, rewinding it
would drop the flipped examples' accuracy and keep the clean ones'.

Retraining: reset one layer to its initialization, freeze every other layer
(no gradients, evaluation mode, so their weights stay bit-identical), train
that layer on the clean examples only, and measure how much of the flipped
examples' accuracy comes back without ever seeing them. (The original code
froze nothing and trained on the noisy subset; this follows the paper.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from memdash.analysis.record.tied_dropout import example_ids

Groups = dict[str, torch.Tensor]  # group name -> example ids


def group_accuracy(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    groups: Groups,
    *,
    batch_size: int = 2048,
) -> dict[str, float]:
    """Eval-mode accuracy (given labels) of each group: ``{name}_acc``."""
    was_training = model.training
    model.eval()
    out = {}
    try:
        with torch.no_grad():
            for name, ids in groups.items():
                correct = 0
                for part in torch.split(ids, batch_size):
                    with example_ids(model, part):
                        correct += int((model(inputs[part]).argmax(1) == labels[part]).sum())
                out[f"{name}_acc"] = correct / max(len(ids), 1)
    finally:
        model.train(was_training)
    return out


def layer_state(state: dict[str, torch.Tensor], layer: str) -> dict[str, torch.Tensor]:
    """The entries of a state dict that belong to a top-level layer."""
    prefix = f"{layer}."
    return {k: v for k, v in state.items() if k.startswith(prefix)}


def rewind(
    model: nn.Module,
    final: dict[str, torch.Tensor],
    checkpoints: dict[int, dict[str, torch.Tensor]],
    layers: list[str],
    evaluate: Callable[[nn.Module], dict[str, float]],
) -> list[dict]:
    """Accuracy of the final model with each layer rewound to each checkpoint.

    Returns one row per (layer, epoch): ``layer``, ``epoch`` and what
    `evaluate` returns. Rewinding to the final epoch is the final model.
    """
    rows = []
    for layer in layers:
        for epoch, state in sorted(checkpoints.items()):
            model.load_state_dict(final)
            model.load_state_dict(layer_state(state, layer), strict=False)
            rows.append({"layer": layer, "epoch": epoch} | evaluate(model))
    model.load_state_dict(final)
    return rows


def retrain(
    model: nn.Module,
    final: dict[str, torch.Tensor],
    init: dict[str, torch.Tensor],
    layer: str,
    *,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    train_ids: torch.Tensor,
    epochs: int,
    batch_size: int,
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    evaluate: Callable[[nn.Module], dict[str, float]],
    seed: int,
) -> list[dict]:
    """Reset `layer` to `init`, freeze the rest, train it on `train_ids` for `epochs`.

    Returns one row per retraining epoch 0..epochs (0: just reset):
    ``layer``, ``epoch`` and what `evaluate` returns. The model is left with
    the retrained layer; its other parameters are unchanged.
    """
    model.load_state_dict(final)
    model.load_state_dict(layer_state(init, layer), strict=False)
    block = getattr(model, layer)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in block.parameters():
        p.requires_grad_(True)
    opt = make_optimizer(block)
    rows = [{"layer": layer, "epoch": 0} | evaluate(model)]
    generator = torch.Generator().manual_seed(seed)
    try:
        for epoch in range(1, epochs + 1):
            model.eval()
            block.train()  # only the retrained layer's dropout is active
            order = train_ids[
                torch.randperm(len(train_ids), generator=generator).to(train_ids.device)
            ]
            for ids in torch.split(order, batch_size):
                with example_ids(model, ids):
                    loss = F.cross_entropy(model(inputs[ids]), labels[ids])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            rows.append({"layer": layer, "epoch": epoch} | evaluate(model))
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
        model.eval()
    return rows
