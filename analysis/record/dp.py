"""DP-SGD for `memdash train` (Abadi et al. 2016, "Deep Learning with Differential Privacy"),
with Opacus's per-example gradients, clipping, noise and RDP accountant.

Each step samples the training examples by Poisson sampling (each one independently with
probability q = batch size / training examples, as the accountant assumes), so a batch has a
varying size, B on average; there are ceil(n / B) steps an epoch. Each example's gradient is
clipped to L2 norm C (``--dp-clip``) and the clipped gradients summed, by one of two paths,
chosen once when `DPTraining` is built:

- **dense** (`record.dense_clip.DenseClipping`), when every trainable layer is an `nn.Linear`
  with its bias (`why_not_dense`: the MLPs of `record.models`): forward hooks keep each
  layer's input a and output z, one `torch.autograd.grad` of the summed per-example losses
  with respect to the outputs gives g, example i's squared norm is the sum over layers of
  ||a_i||^2 ||g_i||^2 + ||g_i||^2, and W.grad = (c g)^T a, b.grad = sum_i c_i g_i with
  c_i = min(1, C / (norm_i + 1e-6)): one backward pass, no parameter gradient computed
  twice, no per-example gradient. A layer applied to other than (batch, features) inputs,
  or called twice in a forward, is refused in one line at the first step.
- **ghost** (Opacus's `GradSampleModuleFastGradientClipping`, Li et al. 2022) for every
  other model (convolutions, GroupNorm, ...): a first backward pass gives each example's
  gradient norm (||a_i||^2 ||g_i||^2 for a dense layer; a layer without a norm sampler, e.g.
  a convolution, computes its per-example gradients and their norms), a second
  back-propagates the losses weighted by c_i, which is the sum of the clipped gradients.

Both give the same sum (the hooks see the activations the forward computed, dropout and
example-tied dropout included), and both hand it to Opacus's
`DPOptimizerFastGradientClipping` (as `dp_noise.LeanNoise`: the same draws, less memory
traffic), which adds Gaussian noise of standard deviation sigma * C (one draw per parameter
from the epoch's noise generator), divides by the expected batch size q * n and takes the
configured optimizer's step: the noise stream, the accountant and the resume state do not
depend on the path. On the sample MLP a DP epoch by the dense path takes about 0.6 of ghost
clipping's, about 2.3x a plain epoch (benchmarks/dp.py).

The privacy spent after s steps is the RDP accountant's (epsilon, delta) for (sigma, q, s),
which depends on nothing else: it is recomputed for run.json after every epoch
(``dp_epsilon``, ``dp_delta``), so a resumed run needs no accountant state. With a target
epsilon (``--dp-epsilon``) sigma is the smallest noise whose epsilon after all the epochs is
at most the target (Opacus's `get_noise_multiplier`), resolved once the training examples
are known and stored in the config (``train.dp.noise_multiplier``).

The model the recorder sees stays the plain module (the hooks of either path sit on its
layers and act only inside a DP step, so the recorder's eval passes, its input gradients of loss
sensitivity and critical samples included, never reach them), so the eval pass, embeddings
and checkpoints are unchanged, with clean state_dict keys. Gradient accounting needs its own
backward passes per forward, which the DP step's hooks do not allow: it is off by default
under DP and refused when asked for. Text runs are refused. Opacus is imported here only,
when a DP run trains (``pip install 'memdash[dp]'``).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from memdash.analysis.record.privacy import (
    DPConfig,
    epsilon_spent,
    noise_for,
    require_opacus,
    sampling,
)

if TYPE_CHECKING:  # torch and Opacus are imported where a DP run trains, not with the config
    import torch
    from torch import nn

    from memdash.analysis.record.config import RunConfig
    from memdash.analysis.record.recorder import TraceRecorder

_EPOCH_SEED_STRIDE = 1_000_003  # as record/training's: per-epoch seeds of runs kept apart
_SAMPLING_STREAM, _NOISE_STREAM = 1, 2  # their seed sequences apart from dropout's seed


def epoch_seeds(seed: int, epoch: int) -> tuple[int, int, int]:
    """The seeds of a DP epoch of a run of `seed`: (the global seed, for dropout masks; the
    Poisson sampler's; the noise's), the last two from independent seed sequences of
    (seed, epoch, stream), so no two of the streams are the same generator's."""

    def stream(k: int) -> int:
        return int(np.random.SeedSequence([seed, epoch, k]).generate_state(1)[0])

    return seed * _EPOCH_SEED_STRIDE + epoch, stream(_SAMPLING_STREAM), stream(_NOISE_STREAM)


