"""Neuron flipping (Maini et al. 2023, "Can Neural Network Memorization Be Localized?").

For one example (input x, given label y), repeatedly zero the single unit (a
linear layer's neuron or a convolution's channel) of highest importance

    importance(unit) = sum over the unit's weights w (and bias) of w * dObjective/dw,
    Objective = mean loss of a fixed batch of other examples - B * loss(x, y),

until the network's prediction on x is no longer y, or `max_units` units are
zeroed. Zeroing the unit with the largest importance lowers the objective the
most to first order: it raises the example's loss while sparing the others'.
Memorized examples flip after few units; the paper finds them spread over
several layers, with little collateral damage to the other examples.

Two implementations with identical results:

* `flip_one` follows the definition literally, one example at a time:
  gradients with respect to the weights, units zeroed in the weights;
* `flip_batched` runs many examples at once, each with its own unit mask
  applied to the weight layers' outputs. A unit's pre-activation z is linear
  in its weights, so sum_w w * dObj/dw = sum over rows (and positions) of
  z * dObj/dz: one backward pass to the layer outputs gives every example's
  importances.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from memdash.analysis.record.models import layer_names, unit_module
from memdash.analysis.record.tied_dropout import example_ids


@dataclass
class FlipResult:
    """What flipping did to each of M examples (in the order given).

    Attributes
    ----------
    layers : the layers whose units could be zeroed, in forward order
    per_layer : int64, shape (M, L), units zeroed per layer
    flipped : bool, shape (M,), the prediction left the given label
    masks : layer -> bool tensor (M, units), False where a unit was zeroed
    """

    layers: list[str]
    per_layer: np.ndarray
    flipped: np.ndarray
    masks: dict[str, torch.Tensor]

    @property
    def neurons_zeroed(self) -> np.ndarray:
        return self.per_layer.sum(axis=1)


def units(model: nn.Module, layers: list[str] | None = None) -> dict[str, nn.Module]:
    """Each layer's weight layer, whose output units flipping may zero (all layers by default)."""
    names = layer_names(model)
    unknown = sorted(set(layers or []) - set(names))
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}; the model's layers: {', '.join(names)}")
    return {name: unit_module(model, name) for name in names if layers is None or name in layers}


