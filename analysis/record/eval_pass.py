"""The pieces of the recorder's eval pass: forward passes, layer embeddings, input gradients.

`forward_with_ids` runs the model on a batch with its example ids known to any example-tied
dropout; `captured_embeddings` collects named layers' outputs through forward hooks (what a layer
stores is `layer_embedding`) and `stacked_embeddings` turns them into the (N, D) arrays of
embeddings/; `eval_logits` is the pass over every example in batches; `input_measures` the
measures of the inputs' gradients (loss sensitivity, Arpit et al. 2017; curvature, Garg, Roy
et al. 2023) in their own passes; `critical_subset` and `critical_flags` find the critical
samples of Arpit et al. (2017) among a seeded subset of the examples.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from memdash.analysis.measures.curvature import input_curvature, input_gradient
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


def eval_logits(model: nn.Module, inputs: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The model's logits on every example, `batch_size` examples a forward pass without
    gradients (the measures of the inputs' gradients have their own, `input_measures`).

    Parameters
    ----------
    model : the network, in the mode the pass wants (eval)
    inputs : shape (N, ...), row i = example i
    batch_size : examples per forward pass

    Returns
    -------
    logits of shape (N, C)
    """
    chunks = torch.split(inputs, batch_size)
    ids = torch.split(torch.arange(len(inputs), device=inputs.device), batch_size)
    with torch.no_grad():
        return torch.cat([forward_with_ids(model, x, i) for x, i in zip(chunks, ids, strict=True)])


def curvature_generator(seed: int, epoch: int, device: torch.device | str) -> torch.Generator:
    """The generator of an epoch's curvature directions, on `device`: seeded by (run seed,
    epoch) through a stream of its own, so the directions never share the seeds of training
    (its order, its dropout masks) and never touch the global random state."""
    state = np.random.SeedSequence((seed, epoch, _CURVATURE_STREAM)).generate_state(1, np.uint64)
    return torch.Generator(device=device).manual_seed(int(state[0]))


def input_measures(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    *,
    sensitivity: bool = False,
    curvature: tuple[int, float, torch.Generator] | None = None,
    clock: Clock | None = None,
) -> dict[str, torch.Tensor]:
    """Each example's loss sensitivity and curvature, as asked, `batch_size` examples at once.

    Per batch, one forward and one backward pass give grad_x L(x), shared by both measures:
    its L1 norm is the loss sensitivity (Arpit et al. 2017), and the curvature (Garg, Roy et
    al. 2023, `measures.curvature.input_curvature`) differentiates the n perturbed copies
    of the batch stacked into one batch. The parameters require no gradient meanwhile.

    Parameters
    ----------
    model : the network, in eval mode
    inputs : shape (N, ...), row i = example i
    labels : int64, shape (N,), the labels trained with
    batch_size : examples per pass (the curvature's stacks hold n times as many rows)
    sensitivity : compute ``loss_sensitivity``
    curvature : (directions n, step h, generator of the directions), or None
    clock : times the passes: the gradient at x as ``loss_sensitivity`` when it is asked
        for (else as ``curvature``), the perturbed copies as ``curvature``

    Returns
    -------
    ``loss_sensitivity`` and ``curvature`` as asked, float32 tensors of shape (N,)
    """
    if not sensitivity and curvature is None:
        return {}
    clock = clock or Clock()
    forward = partial(forward_with_ids, model)
    found: dict[str, list[torch.Tensor]] = {"loss_sensitivity": [], "curvature": []}
    ids_all = torch.arange(len(inputs), device=inputs.device)
    with frozen_parameters(model):  # gradients reach the inputs only
        for x, ids in zip(
            torch.split(inputs, batch_size), torch.split(ids_all, batch_size), strict=True
        ):
            y = labels[ids]
            with clock.part("loss_sensitivity" if sensitivity else "curvature"):
                _, grad = input_gradient(forward, x, y, ids)
                if sensitivity:
                    found["loss_sensitivity"].append(grad.flatten(1).abs().sum(1).float())
            if curvature is not None:
                directions, step, generator = curvature
                with clock.part("curvature"):
                    found["curvature"].append(
                        input_curvature(
                            forward,
                            x,
                            y,
                            ids,
                            generator=generator,
                            directions=directions,
                            step=step,
                            gradient=grad,
                        )
                    )
    return {name: torch.cat(parts) for name, parts in found.items() if parts}


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
    sensitivity: bool = False,
    curvature: tuple[int, float, int] | None = None,
    critical: tuple[torch.Tensor, float, int, int] | None = None,
    clock: Clock | None = None,
) -> dict[str, torch.Tensor]:
    """An epoch's recorded measures of the inputs, each in its own passes, in eval mode
    (the model's mode is restored after).

    Parameters
    ----------
    model, inputs, labels, batch_size : as `input_measures`
    epoch : the epoch recorded (with the run seed, it seeds the curvature's directions)
    sensitivity : record ``loss_sensitivity``
    curvature : (directions, step, run seed) to record ``curvature``, or None
    critical : (subset of ids, radius, steps, seed) to record ``critical``
        (`critical_flags`), or None
    clock : times the parts (``loss_sensitivity``, ``curvature``, ``critical``)

    Returns
    -------
    the measures recorded, float32 tensors of shape (N,)
    """
    clock = clock or Clock()
    was_training = model.training
    model.eval()
    try:
        directions = None
        if curvature is not None:
            n, step, seed = curvature
            directions = (n, step, curvature_generator(seed, epoch, inputs.device))
        found = input_measures(
            model,
            inputs,
            labels,
            batch_size,
            sensitivity=sensitivity,
            curvature=directions,
            clock=clock,
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
