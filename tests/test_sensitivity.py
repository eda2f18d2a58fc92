"""Arpit et al.'s loss sensitivity and critical samples: hand-computed gradients, a model
whose decision boundary is known, and the recorded trace columns."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.measures.sensitivity import critical_samples, loss_sensitivity
from memdash.analysis.store import Run


def _linear(weight):
    model = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        model.weight.copy_(weight)
    return lambda x, ids: model(x)


def test_loss_sensitivity_is_the_l1_norm_of_each_examples_input_gradient():
    """For logits W x, dL/dx = W^T (softmax(W x) - onehot(y)): by hand, per example."""
    weight = torch.tensor([[1.0, -2.0], [0.5, 3.0], [0.0, 1.0]])
    x = torch.tensor([[0.2, -0.1], [1.0, 2.0], [-1.0, 0.5], [0.0, 0.0]])
    y = torch.tensor([0, 1, 2, 1])
    logits, sens = loss_sensitivity(_linear(weight), x, y, torch.arange(4))
    p = torch.softmax(x @ weight.T, 1)
    expected = ((p - torch.nn.functional.one_hot(y, 3)) @ weight).abs().sum(1)
    assert torch.allclose(sens, expected, atol=1e-6)
    assert torch.allclose(logits, x @ weight.T) and not logits.requires_grad


def test_critical_samples_are_those_near_the_decision_boundary():
    """Two classes with logits (x, -x) in 1-D: the boundary is x = 0, so within a box of
    radius 0.1 only the examples closer than 0.1 to it can change class."""
    forward = _linear(torch.tensor([[1.0], [-1.0]]))
    x = torch.tensor([[0.05], [-0.08], [0.5], [-0.3], [0.099], [0.15]])
    found = critical_samples(forward, x, torch.arange(6), radius=0.1, steps=5, seed=0)
    assert found.tolist() == [True, True, False, False, True, False]


TINY = ["--dataset", "synthetic", "--n-examples", "120", "--shape", "8", "--n-classes", "3"]
TINY += ["--noise", "0.2", "--hidden", "8", "--epochs", "3", "--no-record-train"]


def test_the_recorder_writes_both_as_trace_columns(tmp_path):
    extra = ["--record-loss-sensitivity", "--critical-examples", "30", "--critical-radius", "0.5"]
    extra += ["--embed-layers", "fc1", "--embed-epochs", "0,3"]
    result = CliRunner().invoke(app, ["train", *TINY, *extra, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    run = Run.open(tmp_path / "r")
    trace = run.trace("eval", columns=["epoch", "example_id", "loss_sensitivity", "critical"])
    assert (trace["loss_sensitivity"] >= 0).all() and np.isfinite(trace["loss_sensitivity"]).all()
    searched = trace.dropna(subset=["critical"])
    assert searched.groupby("epoch").size().tolist() == [30] * 4  # epochs 0..3
    subsets = searched.groupby("epoch")["example_id"].apply(tuple)
    assert subsets.nunique() == 1  # the same seeded subset every epoch
    assert set(searched["critical"]) <= {0.0, 1.0}
    assert run.config["record"]["critical_radius"] == 0.5
    # the search's own forward passes are not captured as embeddings
    assert run.embedding(3, "fc1").shape == (run.n_examples(), 8)
    # the eval statistics are those of a run without these columns (same seed)
    plain = CliRunner().invoke(app, ["train", *TINY, "--out", str(tmp_path / "plain")])
    assert plain.exit_code == 0
    a = run.trace("eval", columns=["loss", "correct"])
    b = Run.open(tmp_path / "plain").trace("eval", columns=["loss", "correct"])
    assert np.allclose(a["loss"], b["loss"], rtol=1e-5) and (a["correct"] == b["correct"]).all()


@pytest.mark.parametrize("bad", [["--critical-radius", "0"], ["--critical-steps", "0"]])
def test_bad_search_settings_get_one_message(bad, tmp_path):
    args = ["train", *TINY, "--critical-examples", "5", *bad, "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and f"error: {bad[0]} must be" in result.output
