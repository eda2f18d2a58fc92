"""Input-loss curvature of each example, the memorization proxy of Garg, Roy et al. (2023).

References
----------
Garg, Ravikumar and Roy 2023, "Memorization Through the Lens of Curvature of Loss Function
Around Samples" (arXiv:2307.05831). The curvature of the loss around an example x with
label y, along n random Rademacher directions v (entries +-1, the shape of x) and a finite
step h:

    Curv(x) = 1/n sum_v ||grad_x L(x + h v) - grad_x L(x)||_2^2,

L the cross-entropy of the label trained with, the model in eval mode. For a loss that is
quadratic near x (Hessian H), the difference is exactly h H v, so Curv = h^2 mean ||H v||^2,
whose expectation is h^2 ||H||_F^2 (Hutchinson's estimator of tr(H^2)). The proxy is the
mean of Curv over the recorded epochs (`mean_over_epochs`); higher = more curved:
mislabeled, atypical and duplicate-conflicting examples, the ones a network memorizes.

Defaults: ``directions=10`` and ``step=1e-3`` are those of the authors' released code
(``get_regularized_curvature_for_batch(..., h=1e-3, niter=10)``). That code deviates from
the paper's formula in three ways this module does not copy: it sums unsquared L2 norms,
differentiates a loss averaged over the batch (every gradient scaled by 1/B) and adds
1e-7 to each direction; here the norm is squared, each example's own loss is
differentiated, and the directions are exactly +-1.

Batched over examples and directions: the n perturbed copies of a batch are stacked into
one batch (`max_rows` rows at most per forward and backward pass), never one pass per
example or per direction. In eval mode each example's loss depends on its own row only, so
the gradient of the summed loss holds every row's own gradient. The caller keeps the
parameters from requiring gradients during the passes (only input gradients are computed).

The directions are counter-based (`rademacher`): direction d of example id i is a function
of (seed, i, d) alone, hashed with integer operations on the device, so an example gets the
same directions whichever examples share its batch (or are left out: the recorder computes
the training split's only), whatever the batch size, `max_rows` or device, and the global
random state that training draws from is never touched.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (inputs, example ids)
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (outputs, labels) -> (B,)

DIRECTIONS = 10  # the authors' code: niter=10 Rademacher directions
STEP = 1e-3  # the authors' code: h=1e-3
MAX_ROWS = 8192  # rows (examples x directions) per stacked pass: bounds the memory
_MASK32 = 0xFFFFFFFF


def cross_entropy(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each example's cross-entropy with its label, in float32: shape (B,)."""
    return F.cross_entropy(outputs.float(), labels, reduction="none")


def input_gradient(
    forward: Forward,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    ids: torch.Tensor,
    *,
    loss_fn: LossFn = cross_entropy,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs and the gradient of each example's own loss with respect to its input.

    Parameters
    ----------
    forward : the model in eval mode, called with (inputs, example ids)
    inputs : (B, ...) ; labels : (B,) ; ids : (B,) example ids
    loss_fn : (outputs, labels) -> per-example losses (B,); the cross-entropy by default

    Returns
    -------
    outputs (B, ...) detached; gradient (B, ...) shaped like `inputs`, grad_x L of each row
    (one forward and one backward pass for the whole batch).
    """
    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        outputs = forward(x, ids)
        (grad,) = torch.autograd.grad(loss_fn(outputs, labels).sum(), x)
    return outputs.detach(), grad


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixer (xorshift-multiply rounds) of int64 values in [0, 2**32): each
    output bit depends on every input bit. The multipliers are below 2**31, so no product
    overflows int64 on any device."""
    x = x ^ (x >> 16)
    x = (x * 0x21F0AAAD) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x735A2D97) & _MASK32
    return x ^ (x >> 15)


