"""DP-SGD for the vmapped ensemble of `memdash estimate`: K CNNs or ResNets privately at once.

The stacked MLPs (`dp_batched.clipped_sums`) get their per-example gradient norms from each
dense layer's input and output gradient; a convolution's per-example gradient has no such
closed form, so here the per-example gradients are materialized with torch.func: `grad` of
one example's loss (`functional_call` of the model's meta copy on a batch of one), vmapped
over the examples of a model's padded batch, vmapped over the K models' stacked parameters
(`batched.VmapEnsemble`). The models normalize with GroupNorm (no BatchNorm), so an example's
loss depends on that example alone, as DP-SGD requires.

Dense layers stay in closed form (``closed_form=True``, the default): an ``nn.Linear`` with a
bias, called once per forward on one vector per example (a CNN's ``fc1`` and ``out``, a
ResNet's ``out``), has the weight gradient g_i a_i^T, g_i its bias's gradient and a_i its
input (kept by a forward hook), so its squared norm is ||a_i||^2 ||g_i||^2 and its clipped sum
(c g)^T a, one bmm; its weight's per-example gradients (most of a CNN's parameters) are never
materialized. ``closed_form=False`` materializes every parameter's (the reference).

Each example's norm is taken over all of its model's parameters, its clip factor is
min(1, C / (norm + 1e-6)) (Opacus's, as `dp_batched.clipped_sums`), padding (``real`` False)
gets the factor 0, and the weighted gradients are summed per model. The caller
(`dp_batched.fit_dp`) adds each model's seeded noise, divides by q * m and steps, exactly as
for the MLPs, so a model's result does not depend on the other models of its batch.

Memory: the per-example floats of one chunk are (models, examples, P') with P' the
materialized gradient and dense-input floats of one example of one model. The batch is cut
into chunks of at most `max_floats` of them (2**26, 256 MB of float32, by default): first over
examples (all K models, as many examples as fit), and, when one example of every model alone
exceeds it, over models too (one example at a time). Chunks of padding only are skipped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from memdash.analysis.ensemble.batched import VmapEnsemble

MAX_FLOATS = 2**26  # per-example floats held at once (256 MB of float32)


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


def dense_layers(
    ens: VmapEnsemble,
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    x: torch.Tensor,
) -> dict[str, int]:
    """The layers whose per-example weight gradient has the closed form g_i a_i^T: each
    ``nn.Linear`` with a bias that one forward of the first model on `x` (1, ...) calls once
    on a (1, in) input, by module name, with its ``in`` (in forward order)."""
    modules = {
        name: m
        for name, m in ens.base.named_modules()
        if isinstance(m, nn.Linear) and m.bias is not None
    }
    seen: dict[str, list[tuple[int, ...]]] = {name: [] for name in modules}
    handles = [
        m.register_forward_hook(lambda _m, args, _out, n=name: seen[n].append(args[0].shape))
        for name, m in modules.items()
    ]
    try:
        with torch.no_grad():
            first = {name: p[0] for name, p in params.items()}
            functional_call(ens.base, (first, {n: b[0] for n, b in buffers.items()}), (x,))
    finally:
        for h in handles:
            h.remove()
    return {n: s[0][1] for n, s in seen.items() if len(s) == 1 and len(s[0]) == 2}


def per_example_grads(
    ens: VmapEnsemble,
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    dense: tuple[str, ...] = (),
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Each example's gradient of its own cross-entropy loss, for each model.

    Parameters
    ----------
    ens : the ensemble (its ``base``, the architecture)
    params, buffers : (k, ...) the stacked parameters and buffers of k of its models
    x : (k, b, ...) each model's examples; y : int64 (k, b) their labels
    dense : modules (`dense_layers`) whose weights' gradients are left out, their inputs kept

    Returns
    -------
    (parameter name -> (k, b, *shape) gradients, in the order of `params`, the weights of
    `dense` left out; module name -> (k, b, in) each dense layer's input)
    """
    weights = {f"{name}.weight" for name in dense}
    free = {n: p for n, p in params.items() if n not in weights}
    fixed = {n: p for n, p in params.items() if n in weights}
    modules = dict(ens.base.named_modules())

    def loss(p, q, bufs, xi, yi):
        kept: dict[str, torch.Tensor] = {}
        handles = [
            modules[name].register_forward_hook(
                lambda _m, args, _out, n=name: kept.__setitem__(n, args[0][0])
            )
            for name in dense
        ]
        try:
            logits = functional_call(ens.base, ({**p, **q}, bufs), (xi[None],))
        finally:
            for h in handles:
                h.remove()
        return F.cross_entropy(logits, yi[None]), kept

    one_model = vmap(
        grad(loss, has_aux=True), in_dims=(None, None, None, 0, 0), randomness="different"
    )
    models = vmap(one_model, in_dims=(0, 0, 0, 0, 0), randomness="different")
    return models(free, fixed, buffers, x, y)


