"""`memdash localize` on a tiny run, and the localization paper's findings on the sample runs."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.localization.rewinding import group_accuracy
from memdash.analysis.record.config import LocalizeConfig
from memdash.analysis.record.tied_dropout import tied_mode
from memdash.analysis.record.training import train
from memdash.analysis.steps.final_model import load
from memdash.analysis.steps.flipping import compute_flipping
from memdash.analysis.steps.pipeline import LOCALIZE_STEPS, analyze
from memdash.analysis.store import Run, RunWriter
from tests.conftest import tiny_config

SAMPLES = Path(__file__).resolve().parents[1] / "sample_runs"


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    shutil.copytree(tiny_run, tmp_path / "r")
    return tmp_path / "r"


def test_localize_computes_and_caches_the_three_experiments(run_copy):
    config = LocalizeConfig(retrain_epochs=2, flip_examples=6, flip_others=20)
    done = analyze(run_copy, config=config, steps=LOCALIZE_STEPS)
    assert done == {"rewinding": "computed", "retraining": "computed", "flipping": "computed"}
    assert set(analyze(run_copy, config=config, steps=LOCALIZE_STEPS).values()) == {"up to date"}
    run = Run.open(run_copy)

    rew = run.read_derived("rewinding.parquet")
    assert len(rew) == 3 * 3  # layers fc1, fc2, out x checkpoints 0, 2, 4
    final = rew[rew["epoch"] == 4][["clean_acc", "flipped_acc", "test_acc"]]
    assert (final.nunique() == 1).all()  # rewinding any layer to the final epoch: the final model

    ret = run.read_derived("retraining.parquet")
    assert sorted(ret["epoch"].unique()) == [0, 1, 2] and len(ret) == 3 * 3

    per = run.read_derived("localization.parquet")
    assert set(per["kind"]) <= {"flipped", "clean"} and 0 < len(per) <= 12
    layers = run.read_derived("localization_layers.parquet")
    assert set(layers["layer"]) == {"fc1", "fc2"}  # hidden layers only, by default
    sums = layers.groupby("example_id")["units_zeroed"].sum()
    assert sums.loc[per["example_id"]].tolist() == per["neurons_zeroed"].tolist()
    assert (per["hit_cap"] == ~per["flipped"]).all()
    assert np.allclose(per["collateral_drop"], per["accuracy_before"] - per["accuracy_after"])


def test_localize_command_and_its_errors(run_copy):
    runner = CliRunner()
    args = ["localize", str(run_copy), "--flip-examples", "4", "--retrain-epochs", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "rewinding: computed" in result.output and "flipping: computed" in result.output
    result = runner.invoke(app, ["localize", str(run_copy), "--only", "rewire"])
    assert result.exit_code == 2 and "--only must be names of rewinding," in result.output
    RunWriter.reopen(run_copy)  # the run is no longer complete
    result = runner.invoke(app, ["localize", str(run_copy)])
    assert result.exit_code == 1 and "localize a complete run" in result.output


def test_training_with_example_tied_dropout_stores_keep_and_drop_accuracies(tmp_path):
    config = tiny_config()
    config = replace(config, model=replace(config.model, example_tied_dropout=True))
    train(config, tmp_path / "tied")
    stored = json.loads((tmp_path / "tied" / "run.json").read_text())["example_tied_dropout"]
    assert set(stored) == {"keep", "drop"}
    run = Run.open(tmp_path / "tied")
    data = load(run)
    for mode in ("keep", "drop"):
        with tied_mode(data.model, mode):
            again = group_accuracy(data.model, data.inputs, data.labels, data.groups)
        assert again["clean_acc"] == pytest.approx(stored[mode]["clean_acc"])
        assert again["flipped_acc"] == pytest.approx(stored[mode]["noisy_acc"])
    assert (
        stored["keep"]["train_acc"]
        == json.loads((tmp_path / "tied" / "run.json").read_text())["last_epoch"]["train_acc"]
    )


@pytest.mark.slow
def test_sample_run_flipped_examples_need_fewer_neurons_than_clean_ones():
    """Maini et al.: memorized examples flip after few units. Measured on the sample run:
    median 3 units for flipped examples against 10 for clean ones."""
    table = compute_flipping(Run.open(SAMPLES / "digits_mlp_noise20"), LocalizeConfig())[
        "localization.parquet"
    ]
    medians = table.groupby("kind")["neurons_zeroed"].median()
    assert medians["flipped"] < medians["clean"]
    drop = table.groupby("kind")["collateral_drop"].median()
    assert drop["flipped"] < drop["clean"]


def test_sample_run_tied_dropout_drop_mode_forgets_the_flipped_labels():
    """Maini et al.: dropping the memorization channels removes what was memorized.
    Measured on the sample run: flipped accuracy 1.00 -> 0.02, test 0.75 -> 0.93."""
    run = Run.open(SAMPLES / "digits_mlp_noise20_tied")
    data = load(run)
    acc = {}
    for mode in ("keep", "drop"):
        with tied_mode(data.model, mode), torch.no_grad():
            acc[mode] = group_accuracy(data.model, data.inputs, data.labels, data.groups)
    assert acc["drop"]["flipped_acc"] <= acc["keep"]["flipped_acc"] / 2
    assert acc["drop"]["test_acc"] > acc["keep"]["test_acc"] - 0.05
    stored = run.meta["example_tied_dropout"]
    assert stored["drop"]["noisy_acc"] == pytest.approx(acc["drop"]["flipped_acc"])
