"""Train many small models at once, each on its own subset, as one batched computation.

The K models' parameters are stacked (torch.func.stack_module_state) and one
forward is vmapped over them (functional_call): every step, model k takes the
next minibatch of its own subset in its own seeded order, the K losses are
summed (each model's gradient is that of its own mean loss) and one
element-wise optimizer steps all stacked parameters, which equals K separate
optimizers. `train_sequential` runs the same models one after another with
the same seeds and orders: the reference the batched training is tested and
benchmarked against.

Model k is initialized from seed ``model_seed(seed, ratio_index, k)`` and
trains on the subset and order drawn from the same seed, so a model's result
does not depend on which batch of models it was trained in.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from memdash.analysis.record.config import RunConfig
from memdash.analysis.record.models import Dense, from_config, layer_names, unit_module
from memdash.analysis.record.training import make_optimizer


def model_seed(seed: int, ratio_index: int, model: int) -> int:
    """The seed of one model of an estimate: its initialization, subset and order."""
    return int(np.random.SeedSequence([seed, ratio_index, model]).generate_state(1)[0])


def subset_mask(seed: int, n_train: int, ratio: float) -> np.ndarray:
    """Which of the n_train training examples a model trains on: round(ratio * n_train) of them."""
    size = int(round(ratio * n_train))
    if not 0 < size <= n_train:
        raise ValueError(f"subset ratio {ratio} leaves {size} of {n_train} training examples")
    mask = np.zeros(n_train, bool)
    mask[np.random.default_rng(seed).choice(n_train, size=size, replace=False)] = True
    return mask


def _orders(seeds: list[int], subsets: np.ndarray, epoch: int) -> np.ndarray:
    """(K, m): each model's training positions for an epoch, in its own seeded order."""
    out = []
    for seed, mask in zip(seeds, subsets, strict=True):
        ids = np.flatnonzero(mask)
        out.append(np.random.default_rng([seed, epoch]).permutation(ids))
    return np.stack(out)


def _model(config: RunConfig, seed: int, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    if config.model.example_tied_dropout:
        raise ValueError("held-out estimates do not support example-tied dropout")
    torch.manual_seed(seed)
    return from_config(config.model, input_shape, n_classes)


@dataclass
class VmapEnsemble:
    """Any K models of one architecture: stacked parameters, a vmapped functional forward."""

    base: nn.Module
    params: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]

    @classmethod
    def of(cls, models: list[nn.Module]) -> VmapEnsemble:
        params, buffers = stack_module_state(models)
        return cls(copy.deepcopy(models[0]).to("meta"), params, buffers)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def train(self, mode: bool = True) -> None:
        self.base.train(mode)

    def _call(self, params, buffers, x):
        return functional_call(self.base, (params, buffers), (x,))

    def forward(self, x: torch.Tensor, *, shared: bool = False) -> torch.Tensor:
        """Logits (K, B, C) of every model on its own batch x (K, B, ...), or on one
        batch x (B, ...) for all models when `shared`."""
        run = vmap(self._call, in_dims=(0, 0, None if shared else 0), randomness="different")
        return run(self.params, self.buffers, x)


