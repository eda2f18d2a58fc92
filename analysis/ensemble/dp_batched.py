"""DP-SGD for the batched ensemble of `memdash estimate`: K models trained privately at once.

Opacus wraps one module; the estimate's K MLPs are one stacked computation
(`batched.StackedMLP`, baddbmm), so DP-SGD is done here directly, as Opacus does it for one
model (Abadi et al. 2016):

1. **Poisson sampling**: each step, model k takes each example of its own subset (m examples)
   independently with probability q = B / m (B the batch size), ceil(m / B) steps an epoch,
   as the accountant assumes. The K batches differ in size: a padded (K, B_max) index
   tensor with a mask.
2. **Per-example gradient norms, exactly**: for a dense layer z = a W + b the example's weight
   gradient is the outer product a_i g_i^T (g_i = dL_i/dz_i), so its squared norm is
   ||a_i||^2 ||g_i||^2, and the bias's ||g_i||^2; the layer inputs a and output gradients g
   are kept from one forward and one backward of the summed loss (each example's loss
   reaches only its own row).
3. **Clipping by re-weighting**: c_i = min(1, C / (||grad_i|| + 1e-6)) (Opacus's), and the
   clipped sum is a^T (c g) and sum_i c_i g_i, one bmm per layer; no per-example gradient
   is ever materialized.
4. **Noise**: Gaussian of standard deviation sigma * C added to each model's clipped sum, the
   result divided by the expected batch size q * m (Opacus's ``loss_reduction="mean"``),
   then the configured optimizer's step.

Sampling and noise are drawn from each model's own seed (and the epoch, the step), so a
model's result does not depend on the other models of its batch, as the plain estimate
promises. The accountant's epsilon of each model is the RDP epsilon of (sigma, q, steps)
(`record.privacy`). CNNs and ResNets (`batched.VmapEnsemble`) take step 2-3 from
`dp_vmap.clipped_sums` (per-example gradients materialized with torch.func, in chunks of
bounded memory) and the same sampling, noise and step. Dropout and example-tied dropout are
refused (`check_dp_estimate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from memdash.analysis.ensemble import dp_vmap
from memdash.analysis.ensemble.batched import (
    StackedMLP,
    VmapEnsemble,
    _model,
    fit_batched,
    stack,
)
from memdash.analysis.record.config import RunConfig
from memdash.analysis.record.dense_clip import clip_factors
from memdash.analysis.record.privacy import DPConfig, epsilon_spent, noise_for, sampling
from memdash.analysis.record.training import make_optimizer
from memdash.analysis.store import Run

_NOISE_STREAM = 2  # the noise's seed sequence apart from the sampling's (1)


def check_dp_estimate(config: RunConfig) -> None:
    """Raise ValueError (one line) when an estimate of `config` cannot train privately: DP
    estimates train the stacked MLPs (`StackedMLP`) or the vmapped CNNs and ResNets
    (`VmapEnsemble`, `dp_vmap`), without dropout or tied dropout (dropout masks drawn over
    the stacked (K, B) batch would make a model's result depend on the other models of its
    batch)."""
    m = config.model
    if m.example_tied_dropout:
        raise ValueError(
            f"--dp-epsilon/--dp-noise: a DP estimate trains its models without dropout (each "
            f"model's masks would depend on the other models of its batch); --model {m.name} "
            f"with example-tied dropout is not supported: train the run itself with DP "
            f"(memdash train --dp-...)"
        )
    if m.dropout > 0:
        raise ValueError(
            f"--dp-epsilon/--dp-noise: a DP estimate trains its MLPs without dropout (each "
            f"model's masks would depend on the other models of its batch); this run's "
            f"--dropout {m.dropout:g} is not supported: estimate a run trained without dropout"
        )


def resolve_estimate_dp(config: RunConfig, n_train: int, ratio: float, dp: DPConfig) -> dict:
    """heldout/spec.json's ``dp`` for models trained on round(ratio * n_train) examples:
    ``noise_multiplier`` (from the target epsilon if given), ``clip``, ``delta``, and the
    accountant's ``epsilon`` of each model after all its epochs (None without noise)."""
    check_dp_estimate(config)
    m = int(round(ratio * n_train))
    if dp.delta >= 1 / m:
        raise ValueError(
            f"--dp-delta {dp.delta:g} must be below 1/{m} (one over each model's "
            f"{m} training examples, {1 / m:.3g})"
        )
    q, steps = sampling(m, config.train.batch_size)
    total = steps * config.train.epochs
    noise = dp.noise_multiplier
    if noise is None:
        noise = noise_for(dp.epsilon, dp.delta, q, total)
    eps = epsilon_spent(noise, q, total, dp.delta)
    return {"noise_multiplier": noise, "clip": dp.clip, "delta": dp.delta, "epsilon": eps}


def run_estimate_dp(run: Run, ratio: float, dp: DPConfig | None) -> dict | None:
    """heldout/spec.json's ``dp`` of an estimate of `run` (`resolve_estimate_dp` for the
    subsets of `ratio`, the first), None without DP."""
    if dp is None:
        return None
    n_train = int((run.examples(["split"])["split"] == "train").sum())
    return resolve_estimate_dp(RunConfig.from_dict(run.config), n_train, ratio, dp)


def dp_params(dp: dict | None) -> dict[str, Any]:
    """The manifest's ``heldout.params`` of a DP estimate: ``dp_epsilon``, ``dp_delta``."""
    return {} if not dp else {"dp_epsilon": dp["epsilon"], "dp_delta": dp["delta"]}


