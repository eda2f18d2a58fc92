import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from memdash.analysis.record.config import TrainConfig
from memdash.analysis.record.training import (
    TrainingError,
    load_optimizer_state,
    optimizer_state,
    train,
)
from memdash.analysis.store import Run
from tests.conftest import tiny_config


def _same_run(a: Run, b: Run) -> None:
    for source in ("eval", "train"):
        pd.testing.assert_frame_equal(a.trace(source), b.trace(source))
    pd.testing.assert_frame_equal(a.layer_grads(), b.layer_grads())
    assert a.embedding_index() == b.embedding_index()
    for epoch, layers in a.embedding_index().items():
        for layer in layers:
            assert np.array_equal(a.embedding(epoch, layer), b.embedding(epoch, layer))
    for epoch in a.checkpoint_epochs():
        for key, value in a.checkpoint(epoch).items():
            assert torch.equal(value, b.checkpoint(epoch)[key]), (epoch, key)


def test_tiny_run_has_everything(tiny_run):
    run = Run.open(tiny_run)
    assert run.status == "complete" and run.epochs_completed == 4
    assert run.layers == ["fc1", "fc2", "out"]
    eval_trace = run.trace("eval")
    assert len(eval_trace) == 5 * 200  # epochs 0..4, every example
    train_trace = run.trace("train")
    assert sorted(train_trace["epoch"].unique()) == [1, 2, 3, 4]
    assert len(train_trace) == 4 * 160
    assert run.embedding_index() == {0: ["fc1", "out"], 4: ["fc1", "out"]}
    assert run.embedding(4, "fc1").shape == (200, 16)
    assert run.checkpoint_epochs() == [0, 2, 4]
    grads = run.layer_grads()
    assert len(grads) == 4 * 3 * 2
    assert (grads.groupby("epoch")["n_examples"].sum() == 3 * 160).all()
    assert not (tiny_run / "resume").exists()  # removed once complete
    # the summary in run.json matches the last epoch of the trace
    last = eval_trace[eval_trace.epoch == 4]
    assert run.meta["last_epoch"]["test_acc"] == pytest.approx(last.correct[160:].mean())


def test_same_seed_gives_an_identical_run(tiny_run, tmp_path):
    train(tiny_config(), tmp_path / "again")
    _same_run(Run.open(tiny_run), Run.open(tmp_path / "again"))


def test_another_seed_gives_another_run(tiny_run, tmp_path):
    train(tiny_config(seed=4), tmp_path / "other")
    a, b = Run.open(tiny_run).trace("eval"), Run.open(tmp_path / "other").trace("eval")
    assert not np.array_equal(a["loss"].to_numpy(), b["loss"].to_numpy())


def test_divergence_fails_the_run_and_keeps_earlier_epochs(tmp_path):
    cfg = tiny_config(train=TrainConfig(epochs=4, lr=1e30, batch_size=16))
    with pytest.raises(TrainingError, match="diverged in epoch 1.*lower --lr"):
        train(cfg, tmp_path / "nan")
    run = Run.open(tmp_path / "nan")
    assert run.status == "failed" and "diverged" in run.meta["error"]
    assert run.epochs_completed == 0
    assert run.trace("eval")["epoch"].unique().tolist() == [0]


def test_resume_refuses_another_config_and_complete_runs(tiny_run):
    with pytest.raises(TrainingError, match="different configuration"):
        train(tiny_config(seed=99), tiny_run, resume=True)
    with pytest.raises(TrainingError, match="already complete"):
        train(tiny_config(), tiny_run, resume=True)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_optimizer_state_round_trip(kind):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    make = {
        "sgd": lambda: torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        "adam": lambda: torch.optim.Adam(model.parameters(), lr=0.1),
    }[kind]
    opt = make()
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, meta = optimizer_state(opt)
    json.dumps(meta)  # JSON-able
    fresh = make()
    load_optimizer_state(fresh, tensors, json.loads(json.dumps(meta)))
    for key, value in opt.state_dict()["state"].items():
        for name, tensor in value.items():
            assert torch.equal(
                torch.as_tensor(tensor), torch.as_tensor(fresh.state_dict()["state"][key][name])
            )


KILL_ARGS = [
    "--dataset",
    "synthetic",
    "--n-examples",
    "12000",
    "--shape",
    "32",
    "--n-classes",
    "5",
    "--noise",
    "0.2",
    "--epochs",
    "6",
    "--hidden",
    "128,64",
    "--seed",
    "7",
    "--embed-layers",
    "fc1",
    "--embed-epochs",
    "0,3,6",
    "--checkpoint-epochs",
    "0,2,4,6",
]


def _memdash(*args):
    return [sys.executable, "-m", "memdash.analysis.cli", "train", *args]


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _memdash(*KILL_ARGS, "--out", str(killed)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    epochs = -1
    while time.time() < deadline and proc.poll() is None:
        try:
            epochs = json.loads((killed / "run.json").read_text())["epochs_completed"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            epochs = -1
        if epochs >= 2:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    run = Run.open(killed)
    assert run.status == "running" and run.epochs_completed >= 2
    run.validate()
    done = run.epochs_completed
    assert run.trace("eval")["epoch"].max() == done
    assert max(run.checkpoint_epochs()) <= done

    subprocess.run(
        _memdash("--resume", "--out", str(killed)), env=env, check=True, capture_output=True
    )
    whole = tmp_path / "whole"
    subprocess.run(
        _memdash(*KILL_ARGS, "--out", str(whole)), env=env, check=True, capture_output=True
    )
    a, b = Run.open(killed), Run.open(whole)
    assert a.status == b.status == "complete"
    _same_run(a, b)
    assert replace_command(a.config) == replace_command(b.config)


def replace_command(cfg):
    return {k: v for k, v in cfg.items() if k != "command"}


def test_config_round_trips_through_run_json(tiny_run):
    from memdash.analysis.record.config import RunConfig

    cfg = RunConfig.from_dict(Run.open(tiny_run).config)
    assert cfg == replace(tiny_config(), command=cfg.command)
