"""DP-SGD in `memdash train` (issue #25): Opacus's clipping and noise, the accountant's epsilon
in run.json, resume after a kill, and the bad inputs refused in one line."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_config
from opacus.accountants import RDPAccountant
from shown import runs_table
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.record import dp as dp_module
from memdash.analysis.record import training
from memdash.analysis.record.config import DPConfig, RunConfig, validate
from memdash.analysis.record.dp import check_model
from memdash.analysis.record.privacy import epsilon_spent, noise_for, sampling
from memdash.analysis.record.training import train
from memdash.analysis.store import Run

runner = CliRunner()
TINY = ["--dataset", "synthetic", "--n-examples", "120", "--shape", "8", "--n-classes", "3"]
TINY += ["--epochs", "2", "--hidden", "8", "--batch-size", "16"]


def dp_config(**dp) -> RunConfig:
    record = replace(tiny_config().record, embed_epochs=(0, 3), checkpoint_epochs=(0, 3))
    config = tiny_config(record=record)
    train_cfg = replace(config.train, epochs=3, dp=DPConfig(**{"delta": 1e-3, **dp}))
    return replace(config, train=train_cfg)


def opacus_epsilon(noise: float, q: float, steps: int, delta: float) -> float:
    accountant = RDPAccountant()
    for _ in range(steps):
        accountant.step(noise_multiplier=noise, sample_rate=q)
    return accountant.get_epsilon(delta=delta)


def test_sampling_is_q_of_batch_over_n_and_ceil_steps():
    assert sampling(160, 16) == (0.1, 10)
    assert sampling(100, 30) == (0.3, 4)
    assert sampling(10, 50) == (1.0, 1)
    with pytest.raises(ValueError, match="n >= 1"):
        sampling(0, 4)


@pytest.mark.parametrize(("noise", "q", "steps"), [(1.0, 0.1, 30), (0.7, 0.05, 12)])
def test_epsilon_spent_equals_opacus_accountant_stepped(noise, q, steps):
    assert epsilon_spent(noise, q, steps, 1e-3) == pytest.approx(
        opacus_epsilon(noise, q, steps, 1e-3), rel=1e-12
    )
    assert epsilon_spent(noise, q, 0, 1e-3) == 0.0
    assert epsilon_spent(0.0, q, steps, 1e-3) is None  # no noise: no bound


def test_noise_for_a_target_reaches_it_within_tolerance():
    sigma = noise_for(4.0, 1e-3, 0.1, 30)
    assert epsilon_spent(sigma, 0.1, 30, 1e-3) <= 4.0
    assert epsilon_spent(sigma - 0.02, 0.1, 30, 1e-3) > 4.0 - 0.05


def test_a_dp_run_trains_records_its_trace_and_the_accountants_epsilon(tmp_path):
    config = dp_config(epsilon=6.0)
    train(config, tmp_path / "run")
    run = Run.open(tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    dp = meta["config"]["train"]["dp"]
    n = len(run.examples().query("split == 'train'"))
    q, steps = sampling(n, 16)
    assert dp["epsilon"] == 6.0 and dp["noise_multiplier"] > 0 and dp["clip"] == 1.0
    expected = opacus_epsilon(dp["noise_multiplier"], q, steps * 3, 1e-3)
    assert meta["dp_epsilon"] == pytest.approx(expected, rel=1e-9)
    assert meta["dp_epsilon"] <= 6.0 and meta["dp_delta"] == 1e-3
    trace = run.trace("eval")
    assert sorted(trace["epoch"].unique()) == [0, 1, 2, 3]
    assert trace.groupby("epoch").size().eq(len(run.examples())).all()
    assert set(run.trace("train")["epoch"].unique()) == {1, 2, 3}
    assert set(run.checkpoint(3)) == set(run.checkpoint(0))  # clean keys, no _module.
    assert not any(k.startswith("_module") for k in run.checkpoint(3))
    assert run.embedding(3, "fc1").shape[0] == len(run.examples())
    assert not (tmp_path / "run" / "layer_grads.parquet").exists()  # off under DP
    assert RunConfig.from_dict(run.config).train.dp.noise_multiplier == dp["noise_multiplier"]


def test_noise_zero_and_a_huge_clip_train_as_plain_full_batch_sgd(tmp_path):
    """Without noise, clipping that never bites and q = 1 (batch >= n), DP-SGD is the plain
    step: the same weights as the plain run."""
    base = tiny_config(train=replace(tiny_config().train, epochs=2, batch_size=512))
    record = replace(base.record, embed_epochs=(), checkpoint_epochs=(0, 2), grad_accounting=False)
    base = replace(base, record=record)
    private = replace(base, train=replace(base.train, dp=DPConfig(clip=1e6, noise_multiplier=0)))
    train(base, tmp_path / "plain")
    train(private, tmp_path / "dp")
    a, b = Run.open(tmp_path / "plain").checkpoint(2), Run.open(tmp_path / "dp").checkpoint(2)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)
    assert json.loads((tmp_path / "dp" / "run.json").read_text())["dp_epsilon"] is None


def test_a_dp_run_killed_at_epoch_2_resumes_identically(tmp_path):
    config = dp_config(noise_multiplier=1.1)
    train(config, tmp_path / "whole")

    def kill(epoch, total, summary):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "killed", progress=kill)
    killed = json.loads((tmp_path / "killed" / "run.json").read_text())
    assert killed["epochs_completed"] == 2
    assert killed["dp_epsilon"] == pytest.approx(
        epsilon_spent(1.1, *_q_steps(tmp_path / "killed", 2), 1e-3)
    )
    train(config, tmp_path / "killed", resume=True)
    whole, resumed = Run.open(tmp_path / "whole"), Run.open(tmp_path / "killed")
    for key, value in whole.checkpoint(3).items():
        torch.testing.assert_close(resumed.checkpoint(3)[key], value, rtol=0, atol=0)
    a, b = whole.trace("eval"), resumed.trace("eval")
    np.testing.assert_array_equal(a["loss"].to_numpy(), b["loss"].to_numpy())
    meta = [json.loads((tmp_path / r / "run.json").read_text()) for r in ("whole", "killed")]
    assert meta[0]["dp_epsilon"] == meta[1]["dp_epsilon"]


def test_loss_sensitivity_and_critical_samples_record_under_dp_and_leave_training_alone(tmp_path):
    """The recorder's eval-mode input-gradient passes run with Opacus's hooks off: they
    record, and the DP weights are those of the same run without them."""
    config = dp_config(noise_multiplier=1.0)
    asked = replace(config.record, loss_sensitivity=True, critical_examples=5)
    train(config, tmp_path / "plain")
    train(replace(config, record=asked), tmp_path / "asked")
    trace = Run.open(tmp_path / "asked").trace(
        "eval", columns=["epoch", "loss_sensitivity", "critical"]
    )
    assert trace["loss_sensitivity"].notna().all() and (trace["loss_sensitivity"] > 0).any()
    assert trace.groupby("epoch")["critical"].count().eq(5).all()
    a, b = Run.open(tmp_path / "plain").checkpoint(3), Run.open(tmp_path / "asked").checkpoint(3)
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=0, atol=0)


def test_an_epochs_dropout_sampling_and_noise_seeds_are_separate_streams():
    seeds = dp_module.epoch_seeds(3, 2)
    assert len(set(seeds)) == 3 and seeds[0] == 3 * 1_000_003 + 2  # dropout's: the plain run's
    assert seeds == dp_module.epoch_seeds(3, 2)  # seeded: a resumed run draws the same
    assert set(seeds).isdisjoint(dp_module.epoch_seeds(3, 3))
    draws = [torch.rand(50, generator=torch.Generator().manual_seed(s)) for s in seeds]
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[1], draws[2])


class _Stub:
    """The recorder's interface in a step, keeping nothing."""

    def log_batch(self, ids, logits) -> None:
        pass