def run_dp(run_config: dict) -> DPConfig | None:
    """The DP options of a run's stored config (run.json ``config.train.dp``), or None."""
    raw = (run_config.get("train") or {}).get("dp")
    return DPConfig(**raw) if isinstance(raw, dict) else None


def poisson_batches(
    seeds: list[int], subsets: np.ndarray, epoch: int, batch_size: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The epoch's steps: for each, ((K, B_max) positions into the training ids, padded with
    0, and the bool (K, B_max) mask of the real ones). Model k samples each of its subset's
    examples with probability q = batch_size / m at each of ceil(m / batch_size) steps, from
    its own seed and the epoch."""
    m = int(subsets[0].sum())
    q, steps = sampling(m, batch_size)
    chosen = []
    for seed, mask in zip(seeds, subsets, strict=True):
        ids = np.flatnonzero(mask)
        draw = np.random.default_rng([seed, epoch, 1]).random((steps, len(ids))) < q
        chosen.append([ids[row] for row in draw])
    out = []
    for s in range(steps):
        picked = [c[s] for c in chosen]
        width = max(1, max(len(p) for p in picked))
        index = np.zeros((len(picked), width), np.int64)
        real = np.zeros((len(picked), width), bool)
        for k, p in enumerate(picked):
            index[k, : len(p)], real[k, : len(p)] = p, True
        out.append((torch.from_numpy(index), torch.from_numpy(real)))
    return out


def clipped_sums(
    ens: StackedMLP, x: torch.Tensor, y: torch.Tensor, real: torch.Tensor, clip: float
) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """Each model's sum of its examples' gradients, each clipped to L2 norm `clip`.

    Parameters
    ----------
    ens : the K stacked MLPs (in train mode: dropout as the forward draws it)
    x : (K, B, ...) each model's batch; y : int64 (K, B) labels; real : bool (K, B) mask
    clip : C

    Returns
    -------
    (weight sums (K, in, out) per layer, bias sums (K, 1, out) per layer, the per-example
    gradient norms (K, B) before clipping, 0 at padding)
    """
    layers: list[tuple[torch.Tensor, torch.Tensor]] = []  # each layer's input a, output z
    logits = ens.forward(x, layers=layers)
    inputs, outputs = [a for a, _ in layers], [z for _, z in layers]
    losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape)
    grads = torch.autograd.grad((losses * real).sum(), outputs)
    factor, norms = clip_factors(inputs, grads, clip, real=real)  # Opacus's clip factor
    weighted = [g * factor[..., None] for g in grads]
    weights = [torch.bmm(a.transpose(1, 2), g) for a, g in zip(inputs, weighted, strict=True)]
    biases = [g.sum(1, keepdim=True) for g in weighted]
    return weights, biases, norms


def _noise(seed: int, epoch: int, step: int, shapes: list[torch.Size], std: float) -> list:
    gen = torch.Generator().manual_seed(
        int(np.random.SeedSequence([seed, epoch, step, _NOISE_STREAM]).generate_state(1)[0])
    )
    return [torch.normal(0.0, std, size=tuple(s), generator=gen) for s in shapes]


def fit_ensemble(config: RunConfig, inputs, labels, train_ids, seeds, subsets, *, dp=None):
    """`fit_dp` with heldout/spec.json's `dp`, else the plain `batched.fit_batched`."""
    if dp:
        return fit_dp(config, inputs, labels, train_ids, seeds, subsets, dp)
    return fit_batched(config, inputs, labels, train_ids, seeds, subsets)


def fit_dp(
    config: RunConfig,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    train_ids: np.ndarray,
    seeds: list[int],
    subsets: np.ndarray,
    dp: dict,
) -> StackedMLP | VmapEnsemble:
    """`batched.fit_batched` with DP-SGD: K models at once, each on Poisson samples of its
    subset, its per-example gradients clipped to ``dp["clip"]`` and noised with
    ``dp["noise_multiplier"]`` (heldout/spec.json's ``dp``, `resolve_estimate_dp`). MLPs
    clip in closed form (`clipped_sums`), CNNs and ResNets with torch.func
    (`dp_vmap.clipped_sums`)."""
    check_dp_estimate(config)
    sizes = set(subsets.sum(axis=1).tolist())
    if len(sizes) != 1:
        raise ValueError(f"every model of a batch needs the same subset size, got {sorted(sizes)}")
    shape, n_classes = tuple(inputs.shape[1:]), int(labels.max()) + 1
    ens = stack([_model(config, s, shape, n_classes) for s in seeds])
    params = ens.parameters()
    opt = make_optimizer(config, params)
    m = sizes.pop()
    q, _ = sampling(m, config.train.batch_size)
    clip, std = float(dp["clip"]), float(dp["noise_multiplier"]) * float(dp["clip"])
    train_ids = torch.as_tensor(train_ids)
    for epoch in range(1, config.train.epochs + 1):
        batches = poisson_batches(seeds, subsets, epoch, config.train.batch_size)
        for step, (index, real) in enumerate(batches):
            ids = train_ids[index]
            if isinstance(ens, VmapEnsemble):
                sums, _ = dp_vmap.clipped_sums(ens, inputs[ids], labels[ids], real, clip)
            else:
                weights, biases, _ = clipped_sums(ens, inputs[ids], labels[ids], real, clip)
                sums = [*weights, *biases]
            if std > 0:
                for k, seed in enumerate(seeds):
                    noise = _noise(seed, epoch, step, [p.shape[1:] for p in params], std)
                    for total, z in zip(sums, noise, strict=True):
                        total[k] += z
            for p, total in zip(params, sums, strict=True):
                p.grad = total / (q * m)
            opt.step()
    ens.train(False)
    return ens
