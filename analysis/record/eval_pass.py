"""The pieces of the recorder's eval pass: forward passes, layer embeddings, input gradients.

`forward_with_ids` runs the model on a batch with its example ids known to any example-tied
dropout; `captured_embeddings` collects named layers' outputs through forward hooks (what a layer
stores is `layer_embedding`) and `stacked_embeddings` turns them into the (N, D) arrays of
embeddings/; `eval_logits` is the pass over every example in batches, with each example's input
gradient when asked (loss sensitivity, Arpit et al. 2017, is its L1 norm); `curvatures` the
input-loss curvature of Garg, Roy et al. (2023) from it, of the training split's examples only
(`train_rows`: the paper's, and the scoreboard's, examples); `critical_subset` and `critical_flags`
find the critical samples of Arpit et al. (2017) among a seeded subset of the examples;
`epoch_measures` runs the last two in their own passes after the eval pass. Without gradients the
pass runs under ``torch.inference_mode`` with its 2-D max pools in channels-last layout on the CPU
(`channels_last_pools`: the same values, several times faster).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from memdash.analysis.measures.curvature import cross_entropy, input_curvature
from memdash.analysis.measures.sensitivity import critical_samples
from memdash.analysis.record.tied_dropout import example_ids
from memdash.analysis.record.timing import Clock

_CURVATURE_STREAM = 0x43555256  # "CURV": keeps the directions' seeds apart from others


def layer_embedding(layer: str, output: Any) -> torch.Tensor:
    """What a layer's output stores as its embedding, shape (B, ...).

    A tensor is itself; a Hugging Face ``ModelOutput`` gives its
    ``pooler_output`` when it has one, else the first token's hidden state
    (``last_hidden_state[:, 0]``, the [CLS] position).
    """
    if isinstance(output, torch.Tensor):
        return output
    for field in ("pooler_output", "last_hidden_state"):
        value = getattr(output, field, None)
        if isinstance(value, torch.Tensor):
            return value if field == "pooler_output" else value[:, 0]
    raise TypeError(
        f"layer {layer!r} returns a {type(output).__name__}, not a tensor: choose a layer "
        "whose output is a tensor to record its embeddings"
    )


@contextlib.contextmanager
def captured_embeddings(
    model: nn.Module, layers: Iterable[str], *, capture: bool = True
) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Per layer, the list its outputs are appended to (flattened, shape (B, D)) inside the
    block; with ``capture=False`` the lists stay empty. The hooks are removed on leaving."""
    captured: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    hooks = []
    if capture:
        for name in captured:
            hooks.append(
                getattr(model, name).register_forward_hook(
                    lambda _m, _i, out, name=name: captured[name].append(
                        layer_embedding(name, out).detach().flatten(1)
                    )
                )
            )
    try:
        yield captured
    finally:
        for hook in hooks:
            hook.remove()


def stacked_embeddings(
    captured: dict[str, list[torch.Tensor]], dtype: np.dtype
) -> dict[str, np.ndarray]:
    """`captured_embeddings` as one (N, D) array per layer that captured any, in `dtype`
    (``float16``, else ``float32``)."""
    torch_dtype = torch.float16 if dtype == np.float16 else torch.float32
    return {
        name: torch.cat(parts).to(torch_dtype).cpu().numpy()
        for name, parts in captured.items()
        if parts
    }


