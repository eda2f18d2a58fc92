import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from analysis.cli import app
from analysis.pipeline import analyze, compute_scores
from analysis.runs import Run, RunWriter


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    shutil.copytree(tiny_run, tmp_path / "r")
    return tmp_path / "r"


def test_scores_have_eval_and_train_columns(run_copy):
    run = Run.open(run_copy)
    scores = compute_scores(run)
    assert len(scores) == 200 and scores["example_id"].tolist() == list(range(200))
    assert (scores["n_epochs"] == 4).all()  # eval: every example, epochs 1..4
    train = (run.examples()["split"] == "train").to_numpy()
    assert (scores["n_epochs_train"][train] == 4).all()
    assert (scores["n_epochs_train"][~train] == 0).all()  # test examples: no minibatches
    assert np.isnan(scores["confidence_train"][~train]).all()
    # confidence is the mean of prob_label over epochs 1..4 (epoch 0 excluded)
    t = run.trace("eval")
    expect = t[(t.epoch >= 1) & (t.example_id == 7)]["prob_label"].astype(float).mean()
    assert scores["confidence"][7] == pytest.approx(expect)


def test_analyze_caches_and_notices_staleness(run_copy):
    assert analyze(run_copy) == {"scores": "computed"}
    assert analyze(run_copy) == {"scores": "up to date"}
    assert analyze(run_copy, force=True) == {"scores": "computed"}
    RunWriter.reopen(run_copy)  # status becomes running: the inputs changed
    assert analyze(run_copy) == {"scores": "computed"}
    assert Run.open(run_copy).read_derived("scores.parquet").shape[0] == 200


def test_analyze_recomputes_a_missing_result_and_rejects_unknown_steps(run_copy):
    analyze(run_copy)
    (run_copy / "derived" / "scores.parquet").unlink()
    assert analyze(run_copy) == {"scores": "computed"}
    with pytest.raises(ValueError, match=r"unknown analysis step\(s\) \['umap9'\]; valid: scores"):
        analyze(run_copy, only=["umap9"])


def test_analyze_command(run_copy):
    runner = CliRunner()
    result = runner.invoke(app, ["analyze", str(run_copy)])
    assert result.exit_code == 0 and "scores: computed" in result.output
    result = runner.invoke(app, ["analyze", str(run_copy), "--only", "scores"])
    assert "scores: up to date" in result.output
    result = runner.invoke(app, ["analyze", str(run_copy / "nowhere")])
    assert result.exit_code == 1 and "run.json" in result.output