@pytest.mark.parametrize("clipping", ["dense", "ghost"])
def test_one_dp_step_without_noise_is_the_sum_of_clipped_per_example_gradients_over_qn(clipping):
    """The dense path's one backward pass and ghost clipping's two give each example's
    gradient clipped to C, summed and divided by the expected batch q * n, as a loop over the
    examples does; an empty Poisson batch steps with a zero gradient."""
    config = dp_config(noise_multiplier=0.0, clip=0.05)
    gen = torch.Generator().manual_seed(0)
    inputs, labels = torch.randn(10, 8, generator=gen), torch.randint(0, 4, (10,), generator=gen)
    model = training.make_model(config, (8,), 4)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = training.make_optimizer(config, model)
    seen = []
    inner = opt.step
    opt.step = lambda *a, **k: (
        seen.append([p.grad.clone() for p in model.parameters()]),
        inner(*a, **k),
    )[1]
    private = dp_module.DPTraining(config, model, opt, 10, clipping=clipping)
    assert private.clipping == clipping
    ids = torch.tensor([0, 2, 3, 7])
    expected = [torch.zeros_like(p) for p in model.parameters()]
    plain = training.make_model(config, (8,), 4)
    plain.load_state_dict(before)
    for i in ids:
        plain.zero_grad()
        F.cross_entropy(plain(inputs[i][None]), labels[i][None]).backward()
        grads = [p.grad for p in plain.parameters()]
        norm = float(torch.sqrt(sum(g.square().sum() for g in grads)))
        assert norm > 0.05  # the clip bites
        expected = [
            e + g * min(1.0, 0.05 / (norm + 1e-6)) for e, g in zip(expected, grads, strict=True)
        ]
    private._step(model, _Stub(), inputs, labels, ids)
    q, _ = sampling(10, 16)
    for got, want in zip(seen[0], expected, strict=True):
        torch.testing.assert_close(got, want / (q * 10), rtol=1e-5, atol=1e-7)
    private._step(model, _Stub(), inputs, labels, ids[:0])
    assert all((g == 0).all() for g in seen[1])
    if clipping == "ghost":
        assert not private.model.hooks_enabled  # off again for the recorder's eval passes
    else:
        assert private.model is model and not private.dense._capturing


