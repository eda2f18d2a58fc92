"""DP-SGD in the batched ensemble of `memdash estimate` (issue #25): the stacked MLPs' clipped
per-example gradients against a naive loop, noise per model, the accountant's epsilon in
heldout/spec.json and the manifest, and the refusals."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import naive_clipped_sum, tiny_config
from opacus.accountants import RDPAccountant
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.ensemble.batched import StackedMLP, _model, fit_batched
from memdash.analysis.ensemble.dp_batched import (
    check_dp_estimate,
    clipped_sums,
    fit_dp,
    poisson_batches,
    resolve_estimate_dp,
)
from memdash.analysis.record.config import ModelConfig, TrainConfig
from memdash.analysis.record.privacy import DPConfig
from memdash.analysis.record.training import train
from memdash.analysis.store import Run

runner = CliRunner()
CONFIG = tiny_config(model=ModelConfig(hidden=(5,)), train=TrainConfig(epochs=2, batch_size=4))


def _tiny(k: int = 3, seed: int = 0):
    """k MLPs 3-5-4 and each a batch of 4 examples (the last model's padded to 2)."""
    gen = torch.Generator().manual_seed(seed)
    models = [_model(CONFIG, 10 + i, (3,), 4) for i in range(k)]
    x = torch.randn(k, 4, 3, generator=gen) * 3
    y = torch.randint(0, 4, (k, 4), generator=gen)
    real = torch.ones(k, 4, dtype=torch.bool)
    real[-1, 2:] = False
    return models, x, y, real


@pytest.mark.parametrize("clip", [0.5, 1e6])
def test_clipped_sums_equal_a_per_example_loop_for_each_model(clip):
    models, x, y, real = _tiny()
    ens = StackedMLP(models)
    weights, biases, norms = clipped_sums(ens, x, y, real, clip)
    for k, model in enumerate(models):
        n = int(real[k].sum())
        total, expected_norms = naive_clipped_sum(model, x[k, :n], y[k, :n], clip)
        named = dict(zip([n for n, _ in model.named_parameters()], total, strict=True))
        torch.testing.assert_close(norms[k, :n], expected_norms, rtol=1e-5, atol=1e-6)
        assert (norms[k, n:] == 0).all()
        for i, name in enumerate(["fc1.linear", "out"]):
            torch.testing.assert_close(
                weights[i][k], named[f"{name}.weight"].T, rtol=1e-5, atol=1e-6
            )
            torch.testing.assert_close(biases[i][k, 0], named[f"{name}.bias"], rtol=1e-5, atol=1e-6)


def test_an_unbiting_clip_sums_to_the_plain_batch_gradient():
    models, x, y, real = _tiny(k=2)
    real[:] = True
    ens = StackedMLP(models)
    weights, _, _ = clipped_sums(ens, x, y, real, 1e9)
    for k, model in enumerate(models):
        model.zero_grad()
        F.cross_entropy(model(x[k]), y[k]).backward()  # the mean over the batch of 4
        torch.testing.assert_close(weights[0][k], 4 * model.fc1.linear.weight.grad.T)


def test_poisson_batches_sample_each_models_own_subset_at_rate_b_over_m():
    subsets = np.zeros((2, 10), bool)
    subsets[0, :8], subsets[1, 2:] = True, True
    steps = poisson_batches([1, 2], subsets, 1, 4)
    assert len(steps) == 2  # ceil(8 / 4)
    for index, real in steps:
        assert index.shape == real.shape and index.shape[0] == 2
        assert set(index[0][real[0]].tolist()) <= set(range(8))
        assert set(index[1][real[1]].tolist()) <= set(range(2, 10))
    again = poisson_batches([1, 2], subsets, 1, 4)  # seeded: the same draws
    assert all(torch.equal(a[0], b[0]) for a, b in zip(steps, again, strict=True))


def test_a_models_dp_training_does_not_depend_on_its_batch():
    gen = torch.Generator().manual_seed(0)
    inputs, labels = torch.randn(30, 3, generator=gen), torch.randint(0, 4, (30,), generator=gen)
    train_ids = np.arange(20)
    masks = np.zeros((2, 20), bool)
    masks[0, :12], masks[1, 8:] = True, True
    dp = {"noise_multiplier": 1.0, "clip": 1.0, "delta": 1e-3, "epsilon": None}
    both = fit_dp(CONFIG, inputs, labels, train_ids, [5, 6], masks, dp)
    alone = fit_dp(CONFIG, inputs, labels, train_ids, [6], masks[1:], dp)
    for w_both, w_alone in zip(both.weights, alone.weights, strict=True):
        torch.testing.assert_close(w_both[1], w_alone[0], rtol=1e-5, atol=1e-6)
    plain = fit_batched(CONFIG, inputs, labels, train_ids, [6], masks[1:])
    assert not torch.allclose(plain.weights[0], alone.weights[0])  # noise and clipping acted


def test_resolve_estimate_dp_gives_the_accountants_epsilon_for_the_subsets():
    dp = resolve_estimate_dp(CONFIG, 160, 0.5, DPConfig(noise_multiplier=1.2, delta=1e-3))
    accountant = RDPAccountant()
    accountant.history = [(1.2, 4 / 80, 20 * 2)]  # q = B / m, ceil(m / B) steps, 2 epochs
    assert dp["epsilon"] == pytest.approx(accountant.get_epsilon(delta=1e-3))
    assert dp["noise_multiplier"] == 1.2 and dp["clip"] == 1.0 and dp["delta"] == 1e-3
    target = resolve_estimate_dp(CONFIG, 160, 0.5, DPConfig(epsilon=3.0, delta=1e-3))
    assert 2.9 < target["epsilon"] <= 3.0
    with pytest.raises(ValueError, match="must be below 1/80"):
        resolve_estimate_dp(CONFIG, 160, 0.5, DPConfig(noise_multiplier=1.0, delta=0.02))


def test_a_dp_estimate_with_dropout_is_refused_in_one_line():
    dropout = replace(CONFIG, model=replace(CONFIG.model, dropout=0.5))
    with pytest.raises(ValueError, match=r"^[^\n]*--dropout 0.5 is not supported[^\n]*$"):
        check_dp_estimate(dropout)
    subsets = np.ones((1, 8), bool)
    dp = {"noise_multiplier": 1.0, "clip": 1.0, "delta": 1e-3, "epsilon": None}
    with pytest.raises(ValueError, match="without dropout"):
        fit_dp(dropout, torch.zeros(8, 3), torch.arange(8) % 4, np.arange(8), [1], subsets, dp)


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dp_estimate") / "run"
    config = tiny_config(train=TrainConfig(epochs=2, batch_size=16))
    record = replace(config.record, embed_epochs=(), checkpoint_epochs=(0,))
    train(replace(config, record=record), out)
    return out


def test_memdash_estimate_with_dp_noise_stores_the_epsilon(plain_run):
    args = ["estimate", "--like", str(plain_run), "--models", "4", "--models-per-batch", "2"]
    args += ["--subset", "0.5", "--workers", "1"]
    result = runner.invoke(app, [*args, "--dp-noise", "1.5", "--dp-delta", "1e-3"])
    assert result.exit_code == 0, result.output
    spec = json.loads((plain_run / "heldout" / "spec.json").read_text())
    accountant = RDPAccountant()
    accountant.history = [(1.5, 16 / 80, 5 * 2)]
    assert spec["dp"]["epsilon"] == pytest.approx(accountant.get_epsilon(delta=1e-3))
    manifest = json.loads((plain_run / "derived" / "manifest.json").read_text())
    params = manifest["heldout"]["params"] if "heldout" in manifest else None
    params = params or next(v["params"] for k, v in manifest.items() if "heldout" in k)
    assert params["dp_epsilon"] == spec["dp"]["epsilon"] and params["dp_delta"] == 1e-3
    # the same estimate without DP options would mix plain models into it: refused
    plain = runner.invoke(app, args)
    assert plain.exit_code == 1 and "DP, or --overwrite" in plain.output
    refused = runner.invoke(app, [*args, "--dp-noise", "1", "--dp-epsilon", "2"])
    assert refused.exit_code == 2 and "give one" in refused.output
    assert Run.open(plain_run).status == "complete"


def test_memdash_estimate_with_dp_of_a_dropout_run_is_one_line_and_writes_nothing(tmp_path):
    config = tiny_config(
        model=ModelConfig(hidden=(8,), dropout=0.5), train=TrainConfig(epochs=1, batch_size=16)
    )
    record = replace(config.record, embed_epochs=(), checkpoint_epochs=(0,))
    train(replace(config, record=record), tmp_path / "run")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    args = ["estimate", "--like", str(tmp_path / "run"), "--models", "2", "--dp-noise", "1"]
    result = runner.invoke(app, [*args, "--dp-delta", "1e-3"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--dropout 0.5 is not supported" in lines[0], result.output
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