def check_model(model: nn.Module) -> None:
    """Raise ValueError naming the first layer Opacus cannot train privately (a BatchNorm
    mixes the examples of a batch), from `ModuleValidator.validate(model, strict=False)`."""
    require_opacus()
    from opacus.utils.module_utils import trainable_modules
    from opacus.validators import ModuleValidator

    if not ModuleValidator.validate(model, strict=False):
        return
    for name, module in trainable_modules(model):
        errors = ModuleValidator.validate(module, strict=False)
        if errors:
            why = " ".join(str(errors[0]).split())
            raise ValueError(f"DP-SGD cannot train layer {name!r} ({type(module).__name__}): {why}")
    errors = ModuleValidator.validate(model, strict=False)  # not a layer's (e.g. eval mode)
    raise ValueError(f"DP-SGD cannot train this model: {' '.join(str(errors[0]).split())}")


def resolved(config: RunConfig, model: nn.Module, n_train: int) -> RunConfig:
    """The config with its DP noise resolved from the target epsilon and gradient accounting
    off unless asked for (unchanged without DP), after checking the model (`check_model`)
    and that delta < 1 / `n_train` (by convention a delta of 1/n or more allows publishing an
    example outright)."""
    dp = config.train.dp
    if dp is None:
        return config
    check_model(model)
    if dp.delta >= 1 / n_train:
        raise ValueError(
            f"--dp-delta {dp.delta:g} must be below 1/{n_train} (one over the training "
            f"examples, {1 / n_train:.3g}): a larger delta allows leaking an example outright"
        )
    if config.record.grad_accounting is None:  # off under DP (two backward passes)
        config = replace(config, record=replace(config.record, grad_accounting=False))
    if dp.noise_multiplier is not None:
        return config
    q, steps = sampling(n_train, config.train.batch_size)
    noise = noise_for(dp.epsilon, dp.delta, q, steps * config.train.epochs)
    return replace(config, train=replace(config.train, dp=replace(dp, noise_multiplier=noise)))


def dp_summary(dp: DPConfig, n: int, batch_size: int, epochs: int) -> dict[str, Any]:
    """What run.json (``dp_epsilon``, ``dp_delta``) and an estimate's spec say of a DP
    training of `epochs` epochs on `n` examples: the accountant's epsilon spent."""
    q, steps = sampling(n, batch_size)
    eps = epsilon_spent(dp.noise_multiplier or 0.0, q, steps * epochs, dp.delta)
    return {"dp_epsilon": eps, "dp_delta": dp.delta}


CLIPPINGS = ("auto", "dense", "ghost")  # DPTraining's clipping= names


