"""Networks with named layers: an MLP and a small CNN (1-D or 2-D).

Every top-level child of a model is one *layer*: a block holding one weight
layer (``fc1``, ``conv2``, ``out``) with its activation, pooling and dropout.
Its output is what the recorder stores as that layer's embedding, and its
parameters are what gradient accounting and localization treat as the layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from memdash.analysis.tied_dropout import ExampleTiedDropout

MODELS = ("mlp", "cnn")
Tied = tuple[float, float, int] | None  # example-tied dropout (p_fixed, p_mem, seed), or none


def _dropout(rate: float, tied: Tied) -> nn.Module:
    return nn.Dropout(rate) if tied is None else ExampleTiedDropout(*tied)


class Dense(nn.Module):
    """Linear -> ReLU -> Dropout (or example-tied dropout)."""

    def __init__(self, n_in: int, n_out: int, dropout: float, tied: Tied = None) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.act = nn.ReLU()
        self.drop = _dropout(dropout, tied)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.act(self.linear(x)))


class ConvBlock(nn.Module):
    """Conv (same padding) -> ReLU -> MaxPool(2) -> Dropout (or example-tied), in 1-D or 2-D."""

    def __init__(self, c_in: int, c_out: int, dims: int, dropout: float, tied: Tied = None) -> None:
        super().__init__()
        conv, pool = (nn.Conv1d, nn.MaxPool1d) if dims == 1 else (nn.Conv2d, nn.MaxPool2d)
        self.conv = conv(c_in, c_out, kernel_size=5 if dims == 1 else 3, padding="same")
        self.act = nn.ReLU()
        self.pool = pool(2)
        self.drop = _dropout(dropout, tied)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.pool(self.act(self.conv(x))))


class Classifier(nn.Module):
    """Named layers applied in order; the last one, ``out``, gives the logits."""

    def __init__(self, layers: dict[str, nn.Module], input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        for name, layer in layers.items():
            self.add_module(name, layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = layer(x)
        return x


def mlp(
    input_shape: tuple[int, ...],
    n_classes: int,
    *,
    hidden: tuple[int, ...] = (256, 128),
    dropout: float = 0.0,
    tied: Tied = None,
) -> Classifier:
    """An MLP: flatten, then ``fc1 .. fcK`` (Dense blocks), then the linear ``out``.

    With `tied` = (p_fixed, p_mem, seed), every hidden block ends in
    example-tied dropout instead of dropout.
    """
    widths = [math.prod(input_shape), *hidden]
    layers: dict[str, nn.Module] = {"flatten": nn.Flatten()}
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True), start=1):
        layers[f"fc{i}"] = Dense(a, b, dropout, tied)
    layers["out"] = nn.Linear(widths[-1], n_classes)
    return Classifier(layers, input_shape)


def cnn(
    input_shape: tuple[int, ...],
    n_classes: int,
    *,
    channels: tuple[int, ...] = (32, 64),
    hidden: tuple[int, ...] = (128,),
    dropout: float = 0.0,
    tied: Tied = None,
) -> Classifier:
    """A small CNN: ``conv1 .. convK`` blocks (each halves the spatial size), ``fc1``, ``out``.

    Inputs of shape (C, L) get 1-D convolutions, (C, H, W) 2-D ones, and a plain
    vector (D,) is treated as a one-channel signal.
    """
    shape = tuple(input_shape) if len(input_shape) > 1 else (1, *input_shape)
    dims = len(shape) - 1
    if dims not in (1, 2):
        raise ValueError(f"cnn needs inputs of shape (C, L) or (C, H, W), got {input_shape}")
    if min(shape[1:]) < 2 ** len(channels):
        raise ValueError(
            f"cnn with {len(channels)} pooling blocks needs spatial size >= {2 ** len(channels)}, "
            f"got {shape[1:]}"
        )
    layers: dict[str, nn.Module] = {}
    if len(input_shape) == 1:
        layers["unflatten"] = nn.Unflatten(1, shape)
    c_in = shape[0]
    for i, c_out in enumerate(channels, start=1):
        layers[f"conv{i}"] = ConvBlock(c_in, c_out, dims, dropout, tied)
        c_in = c_out
    spatial = math.prod(s // 2 ** len(channels) for s in shape[1:])
    layers["flatten"] = nn.Flatten()
    widths = [c_in * spatial, *hidden]
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True), start=1):
        layers[f"fc{i}"] = Dense(a, b, dropout, tied)
    layers["out"] = nn.Linear(widths[-1], n_classes)
    return Classifier(layers, input_shape)


def build_model(
    name: str,
    input_shape: tuple[int, ...],
    n_classes: int,
    *,
    hidden: tuple[int, ...],
    channels: tuple[int, ...],
    dropout: float,
    tied: Tied = None,
) -> Classifier:
    """Build a model by name (``mlp`` or ``cnn``)."""
    if name == "mlp":
        return mlp(input_shape, n_classes, hidden=hidden, dropout=dropout, tied=tied)
    if name == "cnn":
        return cnn(
            input_shape, n_classes, channels=channels, hidden=hidden[:1], dropout=dropout, tied=tied
        )
    raise ValueError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")


def layer_names(model: nn.Module) -> list[str]:
    """The recordable layers: top-level children that hold parameters, in forward order."""
    return [name for name, child in model.named_children() if any(True for _ in child.parameters())]


def unit_module(model: nn.Module, layer: str) -> nn.Linear | nn.modules.conv._ConvNd:
    """The weight layer inside a named layer, whose output units (neurons or channels)
    localization zeroes."""
    for module in getattr(model, layer).modules():
        if isinstance(module, nn.Linear | nn.modules.conv._ConvNd):
            return module
    raise ValueError(f"layer {layer!r} holds no Linear or convolution")


def layer_parameters(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Each recordable layer's trainable parameters (weights and biases)."""
    return {
        name: [p for p in getattr(model, name).parameters() if p.requires_grad]
        for name in layer_names(model)
    }
