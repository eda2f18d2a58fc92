"""DP-SGD's clipped gradient sum of dense layers in one backward pass (Abadi et al. 2016,
"Deep Learning with Differential Privacy"; the norm identity of Goodfellow 2015, "Efficient
Per-Example Gradient Computations", used by Li et al. 2022's ghost clipping).

For a dense layer z = a W^T + b on (batch, features) inputs, example i's weight gradient is
the outer product g_i a_i^T (g_i = dL_i/dz_i) and its bias gradient g_i, so the squared norm
of its whole gradient is the sum over the layers of ||a_i||^2 ||g_i||^2 + ||g_i||^2, and the
sum of the clipped gradients is (c g)^T a and sum_i c_i g_i with c_i = min(1, C / (norm_i +
1e-6)) (Opacus's factor): one backward pass to the layers' outputs, no per-example gradient.

`clip_factors` is that arithmetic, shared by `DenseClipping` (one model, `record.dp`) and
the stacked ensemble's `ensemble.dp_batched.clipped_sums` (K models, a leading model axis).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

_EPS = 1e-6  # Opacus's: c_i = min(1, C / (norm_i + 1e-6))


def clip_factors(
    inputs: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    clip: float,
    *,
    real: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each example's clip factor and gradient norm over a stack of dense layers with biases.

    Parameters
    ----------
    inputs : per layer, its input a, shape (..., B, in) (e.g. (B, in), or (K, B, in) for K
        stacked models)
    grads : per layer, the gradient g of the summed per-example losses with respect to its
        output z, shape (..., B, out)
    clip : C > 0, the L2 norm each example's gradient is clipped to
    real : bool (..., B), the real examples of a padded batch (None: all of them)

    Returns
    -------
    (factors, norms), each (..., B): c_i = min(1, C / (norm_i + 1e-6)) (higher = the example's
    gradient kept more nearly whole; 1 = not clipped) and norm_i, the L2 norm of example i's
    whole gradient (sum over layers of ||a_i||^2 ||g_i||^2 + ||g_i||^2), both 0 at padding.
    """
    if len(inputs) != len(grads) or not inputs:
        raise ValueError(f"need one gradient per layer input, got {len(inputs)} and {len(grads)}")
    sq = 0
    for a, g in zip(inputs, grads, strict=True):
        g2 = g.square().sum(-1)
        sq = sq + a.square().sum(-1) * g2 + g2  # weight g_i a_i^T, bias g_i
    norms = sq.sqrt()
    if real is not None:
        norms = norms * real
    factors = (clip / (norms + _EPS)).clamp(max=1.0)
    if real is not None:
        factors = factors * real
    return factors, norms


def why_not_dense(model: nn.Module) -> str | None:
    """None when every trainable layer of `model` is an `nn.Linear` with a trainable weight
    and bias, each its own (no parameter shared), else why not, in words naming the layer."""
    trainable = [
        (name, m)
        for name, m in model.named_modules()
        if any(p.requires_grad for p in m.parameters(recurse=False))
    ]
    if not trainable:
        return "it has no trainable layer"
    for name, m in trainable:
        if type(m) is not nn.Linear:
            return f"layer {name!r} is a {type(m).__name__}, not an nn.Linear"
        if m.bias is None or not (m.weight.requires_grad and m.bias.requires_grad):
            return f"layer {name!r} has no trainable bias or a frozen weight"
    params = [id(p) for _, p in model.named_parameters(remove_duplicate=False)]
    if len(params) != len(set(params)):
        return "some of its parameters are shared between layers"
    return None


class DenseClipping:
    """The clipped gradient sum of a model whose trainable layers are all `nn.Linear`
    (`why_not_dense`) applied to (batch, features) inputs, put into each parameter's ``grad``.

    Forward hooks keep each layer's input a and output z inside `capture` (and only there,
    with gradients enabled), so they see what the forward really computed, dropout and
    example-tied dropout included; `backward` takes `torch.autograd.grad` of the summed
    per-example losses with respect to the outputs (no parameter gradient computed), the
    clip factors (`clip_factors`), and sets W.grad = (c g)^T a, b.grad = sum_i c_i g_i.
    """

    def __init__(self, model: nn.Module, *, clip: float) -> None:
        why = why_not_dense(model)
        if why is not None:
            raise ValueError(f"dense clipping needs nn.Linear layers only: {why}")
        if not clip > 0:
            raise ValueError(f"clip must be > 0, got {clip}")
        self.clip = float(clip)
        self.layers = [m for m in model.modules() if type(m) is nn.Linear]
        self._names = {id(m): name for name, m in model.named_modules()}
        self._kept: list[tuple[nn.Linear, torch.Tensor, torch.Tensor]] = []
        self._capturing = False
        for m in self.layers:
            m.register_forward_hook(self._keep)

    def _keep(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if not self._capturing or not torch.is_grad_enabled():
            return
        (a,) = args
        name = self._names[id(module)]
        if a.dim() != 2:
            raise ValueError(
                f"dense clipping needs (batch, features) inputs; layer {name!r} got shape "
                f"{tuple(a.shape)}"
            )
        if any(m is module for m, _, _ in self._kept):
            raise ValueError(f"dense clipping needs each layer called once; {name!r} was reused")
        self._kept.append((module, a.detach(), output))

    @contextmanager
    def capture(self) -> Iterator[None]:
        """Keep the layers' inputs and outputs of the forward passes inside."""
        self._kept, self._capturing = [], True
        try:
            yield
        finally:
            self._capturing = False

    def output_grads(self, losses: torch.Tensor) -> tuple[list, list, list]:
        """(layers, inputs a (B, in), gradients g (B, out) of sum(losses) w.r.t. the outputs)
        of the captured forward; a layer the losses do not reach has g = 0."""
        kept, self._kept = self._kept, []
        if not kept:
            raise ValueError("dense clipping: no layer ran inside capture()")
        layers, inputs, outputs = (list(t) for t in zip(*kept, strict=True))
        grads = torch.autograd.grad(
            losses.sum(), outputs, allow_unused=True, materialize_grads=True
        )
        return layers, inputs, list(grads)

    def clipped_sums(self, layers: list, inputs: list, grads: list) -> torch.Tensor:
        """Put each layer's sum of clipped per-example gradients into its ``grad`` (zeros for
        a layer that did not run); returns the norms (B,) before clipping."""
        factors, norms = clip_factors(inputs, grads, self.clip)
        for m, a, g in zip(layers, inputs, grads, strict=True):
            weighted = g * factors[:, None]
            m.weight.grad = weighted.T.mm(a)
            m.bias.grad = weighted.sum(0)
        ran = {id(m) for m in layers}
        for m in self.layers:
            if id(m) not in ran:
                m.weight.grad, m.bias.grad = torch.zeros_like(m.weight), torch.zeros_like(m.bias)
        return norms

    def backward(self, losses: torch.Tensor) -> torch.Tensor:
        """`output_grads` then `clipped_sums`: the per-example gradient norms (B,)."""
        return self.clipped_sums(*self.output_grads(losses))
