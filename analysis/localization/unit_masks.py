"""Networks with units zeroed, many at once: each row of a batch masked by its own unit mask.

A unit is a linear layer's neuron or a convolution's channel (the output units of a
layer's weight layer). `UnitMasks` multiplies each weight layer's output by a per-row
mask, so one batched forward pass runs many differently masked networks;
`masked_correct` evaluates them. Neuron flipping (`localization.flipping`) zeroes units
this way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
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
    order : int64, shape (M, max_units), the zeroed units in the order they were
        zeroed, numbered across the layers (the first layer's units, then the
        next layer's ...); -1 after an example's last one
    """

    layers: list[str]
    per_layer: np.ndarray
    flipped: np.ndarray
    masks: dict[str, torch.Tensor]
    order: np.ndarray

    @property
    def neurons_zeroed(self) -> np.ndarray:
        return self.per_layer.sum(axis=1)

    def zeroed(self, i: int) -> list[tuple[str, int]]:
        """Example i's zeroed units in order, as (layer, unit) (`flip_one`'s form)."""
        sizes = [self.masks[name].shape[1] for name in self.layers]
        starts = np.cumsum(sizes) - sizes
        out = []
        for unit in self.order[i][self.order[i] >= 0]:
            li = int(np.searchsorted(starts, unit, side="right")) - 1
            out.append((self.layers[li], int(unit - starts[li])))
        return out


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
    ``masks[layer][group[r]]``, or with ``group=None`` the rows come in G equal
    consecutive blocks, block g masked by ``masks[layer][g]`` (no per-row copy of
    the masks); the masked outputs are kept in `outputs`.
    """

    def __init__(self, modules: dict[str, nn.Module]) -> None:
        self.modules = modules
        self.outputs: dict[str, torch.Tensor] = {}

    @contextmanager
    def applied(self, masks: dict[str, torch.Tensor], group: torch.Tensor | None) -> Iterator[None]:
        def hook(name: str):
            def apply(_module, _inputs, out: torch.Tensor) -> torch.Tensor:
                mask = masks[name] if group is None else masks[name][group]
                mask = mask.to(out.dtype).view(*mask.shape, *(1,) * (out.dim() - 2))
                if group is None:  # (G, units, 1...) against (G, rows per block, units, ...)
                    out = (out.view(len(mask), -1, *out.shape[1:]) * mask[:, None]).view(out.shape)
                else:
                    out = out * mask
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