def rademacher(
    seed: int, ids: torch.Tensor, first: int, count: int, shape: tuple[int, ...]
) -> torch.Tensor:
    """Directions `first`..`first + count - 1` of each example, entries +-1 with equal chance.

    Parameters
    ----------
    seed : int >= 0, the key of the draw (the recorder's: run seed and epoch)
    ids : int, shape (B,), the examples' ids (below 2**32 for distinct directions)
    first, count : the directions' indices
    shape : one example's input shape

    Returns
    -------
    float32 (count, B, *shape) on the device of `ids`: entry [d, b] depends on (seed,
    ids[b], first + d) alone (a hash of that counter, 32 signs a hash), never on the other
    examples drawn with it nor on a generator's state.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    k0, k1, k2 = (int(k) for k in np.random.SeedSequence(seed).generate_state(3, np.uint32))
    ids = ids.to(torch.int64)
    device, size = ids.device, math.prod(shape)
    example = _mix32(_mix32((ids & _MASK32) ^ k0) ^ (ids >> 32))  # (B,)
    index = torch.arange(first, first + count, dtype=torch.int64, device=device)
    direction = _mix32(example[None, :] ^ _mix32((index + k1) & _MASK32)[:, None])  # (count, B)
    words = -(-size // 32)
    word = _mix32((torch.arange(words, dtype=torch.int64, device=device) + k2) & _MASK32)
    hashed = _mix32(direction[:, :, None] ^ word)  # (count, B, words): 32 signs each
    bits = (hashed[..., None] >> torch.arange(32, device=device)) & 1
    signs = bits.reshape(count, len(ids), words * 32)[..., :size].float().mul_(2).sub_(1)
    return signs.reshape(count, len(ids), *shape)


def input_curvature(
    forward: Forward,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    ids: torch.Tensor,
    *,
    seed: int,
    directions: int = DIRECTIONS,
    step: float = STEP,
    loss_fn: LossFn = cross_entropy,
    gradient: torch.Tensor | None = None,
    max_rows: int = MAX_ROWS,
) -> torch.Tensor:
    """Curvature of each example's loss around its input, along random directions.

    Parameters
    ----------
    forward : the model in eval mode, called with (inputs, example ids); its parameters
        should not require gradients (only the inputs' are needed)
    inputs : (B, ...) ; labels : (B,) ; ids : (B,) example ids
    seed : int >= 0, the key of the directions (`rademacher`): example id i's direction d
        depends on (seed, i, d) alone, whichever examples share the batch
    directions : n >= 1, the number of directions v per example
    step : h > 0, the finite-difference step along each direction (in input units)
    loss_fn : (outputs, labels) -> per-example losses (B,); the cross-entropy by default
    gradient : grad_x L(x) of the batch when already computed (`input_gradient`, shared
        with loss sensitivity), shape of `inputs`; computed here when None
    max_rows : rows per stacked pass (at least one direction of the batch per pass); it
        changes none of the directions drawn

    Returns
    -------
    float32 (B,): 1/n sum_v ||grad_x L(x + h v) - grad_x L(x)||_2^2 (higher = more curved:
    mislabeled, atypical; Garg, Roy et al. 2023).
    """
    if isinstance(directions, bool) or not isinstance(directions, int) or directions < 1:
        raise ValueError(f"directions must be an integer >= 1, got {directions!r}")
    if (
        isinstance(step, bool)
        or not isinstance(step, (int, float))
        or not (math.isfinite(step) and step > 0)
    ):
        raise ValueError(f"step must be a finite number > 0, got {step!r}")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"max_rows must be an integer >= 1, got {max_rows!r}")
    n = len(inputs)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if len(labels) != n or len(ids) != n:
        raise ValueError(f"{n} inputs but {len(labels)} labels and {len(ids)} ids")
    if n == 0:
        return torch.zeros(0, dtype=torch.float32, device=inputs.device)
    if gradient is None:
        _, gradient = input_gradient(forward, inputs, labels, ids, loss_fn=loss_fn)
    elif gradient.shape != inputs.shape:
        raise ValueError(f"gradient has shape {tuple(gradient.shape)}, inputs {inputs.shape}")
    base = gradient.detach().reshape(1, n, -1)
    per_pass = max(1, max_rows // max(n, 1))
    total = torch.zeros(n, dtype=torch.float32, device=inputs.device)
    for first in range(0, directions, per_pass):
        k = min(per_pass, directions - first)
        v = rademacher(seed, ids, first, k, tuple(inputs.shape[1:]))
        shifted = inputs.detach().unsqueeze(0) + step * v.to(inputs.device, inputs.dtype)
        _, grad = input_gradient(
            forward,
            shifted.reshape(k * n, *inputs.shape[1:]),
            labels.repeat(k),
            ids.repeat(k),
            loss_fn=loss_fn,
        )
        diff = grad.reshape(k, n, -1) - base
        total += diff.pow(2).sum(2).sum(0).float()
    return total / directions


def mean_over_epochs(per_epoch: np.ndarray) -> np.ndarray:
    """The proxy of a per-epoch measure: each example's mean over the recorded epochs.

    Parameters
    ----------
    per_epoch : float, shape (E, N), NaN where an example was not recorded (epochs 1..E:
        the model before training is not part of the score)

    Returns
    -------
    float64 (N,): the mean over the epochs where the example was recorded, NaN where it
    never was (same direction as the measure: for curvature, higher = more curved).
    """
    values = np.asarray(per_epoch, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"per_epoch must be an (epochs, examples) array, got {values.shape}")
    seen = ~np.isnan(values)
    count = seen.sum(0)
    total = np.where(seen, values, 0.0).sum(0)
    return np.divide(total, count, out=np.full(values.shape[1], np.nan), where=count > 0)