def clipped_sums(
    ens: VmapEnsemble,
    x: torch.Tensor,
    y: torch.Tensor,
    real: torch.Tensor,
    clip: float,
    *,
    closed_form: bool = True,
    max_floats: int = MAX_FLOATS,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Each model's sum of its examples' gradients, each clipped to L2 norm `clip`.

    Parameters
    ----------
    ens : the K vmapped models (dropout 0: `dp_batched.check_dp_estimate`)
    x : (K, B, ...) each model's padded batch; y : int64 (K, B) labels; real : bool (K, B)
        mask of the real examples
    clip : C
    closed_form : dense layers' weight gradients in closed form (`dense_layers`), else every
        per-example gradient materialized
    max_floats : per-example floats held at once (the chunks, `chunk_sizes`)

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
    dense = dense_layers(ens, params, buffers, x[0, :1]) if closed_form else {}
    weights = {f"{name}.weight": name for name in dense}
    k, b = real.shape
    per_example = sum(p[0].numel() for n, p in params.items() if n not in weights)
    models, examples = chunk_sizes(k, b, per_example + sum(dense.values()), max_floats=max_floats)
    sums = {name: torch.zeros_like(p) for name, p in params.items()}
    norms = torch.zeros(k, b, dtype=next(iter(sums.values())).dtype, device=real.device)
    for m0 in range(0, k, models):
        ms = slice(m0, m0 + models)
        part = {name: p[ms] for name, p in params.items()}
        bufs = {name: t[ms] for name, t in buffers.items()}
        for b0 in range(0, b, examples):
            bs = slice(b0, b0 + examples)
            mask = real[ms, bs]
            if not mask.any():
                continue  # padding only
            grads, inputs = per_example_grads(
                ens, part, bufs, x[ms, bs], y[ms, bs], dense=tuple(dense)
            )
            flat = {n: g.flatten(2) for n, g in grads.items()}  # (k', b', P_i)
            sq = sum(torch.linalg.vector_norm(g, dim=-1).square() for g in flat.values())
            for name, a in inputs.items():  # ||g_i a_i^T||^2 = ||a_i||^2 ||g_i||^2
                sq = sq + a.square().sum(-1) * grads[f"{name}.bias"].square().sum(-1)
            norm = torch.sqrt(sq) * mask
            factor = (clip / (norm + 1e-6)).clamp(max=1.0) * mask  # Opacus's clip factor
            for n, g in flat.items():
                sums[n][ms] += torch.bmm(factor[:, None, :], g).view_as(sums[n][ms])
            for n, layer in weights.items():  # sum_i c_i g_i a_i^T
                g = grads[f"{layer}.bias"] * factor[..., None]
                sums[n][ms] += torch.bmm(g.transpose(1, 2), inputs[layer])
            norms[ms, bs] = norm
    return list(sums.values()), norms
