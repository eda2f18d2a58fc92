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
  importances. The rows are independent (eval mode), so the importance splits
  into the example's own row and the others' rows, and the others' rows
  depend only on the mask, not on the example: at each step the others'
  batch runs once per distinct mask among the examples (at step 0 every mask
  is empty: one pass serves them all), and only examples that did not flip
  at this step need it. Each example's own row runs with its own mask.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from memdash.analysis.localization.unit_masks import (
    FlipResult,
    UnitMasks,
    _n_units,
    masked_correct,
    n_units,
    units,
)
from memdash.analysis.record.tied_dropout import example_ids

__all__ = [
    "FlipResult",
    "UnitMasks",
    "flip_batched",
    "flip_one",
    "masked_correct",
    "n_units",
    "units",
]


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
    max_rows : rows per forward pass (larger batches run in chunks)
    """
    modules = _check(model, examples, max_units, layers)
    was_training = model.training
    model.eval()
    try:
        flip = _Flipper(model, modules, inputs, labels, others, own_weight, max_rows)
        return flip.run(examples, max_units)
    finally:
        model.train(was_training)


class _Flipper:
    """The batched search; every layer's units side by side in one row of `alive`."""

    def __init__(self, model, modules, inputs, labels, others, own_weight, max_rows) -> None:
        self.model, self.inputs, self.labels = model, inputs, labels
        self.others, self.own_weight, self.max_rows = others, own_weight, max_rows
        self.layers = list(modules)
        self.bounds = np.cumsum([0, *(_n_units(modules[n]) for n in self.layers)])
        self.slices = {
            n: slice(int(lo), int(hi))
            for n, lo, hi in zip(self.layers, self.bounds[:-1], self.bounds[1:], strict=True)
        }
        self.hooks = UnitMasks(modules)

    def run(self, examples: torch.Tensor, max_units: int) -> FlipResult:
        device = self.inputs.device
        m = len(examples)
        alive = torch.ones(m, int(self.bounds[-1]), dtype=torch.bool, device=device)
        order = np.full((m, max_units), -1, np.int64)
        flipped = np.zeros(m, bool)
        active = torch.arange(m, device=device)
        for step in range(max_units + 1):
            if not len(active):
                break
            ex = examples[active]
            logits, own = self._own(ex, alive[active], step < max_units)
            now = logits.argmax(1) != self.labels[ex]
            flipped[active[now].cpu().numpy()] = True
            if step == max_units:
                break
            active, own = active[~now], own[~now]
            if not len(active):
                break
            zeroed = order[active.cpu().numpy(), :step]
            scores = own + self._others(examples[active], alive[active], zeroed)
            best = scores.masked_fill(~alive[active], -torch.inf).argmax(1)
            alive[active, best] = False
            order[active.cpu().numpy(), step] = best.cpu().numpy()
        layer_of = np.searchsorted(self.bounds, order, side="right") - 1
        per_layer = np.stack([(layer_of == li).sum(1) for li in range(len(self.layers))], 1)
        masks = {n: alive[:, cols].cpu().contiguous() for n, cols in self.slices.items()}
        return FlipResult(self.layers, per_layer.astype(np.int64), flipped, masks, order)

    def _own(self, ex: torch.Tensor, alive: torch.Tensor, grad: bool):
        """Each example's logits with its own mask, and (if `grad`) its own row's
        importances, -B * z * dloss/dz per unit (A, units)."""
        logits, scores = [], []
        for lo in range(0, len(ex), self.max_rows):
            part = alive[lo : lo + self.max_rows]
            group = torch.arange(len(part), device=ex.device)
            out, prods = self._pass(
                ex[lo : lo + self.max_rows], part, group, -self.own_weight, grad
            )
            logits.append(out)
            scores.append(torch.cat(prods, 1) if grad else None)
        return torch.cat(logits), (torch.cat(scores) if grad else None)

    def _others(self, ex: torch.Tensor, alive: torch.Tensor, zeroed: np.ndarray) -> torch.Tensor:
        """The others' mean importances under each example's mask (A, units), one pass of
        the others' batch per distinct mask."""
        k, device = len(self.others), ex.device
        if not k:
            return torch.zeros(alive.shape, device=device)
        first, inv = _distinct(zeroed)
        bank, inv = alive[torch.from_numpy(first).to(device)], torch.from_numpy(inv).to(device)
        # an example among the others is left out of its own mean: subtract its row
        is_self = self.others[None, :] == ex[:, None]
        n_others = (~is_self).sum(1, keepdim=True).clamp(min=1)
        who, pos = torch.nonzero(is_self, as_tuple=True)
        self_rows = inv[who] * k + pos
        sums = torch.zeros(len(bank), alive.shape[1], device=device)
        own_rows = torch.zeros(alive.shape, device=device)
        per = max(1, self.max_rows // k)  # masks per pass
        for lo in range(0, len(bank), per):
            part = bank[lo : lo + per]
            _, prods = self._pass(self.others.repeat(len(part)), part, None, 1.0, True)
            for name, prod in zip(self.layers, prods, strict=True):
                sums[lo : lo + len(part), self.slices[name]] = prod.view(len(part), k, -1).sum(1)
            rows = self_rows - lo * k
            take = (rows >= 0) & (rows < len(part) * k)
            if take.any():
                own_rows.index_add_(0, who[take], torch.cat([p[rows[take]] for p in prods], 1))
        return (sums[inv] - own_rows) / n_others

    def _pass(self, ids, bank, group, weight, grad) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One forward pass of the examples `ids`, row r masked by ``bank[group[r]]`` (group
        None: equal consecutive blocks of rows, one per mask), and (if `grad`) per layer
        z * d(weight * loss)/dz per row and unit."""
        with (
            torch.set_grad_enabled(grad),
            self.hooks.applied({n: bank[:, cols] for n, cols in self.slices.items()}, group),
            example_ids(self.model, ids),
        ):
            logits = self.model(self.inputs[ids])
            outputs = [self.hooks.outputs[n] for n in self.layers]
        if not grad:
            return logits, []
        loss = weight * F.cross_entropy(logits, self.labels[ids], reduction="sum")
        grads = torch.autograd.grad(loss, outputs)
        with torch.no_grad():
            prods = [
                (z * g).flatten(2).sum(2) if z.dim() > 2 else z * g
                for z, g in zip(outputs, grads, strict=True)
            ]
        return logits.detach(), prods


def _distinct(zeroed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct sets among rows of zeroed units (A, step): each set's first row, and each
    row's set."""
    if not zeroed.shape[1]:
        return np.zeros(1, np.int64), np.zeros(len(zeroed), np.int64)
    _, first, inv = np.unique(np.sort(zeroed, 1), axis=0, return_index=True, return_inverse=True)
    return first.astype(np.int64), inv.reshape(-1).astype(np.int64)


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