def _q_steps(path, epochs):
    n = len(Run.open(path).examples().query("split == 'train'"))
    q, steps = sampling(n, 16)
    return q, steps * epochs


class WithBatchNorm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(8, 6)
        self.norm = torch.nn.BatchNorm1d(6)
        self.out = torch.nn.Linear(6, 4)

    def forward(self, x):
        return self.out(self.norm(self.fc1(x)))


def test_check_model_names_the_layer_opacus_rejects():
    with pytest.raises(ValueError, match=r"layer 'norm' \(BatchNorm1d\)"):
        check_model(WithBatchNorm())
    check_model(torch.nn.Sequential(torch.nn.Linear(3, 2)))  # accepted


def test_a_model_with_batchnorm_is_refused_before_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "make_model", lambda *args: WithBatchNorm())
    with pytest.raises(ValueError, match="BatchNorm1d"):
        train(dp_config(noise_multiplier=1.0), tmp_path / "run")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("dp", "record", "match"),
    [
        ({"epsilon": 0.0}, {}, "dp.epsilon must be a finite number > 0"),
        ({"epsilon": 1.0, "delta": 1.0}, {}, r"dp.delta must be a finite number in \(0, 1\)"),
        ({"noise_multiplier": -1.0}, {}, "dp.noise_multiplier must be a finite number >= 0"),
        ({"noise_multiplier": 1.0, "clip": 0.0}, {}, "dp.clip must be a finite number > 0"),
        ({}, {}, "needs a target epsilon"),
        ({"noise_multiplier": 1.0}, {"grad_accounting": True}, "--grad-accounting cannot"),
    ],
)
def test_validate_refuses_bad_dp_options(dp, record, match):
    config = dp_config(**dp)
    config = replace(config, record=replace(config.record, **record))
    with pytest.raises(ValueError, match=match):
        validate(config)


def test_a_delta_at_or_above_one_over_n_is_refused_before_the_run_folder(tmp_path):
    with pytest.raises(ValueError, match=r"--dp-delta 0.01 must be below 1/160"):
        train(dp_config(noise_multiplier=1.0, delta=0.01), tmp_path / "run")
    assert not any(tmp_path.iterdir())


