"""What a run needs of the machine's memory at least, estimated from its config before any
data is loaded or model built, so that a size that cannot fit is refused naming its option.

The estimate is a floor, never a guess above the truth: the model's parameters counted
exactly (the model laid out on torch's meta device, which allocates nothing) with their
gradients and the optimizer's state; the inputs with their canaries in float32, with at least
64 bytes of example table and trace a row and 16 bytes a training id of an epoch; a
minibatch's activations and their gradients; one epoch's embeddings. Datasets read from
files count only what the options tell (their rows are not known before they are read).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from memdash.analysis.record.config import RunConfig, is_text
from memdash.analysis.record.data import MNIST1D_DEFAULT_N, SYNTHETIC_DEFAULT_N

# rows and one example's shape of the data sets memdash makes itself (record/data.py; the
# synthetic one's shape is its option); sklearn's digits are 1797 8x8 images
KNOWN = {
    "digits": (1797, (1, 8, 8)),
    "mnist1d": (MNIST1D_DEFAULT_N, (1, 40)),
    "synthetic": (SYNTHETIC_DEFAULT_N, None),
}
ROW_BYTES = 64  # at least, a row of the example table and of one epoch's trace
ID_BYTES = 16  # a training id of an epoch, and its shuffled copy (int64)


@dataclass(frozen=True)
class Part:
    """One big thing a run holds: the `option` (with its `value`) that sets its `size` in
    bytes, what it is in words, and where it lives: "host", "device" or "both"."""

    option: str
    value: str
    what: str
    detail: str
    size: int
    where: str = "host"

    def line(self) -> str:
        return f"{self.option} {self.value}: {self.what} need at least {_bytes(self.size)}" + (
            f" {self.detail}" if self.detail else ""
        )


def machine_memory() -> int | None:
    """This machine's physical memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def device_memory(device: str) -> int | None:
    """The memory of a CUDA device in bytes (None for the cpu and other devices)."""
    if not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    index = int(device.partition(":")[2] or 0)
    try:
        return int(torch.cuda.get_device_properties(index).total_memory)
    except (RuntimeError, AssertionError, ValueError):  # no such device: training will say
        return None


def parts(config: RunConfig, *, models: int = 1) -> list[Part]:
    """The big things a run of `config` holds (`models` trained at once, as an estimate
    does), each at least as big as its `size`."""
    d, t, r = config.data, config.train, config.record
    if is_text(d):
        return _text_parts(config, models)
    known_rows, known_shape = KNOWN.get(d.dataset, (0, None))
    rows = (d.n_examples or known_rows) if d.dataset in ("synthetic", "mnist1d") else known_rows
    shape = known_shape or (d.shape if d.dataset == "synthetic" else (1, *(d.image_size or ())))
    values = math.prod(shape)
    n_classes = d.n_classes if d.dataset == "synthetic" else 10 if d.dataset in KNOWN else 2
    trained = d.canaries * len(d.canary_repeats)
    canary_rows = trained + (d.reference_canaries if d.canaries else 0)
    train_rows = math.floor((1 - d.test_fraction) * rows)
    ids = train_rows + d.canaries * sum(d.canary_repeats)
    found = [_data_part(config, rows, canary_rows, values, ids)]
    layers = _layers(config, shape, n_classes)
    if layers is not None:
        params, outputs = layers
        found.append(_model_part(config, params, models))
        batch = min(t.batch_size, max(ids, 1))
        units = sum(n for name, n in outputs.items() if params[name])  # a view is no copy
        found.append(
            Part(
                "--batch-size",
                str(t.batch_size),
                f"a minibatch's activations ({batch:,} examples x {units:,} values)",
                "(and their gradients, float32)",
                batch * units * 4 * 2 * models,
                "device",
            )
        )
        if t.dp is not None and models == 1:  # Opacus keeps each example's gradient
            n = sum(params.values())
            option = "--dp-noise" if t.dp.epsilon is None else "--dp-epsilon"
            found.append(
                Part(
                    option,
                    f"{t.dp.noise_multiplier if t.dp.epsilon is None else t.dp.epsilon:g}",
                    f"DP-SGD's per-example gradients ({batch:,} examples x {n:,} parameters)",
                    "(Opacus's grad_sample, float32; a smaller --batch-size needs less)",
                    batch * n * 4,
                    "device",
                )
            )
        width = sum(outputs.get(name, 0) for name in r.embed_layers)
        itemsize = 2 if r.embed_dtype == "float16" else 4
        if width and r.embed_epochs:
            found.append(
                Part(
                    "--embed-layers",
                    ",".join(r.embed_layers),
                    f"one epoch's embeddings ({rows + canary_rows:,} examples x {width:,} values)",
                    f"({r.embed_dtype})",
                    (rows + canary_rows) * width * itemsize,
                )
            )
    return found


