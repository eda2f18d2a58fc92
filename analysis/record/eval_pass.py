"""The pieces of the recorder's eval pass: forward passes, layer embeddings, input gradients.

`forward_with_ids` runs the model on a batch with its example ids known to any example-tied
dropout; `captured_embeddings` collects named layers' outputs through forward hooks (what a layer
stores is `layer_embedding`) and `stacked_embeddings` turns them into the (N, D) arrays of
embeddings/; `eval_logits` is the pass over every example in batches, with each example's loss
sensitivity when asked; `critical_subset` and `critical_flags` find the critical samples of
Arpit et al. (2017) among a seeded subset of the examples.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from memdash.analysis.measures.sensitivity import critical_samples, loss_sensitivity
from memdash.analysis.record.tied_dropout import example_ids


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


def eval_logits(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    *,
    sensitivity: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The model's logits on every example, `batch_size` examples a forward pass.

    Parameters
    ----------
    model : the network, in the mode the pass wants (eval)
    inputs : shape (N, ...), row i = example i
    labels : int64, shape (N,), the labels trained with
    batch_size : examples per forward pass
    sensitivity : also each example's loss sensitivity (Arpit et al.), from the same forward
        pass plus one backward a batch

    Returns
    -------
    (logits, sensitivity): shapes (N, C) and (N,), the second None unless asked for
    """
    chunks = zip(
        torch.split(inputs, batch_size),
        torch.split(torch.arange(len(inputs), device=inputs.device), batch_size),
        strict=True,
    )
    forward = partial(forward_with_ids, model)
    if not sensitivity:
        with torch.no_grad():
            return torch.cat([forward(x, ids) for x, ids in chunks]), None
    with frozen_parameters(model):  # gradients reach the inputs only
        parts = [loss_sensitivity(forward, x, labels[ids], ids) for x, ids in chunks]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


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