def test_text_runs_refuse_dp():
    from memdash.analysis.record.config import DataConfig, ModelConfig

    config = RunConfig(
        data=DataConfig(dataset="text"),
        model=ModelConfig(name="gpt"),
        train=replace(tiny_config().train, dp=DPConfig(noise_multiplier=1.0)),
    )
    with pytest.raises(ValueError, match="text runs cannot train with it"):
        validate(config)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--dp-epsilon", "1", "--dp-noise", "1"],
            "error: --dp-epsilon and --dp-noise: give one (the noise follows from the epsilon)",
        ),
        (["--dp-clip", "2"], "error: --dp-delta and --dp-clip need --dp-epsilon or --dp-noise"),
        (["--dp-epsilon", "-1"], "error: --dp-epsilon must be a finite number > 0, got -1"),
        (["--dp-epsilon", "nan"], "error: --dp-epsilon must be a finite number > 0, got nan"),
        (
            ["--dp-noise", "1", "--dp-delta", "1"],
            "error: --dp-delta must be a finite number in (0, 1), got 1",
        ),
        (
            ["--dp-noise", "1", "--grad-accounting"],
            "error: --grad-accounting cannot run under DP-SGD",
        ),
    ],
)
def test_bad_dp_options_are_one_line_and_leave_nothing(args, line, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", *TINY, *args, "--out", str(out)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith(line), result.output
    assert not any(tmp_path.iterdir())


def test_the_cli_trains_with_dp_noise(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", *TINY, "--dp-noise", "1", "--dp-delta", "1e-3"])
    assert result.exit_code == 2  # --out is required
    result = runner.invoke(
        app, ["train", *TINY, "--dp-noise", "1", "--dp-delta", "1e-3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "run.json").read_text())
    assert meta["config"]["train"]["dp"] == {
        "epsilon": None,
        "delta": 1e-3,
        "clip": 1.0,
        "noise_multiplier": 1.0,
    }
    q, steps = sampling(96, 16)
    assert meta["dp_epsilon"] == pytest.approx(opacus_epsilon(1.0, q, steps * 2, 1e-3))


def test_opacus_is_not_imported_with_memdash():
    import subprocess
    import sys

    code = "import memdash.analysis.cli, memdash.analysis.record.config, sys; "
    code += "print('opacus' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert dp_module.__name__.endswith("record.dp")


def test_the_footprint_counts_dp_sgds_per_example_gradients():
    from memdash.analysis.cli.footprint import parts

    plain = parts(dp_config(noise_multiplier=1.0))
    dp = [p for p in plain if p.option == "--dp-noise"]
    assert len(dp) == 1 and "16 examples x" in dp[0].what
    params = (8 * 16 + 16) + (16 * 8 + 8) + (8 * 4 + 4)  # the MLP 8-16-8-4
    assert dp[0].size == 16 * params * 4
    assert not [p for p in parts(tiny_config()) if p.option.startswith("--dp")]


def _runs_page():
    from memdash.dashboard.app_pages import runs

    runs.render()


def test_the_runs_page_shows_a_dp_runs_epsilon_and_leaves_plain_runs_blank(
    tiny_run, tmp_path, monkeypatch
):
    import shutil

    from streamlit.testing.v1 import AppTest

    shutil.copytree(tiny_run, tmp_path / "plain")
    train(dp_config(noise_multiplier=1.0), tmp_path / "private")
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    at = AppTest.from_function(_runs_page, default_timeout=60).run()
    assert not at.exception
    table = runs_table(at).set_index("run")
    eps = json.loads((tmp_path / "private" / "run.json").read_text())["dp_epsilon"]
    assert table.loc["private", "ε spent (DP accountant)"] == f"{eps:.2f}"
    assert table.loc["private", "δ of the DP accountant"] == "1e-03"
    assert table.loc["tiny", "ε spent (DP accountant)"] == ""
    assert table.loc["tiny", "δ of the DP accountant"] == ""
