from dataclasses import replace

import numpy as np
import pytest
import torch

from memdash.analysis.ensemble.batched import (
    StackedMLP,
    VmapEnsemble,
    _model,
    fit_batched,
    fit_sequential,
    model_seed,
    stack,
    subset_mask,
    train_batched,
    train_sequential,
)
from memdash.analysis.record.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from memdash.analysis.record.models import layer_names, unit_module


def _setting(model: ModelConfig):
    config = RunConfig(
        data=DataConfig(dataset="synthetic", n_examples=120, shape=(16,), n_classes=3),
        model=model,
        train=TrainConfig(epochs=3, batch_size=8, lr=0.05),
    )
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(120, 16)), dtype=torch.float32)
    y = torch.tensor(rng.integers(0, 3, 120))
    train_ids = np.arange(90)
    seeds = [model_seed(1, 0, k) for k in range(3)]
    subsets = np.stack([subset_mask(s, 90, 0.7) for s in seeds])
    return config, x, y, train_ids, seeds, subsets


def test_subsets_and_seeds_are_fixed_by_the_seed():
    assert model_seed(0, 0, 5) == model_seed(0, 0, 5) != model_seed(0, 1, 5)
    m = subset_mask(7, 10, 0.7)
    assert m.sum() == 7 and np.array_equal(m, subset_mask(7, 10, 0.7))
    with pytest.raises(ValueError, match="leaves 0 of 10"):
        subset_mask(7, 10, 0.01)


def test_batched_mlp_training_equals_the_sequential_loop():
    config, x, y, train_ids, seeds, subsets = _setting(ModelConfig(hidden=(12, 6)))
    ens = fit_batched(config, x, y, train_ids, seeds, subsets)
    assert isinstance(ens, StackedMLP)
    models = fit_sequential(config, x, y, train_ids, seeds, subsets)
    for k, model in enumerate(models):
        for i, name in enumerate(layer_names(model)):
            layer = unit_module(model, name)
            torch.testing.assert_close(ens.weights[i][k], layer.weight.T, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(ens.biases[i][k, 0], layer.bias, atol=1e-5, rtol=1e-4)
    np.testing.assert_array_equal(
        train_batched(config, x, y, train_ids, seeds, subsets),
        train_sequential(config, x, y, train_ids, seeds, subsets),
    )


def test_batched_cnn_training_through_vmap_equals_the_sequential_loop():
    config, x, y, train_ids, seeds, subsets = _setting(
        ModelConfig(name="cnn", channels=(4,), hidden=(8,))
    )
    ens = fit_batched(config, x, y, train_ids, seeds, subsets)
    assert isinstance(ens, VmapEnsemble)
    models = fit_sequential(config, x, y, train_ids, seeds, subsets)
    for name, stacked in ens.params.items():
        for k, model in enumerate(models):
            torch.testing.assert_close(stacked[k], model.state_dict()[name], atol=1e-5, rtol=1e-4)


def test_models_of_a_batch_need_equal_subsets_and_stack_picks_the_form():
    config, x, y, train_ids, seeds, subsets = _setting(ModelConfig(hidden=(12,)))
    subsets[0, np.flatnonzero(subsets[0])[0]] = False
    with pytest.raises(ValueError, match="same subset size"):
        fit_batched(config, x, y, train_ids, seeds, subsets)
    tied = replace(config, model=replace(config.model, example_tied_dropout=True))
    with pytest.raises(ValueError, match="example-tied dropout"):
        fit_batched(tied, x, y, train_ids, seeds[:1], subsets[1:2])
    from memdash.analysis.record.models import cnn, mlp

    assert isinstance(stack([mlp((4,), 2), mlp((4,), 2)]), StackedMLP)
    assert isinstance(
        stack([cnn((1, 8), 2, channels=(2,)), cnn((1, 8), 2, channels=(2,))]), VmapEnsemble
    )


def test_stacked_forward_hands_each_layers_input_and_output_to_a_list():
    """DP-SGD's clipped sums take the layer inputs and outputs from this same forward."""
    config, x, _, _, seeds, _ = _setting(ModelConfig(hidden=(5, 4)))
    models = [_model(config, s, (16,), 3) for s in seeds[:2]]
    ens = StackedMLP(models)
    batch = x[:6].reshape(2, 3, 16)
    layers: list = []
    logits = ens.forward(batch, layers=layers)
    torch.testing.assert_close(logits, ens.forward(batch))
    assert len(layers) == 3 and not layers[0][0].requires_grad and layers[2][1].requires_grad
    for k, model in enumerate(models):
        h = batch[k]
        for i, name in enumerate(layer_names(model)):
            torch.testing.assert_close(layers[i][0][k], h)
            h = unit_module(model, name)(h)
            torch.testing.assert_close(layers[i][1][k], h)
            h = torch.relu(h)
    torch.testing.assert_close(layers[2][1], logits)


def test_dp_clipped_sums_take_the_layers_from_the_stacked_forward(monkeypatch):
    from memdash.analysis.ensemble import dp_batched

    config, x, y, _, seeds, _ = _setting(ModelConfig(hidden=(5,)))
    ens = StackedMLP([_model(config, s, (16,), 3) for s in seeds[:2]])
    calls = []
    forward = StackedMLP.forward

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("layers") is not None)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(StackedMLP, "forward", spy)
    real = torch.ones(2, 3, dtype=torch.bool)
    dp_batched.clipped_sums(ens, x[:6].reshape(2, 3, 16), y[:6].reshape(2, 3), real, 1.0)
    assert calls == [True]
