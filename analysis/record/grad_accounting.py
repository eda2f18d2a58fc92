"""Layer-gradient accounting: each batch's gradient split into its clean and flipped parts.

`GradientAccountant` replaces the training step's ``losses.mean().backward()``: it keeps, per
layer, the norm of the gradient of the clean part and of the flipped part of each batch's loss
(each weighted by its share of the batch, so that the two add up to the batch's gradient) summed
over the epoch, and the mean over batches of their cosine (Maini et al. 2023, "Can Neural Network
Memorization Be Localized?"); `frame` gives the epoch's rows of layer_grads.parquet.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from memdash.analysis.record.models import layer_parameters


class GradientAccountant:
    """Per-layer norms of the clean and flipped parts of each batch's gradient, over an epoch.

    `backward(ids, losses)` replaces ``losses.mean().backward()``: it takes one
    backward pass per part (one more than usual) and leaves in ``.grad`` their
    sum, the gradient of the batch's mean loss.
    """

    def __init__(self, model: nn.Module, is_noisy: torch.Tensor) -> None:
        self.groups = layer_parameters(model)
        self.params = [p for ps in self.groups.values() for p in ps]
        self.sizes = [len(ps) for ps in self.groups.values()]
        self.is_noisy = is_noisy
        self.reset()

    def reset(self) -> None:
        n_layers, device = len(self.groups), self.is_noisy.device
        self.norm_sum = torch.zeros(2, n_layers, dtype=torch.float64, device=device)
        self.cos_sum = torch.zeros(n_layers, dtype=torch.float64, device=device)
        self.cos_batches = 0
        self.counts = torch.zeros(2, dtype=torch.int64, device=device)

    def backward(self, ids: torch.Tensor, losses: torch.Tensor) -> None:
        noisy = self.is_noisy[ids]
        n = losses.numel()
        parts = [losses[~noisy].sum() / n, losses[noisy].sum() / n]
        present = [bool((~noisy).any()), bool(noisy.any())]
        self.counts += torch.stack([(~noisy).sum(), noisy.sum()])
        grads: list[Sequence[torch.Tensor] | None] = [None, None]
        live = [i for i in (0, 1) if present[i]]
        for k, i in enumerate(live):
            grads[i] = torch.autograd.grad(
                parts[i], self.params, retain_graph=k < len(live) - 1, allow_unused=True
            )
        grads = [self._fill(g) if g is not None else None for g in grads]
        sq = {i: self._per_layer(g, g) for i, g in enumerate(grads) if g is not None}
        for i, value in sq.items():
            self.norm_sum[i] += value.sqrt()
        if len(sq) == 2:
            dot = self._per_layer(grads[0], grads[1])
            self.cos_sum += dot / (sq[0].sqrt() * sq[1].sqrt()).clamp_min(1e-30)
            self.cos_batches += 1
        for p, *gs in zip(self.params, *[g for g in grads if g is not None], strict=True):
            total = gs[0] if len(gs) == 1 else gs[0] + gs[1]
            p.grad = total if p.grad is None else p.grad + total

    def _fill(self, grads: Sequence[torch.Tensor | None]) -> list[torch.Tensor]:
        return [
            torch.zeros_like(p) if g is None else g for p, g in zip(self.params, grads, strict=True)
        ]

    def _per_layer(self, a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
        dots = torch.stack([(x.double() * y.double()).sum() for x, y in zip(a, b, strict=True)])
        return torch.stack([chunk.sum() for chunk in torch.split(dots, self.sizes)])

    def frame(self, epoch: int) -> pd.DataFrame:
        """The epoch's rows of layer_grads.parquet: one per (layer, subset)."""
        norms = self.norm_sum.cpu().numpy()
        total = norms.sum(0)
        share = np.divide(norms, total, out=np.full_like(norms, np.nan), where=total > 0)
        cos = (
            (self.cos_sum / self.cos_batches).cpu().numpy()
            if self.cos_batches
            else (np.full(len(self.groups), np.nan))
        )
        counts = self.counts.cpu().numpy()
        rows = [
            {
                "epoch": epoch,
                "layer": layer,
                "subset": subset,
                "grad_norm": float(norms[s, j]),
                "share": float(share[s, j]),
                "cosine": float(cos[j]),
                "n_examples": int(counts[s]),
            }
            for s, subset in enumerate(("clean", "noisy"))
            for j, layer in enumerate(self.groups)
        ]
        return pd.DataFrame(rows)