def forward_with_ids(model: nn.Module, inputs: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The model on a batch, its example ids known to any example-tied dropout (keeping the
    graph, for gradients with respect to the inputs)."""
    with example_ids(model, ids):
        return model(inputs)


@contextlib.contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """No parameter asks for a gradient inside the block (a backward pass then computes
    the gradients with respect to the inputs alone)."""
    wanted = [p for p in model.parameters() if p.requires_grad]
    for p in wanted:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in wanted:
            p.requires_grad_(True)


def normal_buffers(model: nn.Module) -> None:
    """Replace any buffer that a forward pass under ``torch.inference_mode`` created (a
    lazily built cache, say) by a normal copy, so that training can use it afterwards
    (autograd refuses inference tensors)."""
    for module in model.modules():
        for name, buffer in module._buffers.items():
            if buffer is not None and buffer.is_inference():
                module._buffers[name] = buffer.clone()


@contextlib.contextmanager
def channels_last_pools(model: nn.Module) -> Iterator[None]:
    """Inside the block each `nn.MaxPool2d` of `model` (without ``return_indices``) pools a
    contiguous 4-D CPU input in channels-last layout and hands on its output contiguous again.

    PyTorch's CPU max pool is vectorized over the channels in channels-last layout only; in the
    default layout it walks each plane alone (on the benchmark's CNN at batch 256 the two pools
    took half of the eval pass's forward). A maximum is exact, so the values are the same bit for
    bit, and the layers after the pool see the layout they always see. Inputs in any other
    layout, on another device or of another rank are left as they are.
    """
    hooks = []
    for module in model.modules():
        if isinstance(module, nn.MaxPool2d) and not module.return_indices:
            converted = [False]

            def before(_m: nn.Module, args: tuple, converted: list[bool] = converted) -> Any:
                x = args[0] if args else None
                converted[0] = (
                    isinstance(x, torch.Tensor)
                    and x.dim() == 4
                    and x.device.type == "cpu"
                    and x.is_contiguous()
                )
                if converted[0]:
                    return (x.contiguous(memory_format=torch.channels_last), *args[1:])
                return None

            def after(
                _m: nn.Module, _args: tuple, out: Any, converted: list[bool] = converted
            ) -> Any:
                return out.contiguous() if converted[0] else None

            hooks += [
                module.register_forward_pre_hook(before),
                module.register_forward_hook(after),
            ]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def eval_logits(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    *,
    gradients: bool = False,
    clock: Clock | None = None,
    part: str = "input_gradient",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The model's logits on every example, `batch_size` examples a forward pass.

    Parameters
    ----------
    model : the network, in the mode the pass wants (eval)
    inputs : shape (N, ...), row i = example i
    labels : int64, shape (N,), the labels trained with
    batch_size : examples per forward pass
    gradients : also each example's input gradient grad_x L(x) of its cross-entropy, from
        the same forward pass plus one backward a batch (the parameters require no gradient
        meanwhile): loss sensitivity's (Arpit et al.) and curvature's (Garg, Roy et al.).
        Without them the pass runs under ``torch.inference_mode`` (the logits returned are
        inference tensors: read them, never modify them in place or back-propagate), its max
        pools in channels-last layout (`channels_last_pools`)
    clock, part : times the backward passes as `part` (inside the clock's eval pass)

    Returns
    -------
    (logits, gradients): shapes (N, C) and that of `inputs`, the second None unless asked
    """
    chunks = zip(
        torch.split(inputs, batch_size),
        torch.split(torch.arange(len(inputs), device=inputs.device), batch_size),
        strict=True,
    )
    if not gradients:
        # no autograd bookkeeping: nothing here escapes into it
        with torch.inference_mode(), channels_last_pools(model):
            logits = torch.cat([forward_with_ids(model, x, ids) for x, ids in chunks])
        normal_buffers(model)
        return logits, None
    clock = clock or Clock()
    logits, grads = [], []
    with frozen_parameters(model), torch.enable_grad():  # gradients reach the inputs only
        for x, ids in chunks:
            x = x.detach().clone().requires_grad_(True)
            out = forward_with_ids(model, x, ids)
            with clock.part(part):
                (grad,) = torch.autograd.grad(cross_entropy(out, labels[ids]).sum(), x)
            logits.append(out.detach())
            grads.append(grad)
    return torch.cat(logits), torch.cat(grads)


def curvature_seed(seed: int, epoch: int) -> int:
    """The key of an epoch's curvature directions (`measures.curvature.rademacher`): from
    (run seed, epoch) through a stream of its own, so the directions never share the seeds of
    training (its order, its dropout masks) and never touch the global random state."""
    state = np.random.SeedSequence((seed, epoch, _CURVATURE_STREAM)).generate_state(1, np.uint64)
    return int(state[0])


def train_rows(split: np.ndarray | None, device: torch.device | str) -> torch.Tensor | None:
    """The ids, ascending, of the examples whose split is ``train`` (trained canaries
    included), on `device`; None (every example) without a split."""
    if split is None:
        return None
    return torch.from_numpy(np.flatnonzero(np.asarray(split) == "train")).to(device)


def curvatures(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    gradients: torch.Tensor,
    batch_size: int,
    *,
    directions: int,
    step: float,
    seed: int,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """The input-loss curvature (Garg, Roy et al. 2023) of the examples `rows` (every
    example when None), `batch_size` of them at once: float32 (N,), NaN outside `rows`.

    The n perturbed copies of a batch are stacked into one batch
    (`measures.curvature.input_curvature`); `gradients` (shape of `inputs`) are grad_x L(x)
    from the eval pass (`eval_logits`), shared with loss sensitivity. Each example's
    directions depend on (`seed`, its id, the direction) alone, so leaving examples out
    changes no other's. The model is in eval mode; its parameters require no gradient
    meanwhile.
    """
    forward = partial(forward_with_ids, model)
    out = torch.full((len(inputs),), float("nan"), device=inputs.device)
    chosen = torch.arange(len(inputs), device=inputs.device) if rows is None else rows
    with frozen_parameters(model):
        for ids in torch.split(chosen, batch_size):
            out[ids] = input_curvature(
                forward,
                inputs[ids],
                labels[ids],
                ids,
                seed=seed,
                directions=directions,
                step=step,
                gradient=gradients[ids],
            )
    return out


def critical_subset(n: int, count: int, seed: int) -> torch.Tensor:
    """The ids, ascending, of the seeded subset of `count` of `n` examples (all when fewer)
    that the critical-sample search looks at."""
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randperm(n, generator=generator)[: min(count, n)]
    return pick.sort().values


def critical_flags(
    model: nn.Module,
    inputs: torch.Tensor,
    subset: torch.Tensor,
    batch_size: int,
    *,
    radius: float,
    steps: int,
    seed: int,
) -> torch.Tensor:
    """Per example, 1.0 if critical (Arpit et al.), 0.0 if not, NaN outside the subset.

    Parameters
    ----------
    model : the network, in the mode the search wants (eval)
    inputs : shape (N, ...), row i = example i
    subset : the ids searched (`critical_subset`), on the device of `inputs`
    batch_size : examples searched at once
    radius, steps, seed : the search's settings (`critical_samples`)

    Returns
    -------
    float32, shape (N,)
    """
    out = torch.full((len(inputs),), float("nan"), device=inputs.device)
    forward = partial(forward_with_ids, model)
    with frozen_parameters(model):
        for ids in torch.split(subset, batch_size):
            found = critical_samples(
                forward, inputs[ids], ids, radius=radius, steps=steps, seed=seed
            )
            out[ids] = found.float()
    return out


def epoch_measures(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    *,
    epoch: int,
    curvature: tuple[int, float, int] | None = None,
    curvature_rows: torch.Tensor | None = None,
    gradients: torch.Tensor | None = None,
    critical: tuple[torch.Tensor, float, int, int] | None = None,
    clock: Clock | None = None,
) -> dict[str, torch.Tensor]:
    """An epoch's recorded measures of the inputs beyond the eval pass's own, in eval mode
    (the model's mode is restored after).

    Parameters
    ----------
    model, inputs, labels, batch_size : as `eval_logits`
    epoch : the epoch recorded (with the run seed, it seeds the curvature's directions)
    curvature : (directions, step, run seed) to record ``curvature``, or None
    curvature_rows : the ids whose curvature is computed (`train_rows`), NaN for the
        others; every example when None
    gradients : grad_x L(x) of every example from the eval pass (`eval_logits`); computed
        here when curvature is recorded without them
    critical : (subset of ids, radius, steps, seed) to record ``critical``
        (`critical_flags`), or None
    clock : times the parts (``curvature``, ``critical``)

    Returns
    -------
    the measures recorded, float32 tensors of shape (N,)
    """
    clock = clock or Clock()
    was_training = model.training
    model.eval()
    found = {}
    try:
        if curvature is not None:
            n, step, seed = curvature
            with clock.part("curvature"):
                if gradients is None:
                    _, gradients = eval_logits(model, inputs, labels, batch_size, gradients=True)
                found["curvature"] = curvatures(
                    model,
                    inputs,
                    labels,
                    gradients,
                    batch_size,
                    directions=n,
                    step=step,
                    seed=curvature_seed(seed, epoch),
                    rows=curvature_rows,
                )
        if critical is not None:
            subset, radius, steps, seed = critical
            with clock.part("critical"):
                found["critical"] = critical_flags(
                    model, inputs, subset, batch_size, radius=radius, steps=steps, seed=seed
                )
    finally:
        model.train(was_training)
    return found