def lm_parameters(config: RunConfig) -> dict[str, int]:
    """A language model's parameters by part, counted from its config as the models build it
    (GPT-2: embeddings of tokens and positions, per block 12 W^2 + 13 W, the final norm, and
    the head, tied to the token embeddings but stored twice in a checkpoint; an LSTM: per
    layer 8 W^2 + 8 W); {} for ``hf`` (its checkpoint says)."""
    m, d = config.model, config.data
    vocab = 257 if d.tokenizer == "byte" else d.vocab_size  # BPE: <bos> included
    width, context = m.width, m.context or d.seq_len + 1  # BOS and every token
    if m.name == "gpt":
        blocks = m.n_layers * (12 * width**2 + 13 * width)
        return {"embed": (vocab + context) * width, "blocks": blocks, "out": 2 * width}
    if m.name == "lstm":
        return {"embed": vocab * width, "blocks": m.n_layers * (8 * width**2 + 8 * width)}
    return {}


def _text_parts(config: RunConfig, models: int) -> list[Part]:
    """A text run: the model's weights (named by --width, or --layers when they weigh more),
    and a minibatch's logits over the vocabulary with the activations of its layers."""
    m, d, t = config.model, config.data, config.train
    params = lm_parameters(config)
    if not params:
        return []
    vocab = 257 if d.tokenizer == "byte" else d.vocab_size  # BPE: <bos> included
    head = vocab * m.width
    found = [_model_part(config, params | {"head": head}, models)]
    tokens = t.batch_size * d.seq_len
    values = tokens * (vocab + 16 * m.width * m.n_layers)
    found.append(
        Part(
            "--batch-size",
            str(t.batch_size),
            f"a minibatch's logits and activations ({tokens:,} tokens)",
            "(and their gradients, float32)",
            values * 4 * 2 * models,
            "device",
        )
    )
    return found


def _data_part(config: RunConfig, rows: int, canary_rows: int, values: int, ids: int) -> Part:
    """The inputs, their canaries, the example table, one epoch's trace and training ids,
    named by the option that sets the most of them."""
    d = config.data
    if canary_rows > rows:
        option, value = "--canaries", str(d.canaries)
        if d.reference_canaries > d.canaries * len(d.canary_repeats):
            option, value = "--reference-canaries", str(d.reference_canaries)
    elif d.dataset == "synthetic":
        by_shape = values > rows
        option = "--shape" if by_shape else "--n-examples"
        value = "x".join(map(str, d.shape)) if by_shape else str(rows)
    elif d.dataset == "mnist1d":
        option, value = "--n-examples", str(rows)
    else:
        option, value = ("--dataset", d.dataset) if d.dataset in KNOWN else ("--data-path", d.path)
    total = rows + canary_rows
    return Part(
        option,
        value,
        f"the inputs ({total:,} rows of {values:,} values)",
        "(float32, with the example table, one epoch's trace and its training ids)",
        total * values * 4 + total * ROW_BYTES + ids * ID_BYTES,
        "both",
    )