class StackedMLP:
    """K MLPs of `memdash.analysis.record.models.mlp` as batched matrix products (baddbmm).

    The same computation as the models, without vmap's per-call overhead:
    weights stacked as (K, in, out), biases as (K, 1, out).
    """

    def __init__(self, models: list[nn.Module]) -> None:
        linears = [[unit_module(m, name) for name in layer_names(m)] for m in models]
        self.weights = [
            torch.stack([ls[i].weight.detach().T for ls in linears]).contiguous().requires_grad_()
            for i in range(len(linears[0]))
        ]
        self.biases = [
            torch.stack([ls[i].bias.detach()[None] for ls in linears]).requires_grad_()
            for i in range(len(linears[0]))
        ]
        self.dropout = float(getattr(getattr(models[0], "fc1", None), "drop", nn.Dropout(0)).p)
        self.training = True

    @staticmethod
    def supports(model: nn.Module) -> bool:
        names = layer_names(model)
        hidden = [getattr(model, n) for n in names[:-1]]
        if not all(isinstance(layer, Dense) for layer in hidden):
            return False  # a CNN or ResNet: the vmapped ensemble
        plain = all(type(layer.drop) is nn.Dropout for layer in hidden)
        return plain and isinstance(getattr(model, names[-1]), nn.Linear)

    def parameters(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases]

    def train(self, mode: bool = True) -> None:
        self.training = mode

    def forward(
        self,
        x: torch.Tensor,
        *,
        shared: bool = False,
        layers: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """Logits (K, B, C) of every model on its own batch x (K, B, ...), or on one batch
        x (B, ...) for all models when `shared`. With a list `layers`, each dense layer's
        input a (detached) and output z = a W + b (in the graph) are appended to it, in
        order: what DP-SGD's per-example gradients are made of (`dp_batched.clipped_sums`)."""
        k = len(self.weights[0])
        h = x.flatten(1).expand(k, -1, -1) if shared else x.flatten(2)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = torch.baddbmm(b, h, w)
            if layers is not None:
                layers.append((h.detach(), z))
            h = z
            if i < last:
                h = torch.relu(h)
                if self.dropout and self.training:
                    h = F.dropout(h, self.dropout)
        return h


def stack(models: list[nn.Module]) -> StackedMLP | VmapEnsemble:
    """The fastest batched form of K models: baddbmm for MLPs, vmap for the rest."""
    return StackedMLP(models) if StackedMLP.supports(models[0]) else VmapEnsemble.of(models)


def fit_batched(
    config: RunConfig,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    train_ids: np.ndarray,
    seeds: list[int],
    subsets: np.ndarray,
    *,
    start: StackedMLP | VmapEnsemble | None = None,
    on_epoch: Callable[[int, StackedMLP | VmapEnsemble], None] | None = None,
) -> StackedMLP | VmapEnsemble:
    """Train K models at once, model k on its subset in its own seeded order.

    Parameters
    ----------
    inputs, labels : every example (index = example id); n_classes = labels.max() + 1
    train_ids : (T,) the training examples' ids; subsets index into it
    seeds : K model seeds (`model_seed`)
    subsets : bool (K, T), each model's training examples; equal counts
    start : K stacked models to continue training (with a fresh optimizer) instead of new
        ones initialized from `seeds` (which then give only the orders)
    on_epoch : called with (epoch, the models in eval mode) after each epoch
    """
    sizes = set(subsets.sum(axis=1).tolist())
    if len(sizes) != 1:
        raise ValueError(f"every model of a batch needs the same subset size, got {sorted(sizes)}")
    shape, n_classes = tuple(inputs.shape[1:]), int(labels.max()) + 1
    ens = (
        start if start is not None else stack([_model(config, s, shape, n_classes) for s in seeds])
    )
    opt = make_optimizer(config, ens.parameters(), fused=inputs.device.type == "cpu")
    train_ids = torch.as_tensor(train_ids)
    batch = config.train.batch_size
    for epoch in range(1, config.train.epochs + 1):
        ens.train(True)
        order = train_ids[torch.from_numpy(_orders(seeds, subsets, epoch))]  # (K, m) ids
        for lo in range(0, order.shape[1], batch):
            ids = order[:, lo : lo + batch]
            logits = ens.forward(inputs[ids])
            loss = F.cross_entropy(logits.flatten(0, 1), labels[ids].flatten(), reduction="none")
            opt.zero_grad(set_to_none=True)
            loss.view(ids.shape).mean(dim=1).sum().backward()
            opt.step()
        if on_epoch is not None:
            ens.train(False)
            on_epoch(epoch, ens)
    ens.train(False)
    return ens


def ensemble_correct(
    ens: StackedMLP | VmapEnsemble, inputs: torch.Tensor, labels: torch.Tensor, *, chunk: int = 1024
) -> np.ndarray:
    """bool (K, N): whether each model predicts each example's given label."""
    return ensemble_outputs(ens, inputs, labels, chunk=chunk)[0]


def ensemble_outputs(
    ens: StackedMLP | VmapEnsemble, inputs: torch.Tensor, labels: torch.Tensor, *, chunk: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Each model's correctness, bool (K, N), and its logit-scaled confidence of each
    example's label, float32 (K, N) (`memdash.analysis.measures.membership.logit_confidence`), from
    one forward pass."""
    from memdash.analysis.measures.membership import logit_confidence

    correct, confidence = [], []
    with torch.no_grad():
        for x, y in zip(torch.split(inputs, chunk), torch.split(labels, chunk), strict=True):
            logits = ens.forward(x, shared=True)
            correct.append((logits.argmax(-1) == y).cpu())
            confidence.append(logit_confidence(logits, y).float().cpu())
    return torch.cat(correct, dim=1).numpy(), torch.cat(confidence, dim=1).numpy()


def train_batched(config, inputs, labels, train_ids, seeds, subsets) -> np.ndarray:
    """`fit_batched`, then every model's correctness on every example: bool (K, N)."""
    return ensemble_correct(
        fit_batched(config, inputs, labels, train_ids, seeds, subsets), inputs, labels
    )


def fit_sequential(
    config: RunConfig,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    train_ids: np.ndarray,
    seeds: list[int],
    subsets: np.ndarray,
) -> list[nn.Module]:
    """The same models as `fit_batched`, trained one after another (the reference)."""
    shape, n_classes = tuple(inputs.shape[1:]), int(labels.max()) + 1
    train_ids = torch.as_tensor(train_ids)
    batch = config.train.batch_size
    models = []
    for k, seed in enumerate(seeds):
        model = _model(config, seed, shape, n_classes)
        opt = make_optimizer(config, model)
        model.train()
        for epoch in range(1, config.train.epochs + 1):
            order = train_ids[torch.from_numpy(_orders([seed], subsets[k : k + 1], epoch)[0])]
            for ids in torch.split(order, batch):
                loss = F.cross_entropy(model(inputs[ids]), labels[ids])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        models.append(model.eval())
    return models


def train_sequential(config, inputs, labels, train_ids, seeds, subsets) -> np.ndarray:
    """`fit_sequential`, then every model's correctness on every example: bool (K, N)."""
    models = fit_sequential(config, inputs, labels, train_ids, seeds, subsets)
    with torch.no_grad():
        return np.stack([(m(inputs).argmax(1) == labels).numpy() for m in models])
