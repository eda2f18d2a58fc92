"""DP-SGD for the vmapped ensemble of `memdash estimate`: K CNNs or ResNets privately at once.

The stacked MLPs (`dp_batched.clipped_sums`) get their per-example gradient norms from each
dense layer's input and output gradient; a convolution's per-example gradient has no such
closed form, so here the per-example gradients are materialized with torch.func: `grad` of
one example's loss (`functional_call` of the model's meta copy on a batch of one), vmapped
over the examples of a model's padded batch, vmapped over the K models' stacked parameters
(`batched.VmapEnsemble`). The models normalize with GroupNorm (no BatchNorm), so an example's
loss depends on that example alone, as DP-SGD requires.

Each example's norm is taken over all of its model's parameters, its clip factor is
min(1, C / (norm + 1e-6)) (Opacus's, as `dp_batched.clipped_sums`), padding (``real`` False)
gets the factor 0, and the weighted gradients are summed per model. The caller
(`dp_batched.fit_dp`) adds each model's seeded noise, divides by q * m and steps, exactly as
for the MLPs, so a model's result does not depend on the other models of its batch.

Memory: the per-example gradients of one chunk are (models, examples, P) floats, P the
parameters of one model. The batch is cut into chunks of at most `max_floats` such floats
(2**26, 256 MB of float32, by default): first over examples (all K models, as many examples
as fit), and, when one example of every model alone exceeds it, over models too (one
example at a time). Chunks in which every example is padding are skipped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from memdash.analysis.ensemble.batched import VmapEnsemble

MAX_FLOATS = 2**26  # per-example gradient floats held at once (256 MB of float32)


def chunk_sizes(k: int, b: int, n_params: int, *, max_floats: int = MAX_FLOATS) -> tuple[int, int]:
    """(models, examples) per chunk so that models * examples * n_params <= max_floats (at
    least one of each): every model and as many examples as fit, else fewer models, one
    example each."""
    if min(k, b, n_params, max_floats) < 1:
        raise ValueError(
            f"chunk_sizes needs k, b, n_params and max_floats >= 1, "
            f"got {k}, {b}, {n_params}, {max_floats}"
        )
    pairs = max(1, max_floats // n_params)  # (model, example) gradients that fit at once
    models = min(k, pairs)
    return models, min(b, max(1, pairs // models))


def per_example_grads(
    ens: VmapEnsemble,
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Each example's gradient of its own cross-entropy loss, for each model.

    Parameters
    ----------
    ens : the ensemble (its ``base``, the architecture)
    params, buffers : (k, ...) the stacked parameters and buffers of k of its models
    x : (k, b, ...) each model's examples; y : int64 (k, b) their labels

    Returns
    -------
    parameter name -> (k, b, *shape) gradients, in the order of `params`
    """

    def loss(p, bufs, xi, yi):
        logits = functional_call(ens.base, (p, bufs), (xi[None],))
        return F.cross_entropy(logits, yi[None])

    one_model = vmap(grad(loss), in_dims=(None, None, 0, 0), randomness="different")
    models = vmap(one_model, in_dims=(0, 0, 0, 0), randomness="different")
    return models(params, buffers, x, y)


def clipped_sums(
    ens: VmapEnsemble,
    x: torch.Tensor,
    y: torch.Tensor,
    real: torch.Tensor,
    clip: float,
    *,
    max_floats: int = MAX_FLOATS,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Each model's sum of its examples' gradients, each clipped to L2 norm `clip`.

    Parameters
    ----------
    ens : the K vmapped models (dropout 0: `dp_batched.check_dp_estimate`)
    x : (K, B, ...) each model's padded batch; y : int64 (K, B) labels; real : bool (K, B)
        mask of the real examples
    clip : C
    max_floats : per-example gradient floats held at once (the chunks, `chunk_sizes`)

    Returns
    -------
    (the clipped sums (K, *shape), one per parameter in `ens.parameters()` order, the
    per-example gradient norms (K, B) before clipping, 0 at padding)
    """
    if x.shape[:2] != real.shape or y.shape != real.shape:
        raise ValueError(
            f"x (K, B, ...), y and real (K, B) must agree, got {tuple(x.shape)}, "
            f"{tuple(y.shape)}, {tuple(real.shape)}"
        )
    params = {name: p.detach() for name, p in ens.params.items()}
    buffers = {name: b.detach() for name, b in ens.buffers.items()}
    k, b = real.shape
    n_params = sum(p[0].numel() for p in params.values())
    models, examples = chunk_sizes(k, b, n_params, max_floats=max_floats)
    sums = [torch.zeros_like(p) for p in params.values()]
    norms = torch.zeros(k, b, dtype=sums[0].dtype, device=real.device)
    for m0 in range(0, k, models):
        ms = slice(m0, m0 + models)
        part = {name: p[ms] for name, p in params.items()}
        bufs = {name: t[ms] for name, t in buffers.items()}
        for b0 in range(0, b, examples):
            bs = slice(b0, b0 + examples)
            mask = real[ms, bs]
            if not mask.any():
                continue  # padding only
            grads = per_example_grads(ens, part, bufs, x[ms, bs], y[ms, bs])
            flat = [g.flatten(2) for g in grads.values()]  # (k', b', P_i)
            norm = torch.sqrt(sum(g.square().sum(-1) for g in flat)) * mask
            factor = (clip / (norm + 1e-6)).clamp(max=1.0) * mask  # Opacus's clip factor
            for total, g in zip(sums, flat, strict=True):
                total[ms] += torch.bmm(factor[:, None, :], g).view_as(total[ms])
            norms[ms, bs] = norm
    return sums, norms
