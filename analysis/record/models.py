"""Networks with named layers: an MLP, a small CNN and a ResNet-9 (1-D or 2-D).

Every top-level child of a model is one *layer*: a block holding one weight
layer (``fc1``, ``conv2``, ``out``) with its activation, pooling and dropout.
Its output is what the recorder stores as that layer's embedding, and its
parameters are what gradient accounting and localization treat as the layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from memdash.analysis.record.tied_dropout import ExampleTiedDropout

MODELS = ("mlp", "cnn", "resnet")
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


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups: an example's output never depends on its batch."""
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ConvNorm(nn.Module):
    """Conv 3 (same padding, no bias) -> GroupNorm -> ReLU [-> MaxPool(2)], in 1-D or 2-D."""

    def __init__(self, c_in: int, c_out: int, dims: int, *, pool: bool) -> None:
        super().__init__()
        conv, max_pool = (nn.Conv1d, nn.MaxPool1d) if dims == 1 else (nn.Conv2d, nn.MaxPool2d)
        self.conv = conv(c_in, c_out, kernel_size=3, padding=1, bias=False)
        self.norm = _norm(c_out)
        self.act = nn.ReLU()
        self.pool = max_pool(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.norm(self.conv(x))))


class ResNetStage(nn.Module):
    """A ResNet-9 layer: ConvNorm with pooling, then optionally the residual x + f(f(x)) of two
    ConvNorms, then dropout (or example-tied dropout) on its output channels."""

    def __init__(
        self, c_in: int, c_out: int, dims: int, *, residual: bool, dropout: float, tied: Tied
    ) -> None:
        super().__init__()
        self.conv = ConvNorm(c_in, c_out, dims, pool=True)
        self.residual = (
            nn.Sequential(
                ConvNorm(c_out, c_out, dims, pool=False), ConvNorm(c_out, c_out, dims, pool=False)
            )
            if residual
            else None
        )
        self.drop = _dropout(dropout, tied)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.residual is not None:
            x = x + self.residual(x)
        return self.drop(x)


class GlobalMaxPool(nn.Module):
    """The maximum over every spatial position: (B, C, ...) -> (B, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).amax(2)


def resnet(
    input_shape: tuple[int, ...],
    n_classes: int,
    *,
    width: int = 64,
    dropout: float = 0.0,
    tied: Tied = None,
) -> Classifier:
    """ResNet-9 (Page's DAWNBench network, the one Maini et al. 2023 localize memorization
    in): ``prep`` (ConvNorm, width w), ``layer1`` (2w, pooled, residual), ``layer2`` (4w,
    pooled), ``layer3`` (8w, pooled, residual), a global max pool and the linear ``out``.

    GroupNorm stands where the original has BatchNorm, so that an example's logits do not
    depend on the batch it is in: the per-example eval pass, loss sensitivity, the
    critical-sample search and the vmapped models of ``memdash estimate`` stay exact.
    Inputs (C, L) get 1-D convolutions, (C, H, W) 2-D ones, a plain vector (D,) is one
    channel. The three pools need a spatial size of at least 8.
    """
    shape = tuple(input_shape) if len(input_shape) > 1 else (1, *input_shape)
    dims = len(shape) - 1
    if dims not in (1, 2):
        raise ValueError(f"resnet needs inputs of shape (C, L) or (C, H, W), got {input_shape}")
    if min(shape[1:]) < 8:
        raise ValueError(f"resnet's three pooling stages need spatial size >= 8, got {shape[1:]}")
    if width < 1:
        raise ValueError(f"resnet width must be >= 1, got {width}")
    layers: dict[str, nn.Module] = {}
    if len(input_shape) == 1:
        layers["unflatten"] = nn.Unflatten(1, shape)
    layers["prep"] = nn.Sequential(
        ConvNorm(shape[0], width, dims, pool=False), _dropout(dropout, tied)
    )
    stages = (("layer1", 2, True), ("layer2", 4, False), ("layer3", 8, True))
    c_in = width
    for name, factor, residual in stages:
        layers[name] = ResNetStage(
            c_in, factor * width, dims, residual=residual, dropout=dropout, tied=tied
        )
        c_in = factor * width
    layers["pool"] = GlobalMaxPool()
    layers["out"] = nn.Linear(c_in, n_classes)
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
    width: int = 64,
) -> Classifier:
    """Build a model by name (``mlp``, ``cnn`` or ``resnet``)."""
    if name == "mlp":
        return mlp(input_shape, n_classes, hidden=hidden, dropout=dropout, tied=tied)
    if name == "cnn":
        return cnn(
            input_shape, n_classes, channels=channels, hidden=hidden[:1], dropout=dropout, tied=tied
        )
    if name == "resnet":
        return resnet(input_shape, n_classes, width=width, dropout=dropout, tied=tied)
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


def from_config(
    config, input_shape: tuple[int, ...], n_classes: int, *, tied: Tied = None
) -> Classifier:
    """`build_model` from a run config's model section (`record.config.ModelConfig`)."""
    return build_model(
        config.name,
        input_shape,
        n_classes,
        hidden=config.hidden,
        channels=config.channels,
        dropout=config.dropout,
        tied=tied,
        width=config.width,
    )
