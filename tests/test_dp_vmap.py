"""DP-SGD for the vmapped CNNs and ResNets of `memdash estimate` (issue #25): the clipped
per-example gradients against a plain-autograd loop, the chunks, a model's independence of its
batch-mates, an end-to-end DP estimate of a CNN run, and the refusals that remain."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import naive_clipped_sum, tiny_config
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.ensemble.batched import VmapEnsemble, _model, fit_batched
from memdash.analysis.ensemble.dp_batched import check_dp_estimate, fit_dp
from memdash.analysis.ensemble.dp_vmap import chunk_sizes, clipped_sums, dense_layers
from memdash.analysis.record.config import ModelConfig, TrainConfig
from memdash.analysis.record.training import train
from memdash.analysis.store import Run

runner = CliRunner()
CNN = ModelConfig(name="cnn", channels=(2, 3), hidden=(5,))
RESNET = ModelConfig(name="resnet", width=2)
CONFIG = tiny_config(model=CNN, train=TrainConfig(epochs=2, batch_size=4))
DP = {"noise_multiplier": 1.0, "clip": 1.0, "delta": 1e-3, "epsilon": None}


def _tiny(model: ModelConfig, dtype: torch.dtype = torch.float32):
    """Two models on 1-D inputs of length 8, each a batch of 4 (the second padded to 2)."""
    config = replace(CONFIG, model=model)
    models = [_model(config, 10 + i, (8,), 4).to(dtype) for i in range(2)]
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(2, 4, 8, generator=gen) * 3).to(dtype)
    y = torch.randint(0, 4, (2, 4), generator=gen)
    real = torch.ones(2, 4, dtype=torch.bool)
    real[1, 2:] = False
    return models, x, y, real


# the ResNet in float64: its GroupNorms over one position are ill-conditioned in float32
@pytest.mark.parametrize(
    ("model", "dtype"), [(CNN, torch.float32), (RESNET, torch.float64)], ids=["cnn", "resnet"]
)
# per-example gradients at once: all 8; one (model 1's last two, padding only, skipped); 5
# (chunks of 2 models x 2 examples)
@pytest.mark.parametrize("pairs", [None, 1, 5], ids=["whole", "one-by-one", "chunks"])
@pytest.mark.parametrize("closed_form", [True, False], ids=["closed", "materialized"])
def test_clipped_sums_equal_a_per_example_autograd_loop(model, dtype, pairs, closed_form):
    models, x, y, real = _tiny(model, dtype)
    ens = VmapEnsemble.of(models)
    dense = dense_layers(ens, ens.params, ens.buffers, x[0, :1]) if closed_form else {}
    named = dict(models[0].named_parameters())
    per_example = sum(p.numel() for n, p in named.items() if n[: -len(".weight")] not in dense)
    per_example += sum(dense.values())  # each dense layer's input
    max_floats = 2**26 if pairs is None else pairs * per_example
    n = real.sum(1).tolist()
    expected_norms = [
        naive_clipped_sum(m, x[k, : n[k]], y[k, : n[k]], 1e9)[1] for k, m in enumerate(models)
    ]
    every = torch.cat(expected_norms)
    clip = float(every.median())  # some examples clipped, some not
    assert (every > clip).any() and (every < clip).any()
    sums, norms = clipped_sums(
        ens, x, y, real, clip, closed_form=closed_form, max_floats=max_floats
    )
    for k, m in enumerate(models):
        total, _ = naive_clipped_sum(m, x[k, : n[k]], y[k, : n[k]], clip)
        torch.testing.assert_close(norms[k, : n[k]], expected_norms[k], rtol=1e-5, atol=1e-6)
        assert (norms[k, n[k] :] == 0).all()  # padding masked
        for got, want in zip(sums, total, strict=True):
            torch.testing.assert_close(got[k], want, rtol=1e-5, atol=1e-5)


def test_dense_layers_are_the_linear_layers_on_one_vector_per_example():
    for model, expected in ((CNN, {"fc1.linear": 6, "out": 5}), (RESNET, {"out": 16})):
        models, x, _, _ = _tiny(model)
        ens = VmapEnsemble.of(models)
        assert dense_layers(ens, ens.params, ens.buffers, x[0, :1]) == expected


def test_chunk_sizes_fit_the_budget_over_examples_first_then_models():
    assert chunk_sizes(4, 10, 100, max_floats=10_000) == (4, 10)  # all at once
    assert chunk_sizes(4, 10, 100, max_floats=2_000) == (4, 5)  # 20 pairs: 4 models x 5
    assert chunk_sizes(4, 10, 100, max_floats=250) == (2, 1)  # 2 pairs: 2 models, 1 example
    assert chunk_sizes(4, 10, 100, max_floats=50) == (1, 1)  # one gradient over the budget
    with pytest.raises(ValueError, match="k, b, n_params and max_floats >= 1"):
        chunk_sizes(0, 10, 100)


def test_clipped_sums_refuses_shapes_that_disagree():
    models, x, y, real = _tiny(CNN)
    with pytest.raises(ValueError, match="must agree"):
        clipped_sums(VmapEnsemble.of(models), x, y[:, :3], real, 1.0)


def test_a_models_dp_training_does_not_depend_on_its_batch_mates():
    gen = torch.Generator().manual_seed(0)
    inputs, labels = torch.randn(30, 8, generator=gen), torch.randint(0, 4, (30,), generator=gen)
    train_ids = np.arange(20)
    masks = np.zeros((3, 20), bool)
    masks[0, :12], masks[1, 8:], masks[2, 4:16] = True, True, True
    with_b = fit_dp(CONFIG, inputs, labels, train_ids, [5, 6], masks[:2], DP)
    with_c = fit_dp(CONFIG, inputs, labels, train_ids, [5, 7], masks[[0, 2]], DP)
    assert isinstance(with_b, VmapEnsemble)
    for name, p in with_b.params.items():
        torch.testing.assert_close(p[0], with_c.params[name][0], rtol=1e-5, atol=1e-6)
    plain = fit_batched(CONFIG, inputs, labels, train_ids, [5], masks[:1])
    weight = "fc1.linear.weight"
    assert not torch.allclose(plain.params[weight][0], with_b.params[weight][0])  # DP acted


def test_cnn_and_resnet_estimates_with_dp_are_accepted():
    for model in (CNN, RESNET, CONFIG.model):
        check_dp_estimate(replace(CONFIG, model=model))


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_dp_estimates_with_dropout_or_tied_dropout_are_refused_in_one_line(name):
    tied = replace(CONFIG, model=ModelConfig(name=name, example_tied_dropout=True))
    with pytest.raises(ValueError, match=rf"^[^\n]*--model {name} with example-tied dropout"):
        check_dp_estimate(tied)
    dropout = replace(CONFIG, model=ModelConfig(name=name, dropout=0.5))
    with pytest.raises(ValueError, match=r"^[^\n]*--dropout 0.5 is not supported[^\n]*$"):
        check_dp_estimate(dropout)


def test_memdash_estimate_with_dp_trains_a_cnn_ensemble(tmp_path):
    config = tiny_config(
        model=ModelConfig(name="cnn", channels=(4, 8), hidden=(8,)),
        train=TrainConfig(epochs=2, batch_size=16),
    )
    record = replace(config.record, embed_epochs=(), checkpoint_epochs=(0,))
    train(replace(config, record=record), tmp_path / "run")
    args = ["estimate", "--like", str(tmp_path / "run"), "--models", "2", "--subset", "0.5"]
    result = runner.invoke(app, [*args, "--workers", "1", "--dp-noise", "1", "--dp-clip", "1"])
    assert result.exit_code == 0, result.output
    spec = json.loads((tmp_path / "run" / "heldout" / "spec.json").read_text())
    assert spec["dp"]["noise_multiplier"] == 1.0 and spec["dp"]["clip"] == 1.0
    assert spec["dp"]["epsilon"] > 0
    assert Run.open(tmp_path / "run").status == "complete"
