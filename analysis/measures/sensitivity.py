"""Arpit et al.'s per-example capacity measures, computed on a model in eval mode.

References
----------
Arpit, Jastrzebski, Ballas, Krueger, Bengio, Kanwal, Maharaj, Fischer, Courville, Bengio
and Lacoste-Julien 2017, "A Closer Look at Memorization in Deep Networks", section 3:

- loss sensitivity: g(x) = ||dL(f(x), y) / dx||_1, the L1 norm of the gradient of the
  example's loss with respect to its input; higher = the loss depends more on the exact
  input, as it does for memorized (noise) examples;
- critical samples: x is critical when some x' with ||x' - x||_inf <= r is predicted
  another class. It is searched as the paper does, with a few signed-gradient steps that
  raise the loss of x's predicted class from a random start inside the box, kept inside it
  (Langevin-like: the random start is the noise). The critical sample ratio is the share
  of critical examples in a subset; it rises as a network memorizes.

Both are batched over examples: one backward pass per batch of examples (per step, for
the search), never one per example. In eval mode each example's loss depends on its own
input only, so the gradient of the summed loss holds every example's own gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (inputs, example ids)


def loss_sensitivity(
    forward: Forward, inputs: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and loss sensitivity of one batch, from one forward and one backward pass.

    Parameters
    ----------
    forward : the model in eval mode, called with (inputs, example ids)
    inputs : (B, ...) ; labels : (B,) int64 ; ids : (B,) example ids

    Returns
    -------
    logits (B, C), detached; sensitivity (B,) float32, ||dL/dx||_1 of each example's
    cross-entropy (higher = more sensitive).
    """
    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = forward(x, ids)
        loss = F.cross_entropy(logits.float(), labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return logits.detach(), grad.flatten(1).abs().sum(1).float()


def critical_samples(
    forward: Forward,
    inputs: torch.Tensor,
    ids: torch.Tensor,
    *,
    radius: float,
    steps: int,
    seed: int,
) -> torch.Tensor:
    """Whether each example has a differently predicted input within an L-inf box of
    `radius` around it, found by `steps` signed-gradient steps of size radius / 4 from a
    seeded uniform start inside the box: bool (B,).

    The search ascends the cross-entropy of the class predicted at x; an example is
    critical as soon as any step's prediction differs (the paper's criterion).
    """
    with torch.no_grad():
        predicted = forward(inputs, ids).argmax(1)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.rand(inputs.shape, generator=generator, dtype=inputs.dtype) * 2 - 1
    x = (inputs + radius * noise.to(inputs.device)).detach()
    found = torch.zeros(len(inputs), dtype=torch.bool, device=inputs.device)
    for _ in range(steps):
        x.requires_grad_(True)
        with torch.enable_grad():
            logits = forward(x, ids)
            loss = F.cross_entropy(logits.float(), predicted, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x)
        found |= logits.detach().argmax(1) != predicted
        step = x.detach() + radius / 4 * grad.sign()
        x = torch.max(torch.min(step, inputs + radius), inputs - radius).detach()
    with torch.no_grad():
        found |= forward(x, ids).argmax(1) != predicted
    return found