def _model_part(config: RunConfig, params: dict[str, int], models: int) -> Part:
    """The weights, gradients and optimizer state, named by the option that sizes the model."""
    m, t = config.model, config.train
    state = {"adam": 2}.get(t.optimizer, 1 if t.momentum > 0 else 0)
    kept = {0: "weights and gradients", 1: "weights, gradients and sgd's momentum"}
    kept[2] = "weights, gradients and adam's two moments"
    n = sum(params.values())
    if models > 1:
        option, value, whose = "--models-per-batch", str(models), f"the {models} models'"
    elif m.name in ("gpt", "lstm"):
        option, value = "--width", f"{m.width} with --layers {m.n_layers}"
        whose = "the model's"
    elif m.name == "resnet":
        option, value, whose = "--width", str(m.width), "the model's"
    else:
        conv = sum(v for k, v in params.items() if k.startswith("conv"))
        by_channels = m.name == "cnn" and conv > n - conv
        option = "--channels" if by_channels else "--hidden"
        value = ",".join(map(str, m.channels if by_channels else m.hidden))
        whose = "the model's"
    return Part(
        option,
        value,
        f"{whose} {n * models:,} parameters",
        f"({kept[state]}, float32)",
        n * models * 4 * (2 + state),
        "device",
    )


def _layers(
    config: RunConfig, shape: tuple[int, ...], n_classes: int
) -> tuple[dict[str, int], dict[str, int]] | None:
    """(parameters, output values of one example) by layer, from the model laid out on the
    meta device; None when the config does not make a model (training says why)."""
    import torch

    from memdash.analysis.record.models import from_config

    outputs: dict[str, int] = {}
    try:
        with torch.device("meta"):
            model = from_config(config.model, tuple(shape), max(n_classes, 2)).eval()
            for name, layer in model.named_children():
                layer.register_forward_hook(
                    lambda _m, _in, out, name=name: outputs.__setitem__(name, out[0].numel())
                )
            with torch.no_grad():
                model(torch.empty((1, *shape)))
    except (ValueError, RuntimeError):
        return None
    params = {
        name: sum(p.numel() for p in layer.parameters()) for name, layer in model.named_children()
    }
    return params, outputs


def unknown_layers(config: RunConfig) -> str | None:
    """None when every --embed-layers name is a layer of the model, else one line naming them
    and the model's layers (for the data sets whose shape is known before they are read)."""
    d = config.data
    if not config.record.embed_layers or d.dataset not in KNOWN:
        return None
    shape = KNOWN[d.dataset][1] or d.shape
    layers = _layers(config, shape, d.n_classes if d.dataset == "synthetic" else 10)
    if layers is None:
        return None
    names = [name for name, params in layers[0].items() if params]  # as models.layer_names
    unknown = sorted(set(config.record.embed_layers) - set(names))
    if not unknown:
        return None
    given = ",".join(config.record.embed_layers)
    return (
        f"--embed-layers {given}: unknown embedding layers {unknown}; the model's layers: {names}"
    )


def unfit(config: RunConfig, *, models: int = 1) -> str | None:
    """None when the run can fit this machine's memory (and its CUDA device's), else one line
    naming the option whose size cannot."""
    found = parts(config, models=models)
    accelerator = config.train.device != "cpu"
    host = [p for p in found if not accelerator or p.where != "device"]
    problem = _over(host, machine_memory(), "this machine's")
    if problem is None and accelerator:
        on_device = [p for p in found if p.where != "host"]
        whose = f"the {config.train.device} device's"
        problem = _over(on_device, device_memory(config.train.device), whose)
    return problem


def _over(found: list[Part], memory: int | None, whose: str) -> str | None:
    """The part (or all together) over `memory`, as one line; None when they fit."""
    if memory is None or not found:
        return None
    biggest = max(found, key=lambda p: p.size)
    total = sum(p.size for p in found)
    if biggest.size > memory:
        return f"{biggest.line()}, more than {whose} {_bytes(memory)} of memory"
    if total > memory:
        return (
            f"{biggest.line()}, and the run at least {_bytes(total)} in all, more than "
            f"{whose} {_bytes(memory)} of memory"
        )
    return None


def _bytes(n: int) -> str:
    """Bytes in decimal units with one decimal: 4.8 GB."""
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"
