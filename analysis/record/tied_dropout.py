"""Example-tied dropout (Maini et al. 2023, "Can Neural Network Memorization Be Localized?").

A fraction `p_fixed` of a layer's channels (the first ones) is always kept:
the generalization channels. Each other channel is kept for example i with
probability `p_mem`, by a mask that depends only on (seed, i, channel) and
so is the same in every epoch and at evaluation: the memorization channels.
After training, dropping every memorization channel (scaling the kept ones
by (p_fixed + p_mem) / p_fixed, as the paper does) should remove what was
memorized while keeping what generalizes.

Masks are never stored: a counter-based hash (murmur3's 32-bit finalizer)
recomputes them from the ids, identically on any device and in numpy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

MODES = ("keep", "drop")
_M32 = 0xFFFFFFFF


def _fmix32(h):
    """murmur3's 32-bit finalizer on int64 tensors or arrays holding 32-bit values."""
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & _M32
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & _M32
    return h ^ (h >> 16)


def channel_uniforms(ids, n_channels: int, seed: int):
    """A uniform number in [0, 1) per (example id, channel), fixed by the seed.

    Parameters
    ----------
    ids : int64 tensor or array, shape (B,)
    Returns the same kind: float, shape (B, n_channels)
    """
    if isinstance(ids, torch.Tensor):
        ids = ids.to(torch.int64)
        channels = torch.arange(n_channels, device=ids.device, dtype=torch.int64)
    else:
        ids = np.asarray(ids, dtype=np.int64)
        channels = np.arange(n_channels, dtype=np.int64)
    h = _fmix32((ids[:, None] * 0x9E3779B1 + (seed & _M32)) & _M32)
    h = _fmix32((h ^ (channels[None, :] * 0x85EBCA77)) & _M32)
    return (h >> 8) / float(1 << 24)


def tied_mask(ids, n_channels: int, *, p_fixed: float, p_mem: float, seed: int):
    """Which channels example `ids[b]` keeps: 1 for the first int(p_fixed*C), then by p_mem.

    Returns float, shape (B, n_channels), the kind of `ids` (tensor or array).
    """
    n_fixed = int(p_fixed * n_channels)
    u = channel_uniforms(ids, n_channels, seed)
    keep = u < p_mem
    keep[:, :n_fixed] = True
    return keep.float() if isinstance(keep, torch.Tensor) else keep.astype(np.float32)


class ExampleTiedDropout(nn.Module):
    """Multiply channels (dim 1) by the example's tied mask ("keep") or drop all
    memorization channels ("drop").

    The ids of the examples in a batch are set with `example_ids`; "keep"
    without them is an error. The mode holds in training and evaluation alike.
    """

    def __init__(self, p_fixed: float, p_mem: float, seed: int) -> None:
        super().__init__()
        if not (0 < p_fixed <= 1 and 0 <= p_mem <= 1):
            raise ValueError(f"need 0 < p_fixed <= 1 and 0 <= p_mem <= 1, got {p_fixed}, {p_mem}")
        self.p_fixed, self.p_mem, self.seed = p_fixed, p_mem, seed
        self.mode = "keep"
        self.ids: torch.Tensor | None = None

    def extra_repr(self) -> str:
        return f"p_fixed={self.p_fixed}, p_mem={self.p_mem}, seed={self.seed}, mode={self.mode}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        shape = (-1, channels) + (1,) * (x.dim() - 2)
        if self.mode == "drop":
            n_fixed = int(self.p_fixed * channels)
            scale = torch.zeros(channels, device=x.device, dtype=x.dtype)
            scale[:n_fixed] = (self.p_fixed + self.p_mem) / self.p_fixed
            return x * scale.view(shape)
        if self.ids is None or len(self.ids) != len(x):
            raise RuntimeError(
                "example-tied dropout needs the ids of the batch's examples: "
                "call the model inside `with example_ids(model, ids):`"
            )
        mask = tied_mask(self.ids, channels, p_fixed=self.p_fixed, p_mem=self.p_mem, seed=self.seed)
        return x * mask.to(x.dtype).view(shape)


def tied_modules(model: nn.Module) -> list[ExampleTiedDropout]:
    return [m for m in model.modules() if isinstance(m, ExampleTiedDropout)]


@contextmanager
def example_ids(model: nn.Module, ids: torch.Tensor) -> Iterator[None]:
    """Tell the model's example-tied dropout layers which examples a batch holds.

    A no-op for models without them, so any model can be called this way.
    """
    modules = tied_modules(model)
    for m in modules:
        m.ids = ids
    try:
        yield
    finally:
        for m in modules:
            m.ids = None


@contextmanager
def tied_mode(model: nn.Module, mode: str) -> Iterator[None]:
    """Run the model's example-tied dropout layers in `mode` ("keep" or "drop")."""
    if mode not in MODES:
        raise ValueError(f"unknown example-tied dropout mode {mode!r}; valid: {', '.join(MODES)}")
    modules = tied_modules(model)
    before = [m.mode for m in modules]
    for m in modules:
        m.mode = mode
    try:
        yield
    finally:
        for m, old in zip(modules, before, strict=True):
            m.mode = old