class DPTraining:
    """DP-SGD's training epoch for `record.training.train`: Poisson-sampled batches, the
    model's per-example gradients clipped (`clipping`: "auto" picks "dense", one backward
    pass by `dense_clip.DenseClipping`, when every trainable layer is an `nn.Linear`, else
    "ghost", Opacus's `GradSampleModuleFastGradientClipping`) and noised by Opacus's
    `DPOptimizerFastGradientClipping` (`dp_noise.LeanNoise`) around the run's optimizer
    `opt` (whose state the resume state keeps). Dropout, sampling and noise are seeded per
    (run seed, epoch) (`epoch_seeds`: three separate streams), so a resumed run continues as
    an uninterrupted one."""

    def __init__(
        self,
        config: RunConfig,
        model: nn.Module,
        opt: torch.optim.Optimizer,
        n: int,
        *,
        clipping: str = "auto",
    ):
        require_opacus()
        from memdash.analysis.record.dense_clip import DenseClipping, why_not_dense
        from memdash.analysis.record.dp_noise import LeanNoise

        if clipping not in CLIPPINGS:
            raise ValueError(f"unknown clipping {clipping!r}; valid: {', '.join(CLIPPINGS)}")
        dp = config.train.dp
        assert dp is not None and dp.noise_multiplier is not None, "resolve the config first"
        self.dp, self.config, self.n = dp, config, n
        self.q, self.steps = sampling(n, config.train.batch_size)
        if clipping == "auto":
            clipping = "dense" if why_not_dense(model) is None else "ghost"
        self.clipping = clipping
        self.dense = DenseClipping(model, clip=dp.clip) if clipping == "dense" else None
        self.model = model if self.dense else _ghost(model, dp.clip)
        self.device = next(model.parameters()).device
        self.optimizer = LeanNoise(  # Opacus's DPOptimizerFastGradientClipping, same noise
            opt,
            noise_multiplier=dp.noise_multiplier,
            max_grad_norm=dp.clip,
            expected_batch_size=self.q * n,
            loss_reduction="mean",
        )

    def run_json(self, epoch: int) -> dict[str, Any]:
        """run.json's ``dp_epsilon`` (None: no noise, no bound) and ``dp_delta`` after
        `epoch` epochs."""
        t = self.config.train
        return dp_summary(self.dp, self.n, t.batch_size, epoch)

    def train_epoch(
        self, model, opt, recorder: TraceRecorder, inputs, labels, train_ids, config, epoch
    ) -> None:
        """One epoch of ceil(n / B) Poisson-sampled steps, recording as `train_epoch` does
        (`model` is the plain module, `opt` the run's optimizer that DPOptimizer wraps)."""
        import torch

        dropout, sampling_seed, noise_seed = epoch_seeds(config.seed, epoch)
        torch.manual_seed(dropout)  # dropout masks of this epoch
        sampler = torch.Generator(device=train_ids.device).manual_seed(sampling_seed)
        noise = torch.Generator(device=self.device).manual_seed(noise_seed)
        self.optimizer.generator = noise
        self.model.train()
        for _ in range(self.steps):
            chosen = torch.rand(len(train_ids), generator=sampler, device=train_ids.device)
            self._step(model, recorder, inputs, labels, train_ids[chosen < self.q])

    def _step(self, model, recorder: TraceRecorder, inputs, labels, ids) -> None:
        """One batch: forward, the clipped gradient sum, the noised step (Opacus's hooks, on
        the ghost path, on for it alone)."""
        import torch

        self.optimizer.zero_grad(set_to_none=True)
        if len(ids) == 0:  # an empty batch is a step too: noise alone
            for p in self.optimizer.params:
                p.grad = torch.zeros_like(p)
            self.optimizer.step()
        elif self.dense is not None:
            self._dense_gradients(model, recorder, inputs, labels, ids)
            self.optimizer.step()
        else:
            self._ghost_step(model, recorder, inputs, labels, ids)

    def _dense_gradients(self, model, recorder: TraceRecorder, inputs, labels, ids) -> None:
        """The batch's clipped gradient sum in each `p.grad` by one backward pass to the
        dense layers' outputs (`DenseClipping`), recording its logits."""
        import torch.nn.functional as F

        from memdash.analysis.record.tied_dropout import example_ids

        assert self.dense is not None
        with self.dense.capture(), example_ids(model, ids):
            logits = model(inputs[ids])
        losses = F.cross_entropy(logits, labels[ids], reduction="none")
        recorder.log_batch(ids, logits)
        self.dense.backward(losses)

    def _ghost_step(self, model, recorder: TraceRecorder, inputs, labels, ids) -> None:
        """The batch's clipped gradient sum by ghost clipping's two backward passes, recording
        its logits, and the step, with Opacus's hooks on for them alone."""
        import torch.nn.functional as F
        from opacus.utils.fast_gradient_clipping_utils import DPTensorFastGradientClipping

        from memdash.analysis.record.tied_dropout import example_ids

        self.model.enable_hooks()
        try:
            with warnings.catch_warnings():  # the inputs need no gradient: the hooks say so
                warnings.filterwarnings("ignore", "Full backward hook is firing", UserWarning)
                with example_ids(model, ids):
                    logits = self.model(inputs[ids])
                losses = F.cross_entropy(logits, labels[ids], reduction="none")
                recorder.log_batch(ids, logits)
                DPTensorFastGradientClipping(self.model, self.optimizer, losses, "mean").backward()
            self.optimizer.step()
        finally:  # the recorder's input-gradient passes (eval mode) need them off
            self.model.disable_hooks()


def _ghost(model: nn.Module, clip: float) -> nn.Module:
    """`model` wrapped in Opacus's ghost clipping, its hooks off (on only in a step)."""
    from opacus.grad_sample.grad_sample_module_fast_gradient_clipping import (
        GradSampleModuleFastGradientClipping,
    )

    wrapped = GradSampleModuleFastGradientClipping(
        model, batch_first=True, loss_reduction="mean", max_grad_norm=clip
    )
    wrapped.disable_hooks()  # not in the recorder's eval passes
    return wrapped
