"""The eval pass's batch size when the user gives none: the largest that fits a memory budget,
whatever the training batch size.

`eval_batch_size` runs the network once on `PROBE` examples (eval mode, under
``torch.inference_mode``), sums the bytes of every leaf module's outputs per example plus
the example's input (`bytes_per_example`: an upper bound on what an inference pass keeps
alive at once, since it frees each output once the next module has read it), and takes the
largest power of two whose batch of those bytes fits the budget (`memory_budget`): a
quarter of the free memory of a CUDA device, or `CPU_BUDGET` on the CPU, where a batch
larger than the caches is slower, not faster (on a quiet 2-core machine, inference-mode
passes against no_grad at batch 512: memdash's CNN on 16x16 images, 131 kB an example by
this count, 0.88x at batch 256, 0.92x at 512, 1.11x at 1024, 1.37x at 2048; the benchmark's
two-layer BERT on 32 tokens, 249 kB, against no_grad at 256: 1.07x at 128, 0.95x at 256,
1.08x at 512, 1.51x at 2048); then at least `MIN_BATCH`, at most `MAX_BATCH` and at most
the number of examples.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from memdash.analysis.record.eval_pass import forward_with_ids, normal_buffers

__all__ = ["CPU_BUDGET", "MAX_BATCH", "MIN_BATCH", "PROBE", "bytes_per_example", "eval_batch_size"]

PROBE = 4  # examples in the probe's forward pass
CPU_BUDGET = 64 * 2**20  # bytes: batch 256 of memdash's CNN and of the benchmark's BERT
MIN_BATCH, MAX_BATCH = 16, 4096


def _tensors(output: Any) -> Iterator[torch.Tensor]:
    """The tensors in a module's output: itself, or those in a tuple, list or dict
    (a Hugging Face ``ModelOutput`` is a dict)."""
    if isinstance(output, torch.Tensor):
        yield output
    elif isinstance(output, tuple | list):
        for item in output:
            yield from _tensors(item)
    elif isinstance(output, dict):
        for item in output.values():
            yield from _tensors(item)


def bytes_per_example(model: nn.Module, inputs: torch.Tensor) -> float:
    """Bytes an inference pass of `model` holds per example, at most: the sum over its leaf
    modules of their outputs' bytes, plus the input's, measured on `inputs` (shape (B, ...),
    B >= 1) in eval mode under ``torch.inference_mode`` (the model's mode is restored)."""
    if len(inputs) == 0:
        raise ValueError("bytes_per_example needs at least one example to probe")
    total = [inputs.element_size() * inputs.numel()]

    def count(_module: nn.Module, _inputs: Any, output: Any) -> None:
        total[0] += sum(t.element_size() * t.numel() for t in _tensors(output))

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    hooks = [m.register_forward_hook(count) for m in leaves]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            ids = torch.arange(len(inputs), device=inputs.device)
            forward_with_ids(model, inputs, ids)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    normal_buffers(model)
    return total[0] / len(inputs)


def memory_budget(device: torch.device | str) -> int:
    """Bytes the eval pass may take: a quarter of a CUDA device's free memory, else
    `CPU_BUDGET`."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free) // 4
    return CPU_BUDGET


def eval_batch_size(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    device: torch.device | str | None = None,
    budget: int | None = None,
) -> int:
    """The eval pass's examples per forward pass for `model` on `inputs` (shape (N, ...)):
    the largest power of two whose batch fits `budget` bytes (default `memory_budget` of
    `device`, the inputs' own by default) by `bytes_per_example` of the first `PROBE`
    examples moved to `device`, within [`MIN_BATCH`, `MAX_BATCH`] and at most N."""
    if len(inputs) == 0:
        raise ValueError("the eval pass has no examples")
    device = inputs.device if device is None else torch.device(device)
    budget = memory_budget(device) if budget is None else budget
    if budget <= 0:
        raise ValueError(f"the eval pass's memory budget must be positive, got {budget} bytes")
    per_example = bytes_per_example(model, inputs[:PROBE].to(device))
    fits = max(int(budget // per_example), 1)
    batch = 1 << (fits.bit_length() - 1)  # the largest power of two <= fits
    return int(min(max(batch, MIN_BATCH), MAX_BATCH, len(inputs)))