def _n_units(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def n_units(model: nn.Module, layers: list[str] | None = None) -> int:
    """How many units (neurons and channels) the layers hold together."""
    return sum(_n_units(m) for m in units(model, layers).values())


class UnitMasks:
    """Forward hooks that multiply each weight layer's output by a per-row unit mask.

    Inside `applied(masks, group)`, row r of a batch is masked by
    ``masks[layer][group[r]]``; the masked outputs are kept in `outputs`.
    """

    def __init__(self, modules: dict[str, nn.Module]) -> None:
        self.modules = modules
        self.outputs: dict[str, torch.Tensor] = {}

    @contextmanager
    def applied(self, masks: dict[str, torch.Tensor], group: torch.Tensor) -> Iterator[None]:
        def hook(name: str):
            def apply(_module, _inputs, out: torch.Tensor) -> torch.Tensor:
                mask = masks[name][group].to(out.dtype)
                out = out * mask.view(*mask.shape, *(1,) * (out.dim() - 2))
                self.outputs[name] = out
                return out

            return apply

        handles = [m.register_forward_hook(hook(name)) for name, m in self.modules.items()]
        try:
            yield
        finally:
            for h in handles:
                h.remove()
            self.outputs = {}


def _check(
    model: nn.Module, examples: torch.Tensor, max_units: int, layers: list[str] | None
) -> dict[str, nn.Module]:
    modules = units(model, layers)
    total = sum(_n_units(m) for m in modules.values())
    if not 0 <= max_units < total:
        raise ValueError(f"max_units must lie in 0..{total - 1} (the model has {total} units)")
    if examples.dim() != 1:
        raise ValueError(f"examples must be a 1-D tensor of ids, got shape {tuple(examples.shape)}")
    return modules


def flip_batched(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    examples: torch.Tensor,
    others: torch.Tensor,
    *,
    own_weight: float = 1.0,
    max_units: int = 100,
    layers: list[str] | None = None,
    max_rows: int = 4096,
) -> FlipResult:
    """Flip many examples at once, each with its own unit mask.

    Parameters
    ----------
    model : evaluated in eval mode; its weights are not changed
    inputs, labels : every example's input and given label (index = id)
    examples : int64, shape (M,), the ids to flip
    others : int64, shape (K,), the fixed batch of other examples (an
        example in it is left out of its own objective)
    own_weight : B, the weight of the example's own loss
    max_units : the cap on zeroed units per example
    layers : the layers whose units may be zeroed (default: all)
    max_rows : rows per forward pass (examples are processed in chunks)
    """
    modules = _check(model, examples, max_units, layers)
    chunk = max(1, max_rows // (1 + len(others)))
    parts = [
        _flip_chunk(model, modules, inputs, labels, ids, others, own_weight, max_units)
        for ids in torch.split(examples, chunk)
    ]
    return FlipResult(
        layers=list(modules),
        per_layer=np.concatenate([p.per_layer for p in parts]),
        flipped=np.concatenate([p.flipped for p in parts]),
        masks={name: torch.cat([p.masks[name] for p in parts]) for name in modules},
    )


def _flip_chunk(model, modules, inputs, labels, examples, others, own_weight, max_units):
    was_training = model.training
    model.eval()
    device = inputs.device
    m, k = len(examples), len(others)
    layers = list(modules)
    sizes = torch.tensor([_n_units(modules[name]) for name in layers])
    starts = torch.cumsum(sizes, 0) - sizes
    masks = {
        name: torch.ones(m, int(n), dtype=torch.bool, device=device)
        for name, n in zip(layers, sizes, strict=True)
    }
    per_layer = np.zeros((m, len(layers)), np.int64)
    flipped = np.zeros(m, bool)
    done = torch.zeros(m, dtype=torch.bool, device=device)
    hooks = UnitMasks(modules)
    try:
        for step in range(max_units + 1):
            active = torch.nonzero(~done).flatten()
            if not len(active):
                break
            ex = examples[active]
            rows = torch.cat([ex[:, None], others[None, :].expand(len(ex), k)], 1).flatten()
            group = torch.arange(len(ex), device=device).repeat_interleave(1 + k)
            with (
                hooks.applied({n: masks[n][active] for n in layers}, group),
                example_ids(model, rows),
            ):
                logits = model(inputs[rows])
                outputs = [hooks.outputs[n] for n in layers]
            own = logits.view(len(ex), 1 + k, -1)[:, 0]
            now = own.argmax(1) != labels[ex]
            flipped[active[now].cpu().numpy()] = True
            done[active[now]] = True
            if step == max_units:
                break
            go = torch.nonzero(~now).flatten()
            if not len(go):
                continue
            weight = _row_weights(ex, others, own_weight)
            objective = (weight * F.cross_entropy(logits, labels[rows], reduction="none")).sum()
            grads = torch.autograd.grad(objective, outputs)
            scores = []
            for name, z, g in zip(layers, outputs, grads, strict=True):
                prod = (z * g).flatten(2).sum(2) if z.dim() > 2 else z * g
                per_ex = torch.zeros(len(ex), prod.shape[1], dtype=prod.dtype, device=device)
                per_ex.index_add_(0, group, prod.detach())
                scores.append(per_ex.masked_fill(~masks[name][active], -torch.inf))
            best = torch.cat(scores, 1)[go].argmax(1).cpu()
            layer_of = torch.searchsorted(starts, best, right=True) - 1
            for li, name in enumerate(layers):
                pick = layer_of == li
                if pick.any():
                    who = active[go[pick.to(go.device)]]
                    masks[name][who, (best[pick] - starts[li]).to(device)] = False
                    per_layer[who.cpu().numpy(), li] += 1
    finally:
        model.train(was_training)
    return FlipResult(layers, per_layer, flipped, {n: masks[n].cpu() for n in layers})


def _row_weights(examples: torch.Tensor, others: torch.Tensor, own_weight: float) -> torch.Tensor:
    """Per row of the (example, others...) groups: -B for the example, 1/#others for the
    others, 0 for an other that is the example itself."""
    is_self = others[None, :] == examples[:, None]
    n_others = (~is_self).sum(1, keepdim=True).clamp(min=1)
    other_w = (~is_self).to(torch.float32) / n_others
    own_w = torch.full((len(examples), 1), -own_weight, device=examples.device)
    return torch.cat([own_w, other_w], 1).flatten()


def flip_one(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    example: int,
    others: torch.Tensor,
    *,
    own_weight: float = 1.0,
    max_units: int = 100,
    layers: list[str] | None = None,
) -> tuple[list[tuple[str, int]], bool]:
    """The definition, for one example: gradients with respect to the weights,
    units zeroed in a copy of the model's weights.

    Returns
    -------
    the zeroed units in order, as (layer, unit); whether the prediction flipped
    """
    model = copy.deepcopy(model).eval()
    modules = _check(model, torch.tensor([example]), max_units, layers)
    rows = torch.cat([torch.tensor([example], device=others.device), others[others != example]])
    zeroed: dict[str, set[int]] = {name: set() for name in modules}
    order: list[tuple[str, int]] = []
    for step in range(max_units + 1):
        with example_ids(model, rows):
            logits = model(inputs[rows])
        if logits[0].argmax() != labels[example]:
            return order, True
        if step == max_units:
            return order, False
        losses = F.cross_entropy(logits, labels[rows], reduction="none")
        objective = losses[1:].mean() - own_weight * losses[0]
        params = [p for m in modules.values() for p in (m.weight, m.bias)]
        grads = iter(torch.autograd.grad(objective, params))
        scores = []
        with torch.no_grad():
            for name, m in modules.items():
                gw, gb = next(grads), next(grads)
                score = (m.weight * gw).flatten(1).sum(1) + m.bias * gb
                score[list(zeroed[name])] = -torch.inf
                scores.append(score)
        best = int(torch.cat(scores).argmax())
        for name, score in zip(modules, scores, strict=True):
            if best < len(score):
                with torch.no_grad():
                    modules[name].weight[best] = 0
                    modules[name].bias[best] = 0
                zeroed[name].add(best)
                order.append((name, best))
                break
            best -= len(score)
    raise AssertionError("unreachable")


def masked_correct(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    masks: dict[str, torch.Tensor],
    eval_ids: torch.Tensor,
    *,
    max_rows: int = 65_536,
) -> torch.Tensor:
    """Whether each of G masked networks predicts each evaluated example's given label.

    Parameters
    ----------
    masks : layer -> bool (G, units), as `FlipResult.masks`
    eval_ids : int64 (E,), the examples to evaluate

    Returns
    -------
    bool, shape (G, E)
    """
    modules = units(model, list(masks))
    was_training = model.training
    model.eval()
    n_masks = len(next(iter(masks.values())))
    chunk = max(1, max_rows // len(eval_ids))
    hooks = UnitMasks(modules)
    out = []
    try:
        with torch.no_grad():
            for lo in range(0, n_masks, chunk):
                part = {n: mk[lo : lo + chunk].to(inputs.device) for n, mk in masks.items()}
                g = len(next(iter(part.values())))
                rows = eval_ids.repeat(g)
                group = torch.arange(g, device=inputs.device).repeat_interleave(len(eval_ids))
                with hooks.applied(part, group), example_ids(model, rows):
                    pred = model(inputs[rows]).argmax(1)
                out.append((pred == labels[rows]).view(g, len(eval_ids)))
    finally:
        model.train(was_training)
    return torch.cat(out).cpu()
