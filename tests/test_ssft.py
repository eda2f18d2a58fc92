"""Second-split forgetting time (Maini et al. 2022): the measure on hand-made grids, the
two-phase training where the forgetting is known, the stored table and `memdash ssft`."""

import json
import re
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_config
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.ensemble.batched import fit_batched, model_seed
from memdash.analysis.ensemble.ssft import (
    COLUMNS,
    SSFTSpec,
    second_split_grids,
    split_halves,
    write_ssft,
)
from memdash.analysis.measures.ssft import second_split_forgetting_time
from memdash.analysis.record.config import ModelConfig, RunConfig, TrainConfig
from memdash.analysis.record.training import train
from memdash.analysis.store import Run

runner = CliRunner()


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train fastest on one torch thread (several wait on each other on a busy
    machine, 4 s against 0.3 s for the two-phase training below)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------ the measure
# columns: row 0 = the end of A-training, rows 1..4 = after B-epochs 1..4 (E = 4)
GRID = np.array(
    [
        # forgotten at B-epoch 2 and stays; forgotten, relearned, forgotten (from epoch 3);
        # never forgotten; right only at the last epoch again (never forgotten for good);
        # forgotten at once; not learned at the end of A-training
        [1, 1, 1, 1, 1, 0],
        [1, 0, 1, 0, 0, 1],
        [0, 1, 1, 0, 0, 1],
        [0, 0, 1, 0, 0, 0],
        [0, 0, 1, 1, 0, 0],
    ],
    dtype=bool,
)


@pytest.mark.parametrize(("not_learned", "fill"), [("zero", 0.0), ("nan", np.nan)])
def test_ssft_of_hand_made_grids(not_learned, fill):
    got = second_split_forgetting_time(GRID, not_learned=not_learned)
    np.testing.assert_array_equal(got, [2, 3, 5, 5, 1, fill])
    assert got.dtype == np.float64


def test_ssft_matches_a_loop_over_examples():
    grid = np.random.default_rng(0).random((7, 50)) < 0.6
    got = second_split_forgetting_time(grid)
    for i in range(50):
        stays_wrong = [e for e in range(1, 8) if not grid[e:, i].any()]
        expected = 0 if not grid[0, i] else (stays_wrong[0] if stays_wrong else 7)
        assert got[i] == expected


def test_one_row_and_no_examples():
    np.testing.assert_array_equal(second_split_forgetting_time(np.array([[True, False]])), [1, 0])
    assert second_split_forgetting_time(np.zeros((3, 0), bool)).shape == (0,)


@pytest.mark.parametrize(
    ("grid", "options", "message"),
    [
        (GRID.astype(int), {}, "must be a bool (epochs + 1, examples) grid"),
        (GRID[0], {}, "must be a bool (epochs + 1, examples) grid"),
        (np.zeros((0, 3), bool), {}, "must be a bool (epochs + 1, examples) grid"),
        (GRID, {"not_learned": "drop"}, "unknown not_learned 'drop'; valid: zero, nan"),
    ],
)
def test_ssft_refuses_bad_grids(grid, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        second_split_forgetting_time(grid, **options)


# ------------------------------------------------------------------ the training
def _conflict_setting():
    """Two blobs (classes 0 and 1) split into halves A and B; a cluster of 6 points far from
    both, labelled 0 in A and duplicated in B with label 1; one clean point of class 1 in A,
    duplicated in B with the same label."""
    rng = np.random.default_rng(0)
    centers = np.array([[3.0] * 4, [-3.0] * 4])
    blob_y = np.repeat([0, 1], 40)
    blobs = centers[blob_y] + rng.normal(scale=0.5, size=(80, 4))
    cluster = np.array([8.0, -8.0, 8.0, -8.0]) + rng.normal(scale=0.3, size=(6, 4))
    clean = centers[1] + 0.1
    x = np.concatenate([blobs, cluster, cluster, [clean, clean]])
    y = np.concatenate([blob_y, np.zeros(6), np.ones(6), [1, 1]]).astype(np.int64)
    in_a = np.zeros(len(x), bool)
    in_a[0:80:2] = True  # half of each blob
    in_a[80:86] = True  # the cluster with label 0
    in_a[92] = True  # the clean point; its copy (93) in B
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y), in_a


def test_a_conflicting_label_is_forgotten_and_a_clean_duplicate_is_not():
    x, y, in_a = _conflict_setting()
    config = RunConfig(
        model=ModelConfig(hidden=(16,)),
        train=TrainConfig(epochs=15, batch_size=8, lr=0.02, optimizer="adam"),
    )
    ids = np.arange(len(x))
    grids = second_split_grids(config, x, y, ids, in_a[None], second_epochs=8, seed=0)
    assert grids.shape == (1, 9, len(x))
    ssft = second_split_forgetting_time(grids[0])
    assert grids[0, 0, in_a].all()  # the first phase fit all of A, the cluster's label 0 too
    # then forgot it early (B-epoch 1 to 2 for seeds 0-4, 5 for seed 5)
    assert (ssft[80:86] >= 1).all() and (ssft[80:86] <= 5).all()
    assert ssft[92] == 9  # never forgotten: its label holds in B as well
    assert (ssft[:80][in_a[:80]] == 9).all()  # as do the blobs' (B holds their like)


def test_models_of_unequal_halves_train_apart_and_each_gets_its_own_grid():
    x, y, in_a = _conflict_setting()
    config = RunConfig(model=ModelConfig(hidden=(8,)), train=TrainConfig(epochs=1, batch_size=8))
    ids = np.arange(len(x))
    first = np.stack([in_a, ~in_a, in_a])  # 47/47/47 positions: one group of three
    together = second_split_grids(config, x, y, ids, first, second_epochs=2, seed=0)
    odd = first.copy()
    odd[1, 0] = True  # model 1: 48 first-phase positions, trained in a group of its own
    apart = second_split_grids(config, x, y, ids, odd, second_epochs=2, seed=0)
    assert together.shape == apart.shape == (3, 3, len(x))
    # a model's result does not depend on the models it trained beside
    np.testing.assert_array_equal(together[[0, 2]], apart[[0, 2]])


def test_fit_batched_continues_given_models_and_reports_each_epoch():
    x, y, in_a = _conflict_setting()
    config = RunConfig(model=ModelConfig(hidden=(8,)), train=TrainConfig(epochs=2, batch_size=8))
    seeds = [model_seed(0, 0, 0)]
    ens = fit_batched(config, x, y, np.arange(len(x)), seeds, in_a[None])
    before = [p.detach().clone() for p in ens.parameters()]
    seen = []
    still = replace(config, train=replace(config.train, lr=1e-12))
    again = fit_batched(
        still,
        x,
        y,
        np.arange(len(x)),
        seeds,
        ~in_a[None],
        start=ens,
        on_epoch=lambda epoch, models: seen.append((epoch, models.training)),
    )
    assert again is ens and seen == [(1, False), (2, False)]
    for old, new in zip(before, ens.parameters(), strict=True):  # continued, not re-initialized
        torch.testing.assert_close(old, new.detach())


def test_halves_are_seeded_and_refuse_one_example():
    a = split_halves(3, 11)
    assert a.sum() == 6 and (a == split_halves(3, 11)).all() and (a != split_halves(4, 11)).any()
    with pytest.raises(ValueError, match="two halves; got 1"):
        split_halves(0, 1)


# ------------------------------------------------------------------ a run and the command
@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory):
    """The tiny run for 2 epochs with one canary per repeat count (163 training examples:
    halves of 82 and 81, a canary trained 1, 10 or 50 times per epoch)."""
    config = tiny_config()
    config = replace(
        config,
        train=replace(config.train, epochs=2),
        data=replace(config.data, canaries=1, reference_canaries=4),
        record=replace(config.record, embed_epochs=(0, 2), checkpoint_epochs=(0, 2)),
    )
    out = tmp_path_factory.mktemp("ssft") / "run"
    train(config, out)
    return out


@pytest.fixture
def run_copy(two_epoch_run, tmp_path):
    shutil.copytree(two_epoch_run, tmp_path / "r")
    return tmp_path / "r"


def test_write_ssft_stores_every_training_example(run_copy):
    table, entry = write_ssft(run_copy, SSFTSpec(epochs=2, second_epochs=3, seed=1))
    run = Run.open(run_copy)
    stored = run.read_derived("ssft.parquet")
    pd.testing.assert_frame_equal(stored, table)
    examples = run.examples()
    assert tuple(stored.columns) == COLUMNS
    assert (stored["example_id"] == np.flatnonzero(examples["split"] == "train")).all()
    assert stored["ssft"].dtype == np.int64 and stored["ssft"].between(0, 4).all()
    assert (stored["ssft"][~stored["learned_first"]] == 0).all()
    assert stored["half"].value_counts().to_dict() == {"A": 82, "B": 81}
    assert (stored["second_epochs"] == 3).all()
    manifest = run.derived_manifest()["ssft"]
    assert manifest["params"] == {
        "epochs": 2,
        "second_epochs": 3,
        "seed": 1,
        "half_sizes": [82, 81],
    }
    assert manifest["seconds"] > 0 and manifest["files"] == ["ssft.parquet"]
    again, _ = write_ssft(run_copy, SSFTSpec(epochs=2, second_epochs=3, seed=1))
    pd.testing.assert_frame_equal(again, table)  # the same seed, the same SSFT


def test_ssft_command_end_to_end(run_copy):
    result = runner.invoke(app, ["ssft", str(run_copy)])
    output = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "SSFT of 163 training examples (halves of 82 and 81; 2 epochs, then 2" in output
    assert f"wrote {run_copy}/derived/ssft.parquet" in output
    assert Run.open(run_copy).read_derived("ssft.parquet")["second_epochs"].eq(2).all()
    result = runner.invoke(app, ["ssft", str(run_copy), "--second-epochs", "3"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1
    assert "already holds derived/ssft.parquet" in lines[0] and "--overwrite" in lines[0]
    result = runner.invoke(app, ["ssft", str(run_copy), "--second-epochs", "3", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert Run.open(run_copy).read_derived("ssft.parquet")["second_epochs"].eq(3).all()


def _edit_run_json(run, edit) -> None:
    meta = json.loads((run / "run.json").read_text())
    edit(meta)
    (run / "run.json").write_text(json.dumps(meta))


def _no_training_examples(run) -> None:
    examples = pd.read_parquet(run / "examples.parquet")
    examples["split"] = "test"
    examples.to_parquet(run / "examples.parquet")


@pytest.mark.parametrize(
    ("damage", "args", "message"),
    [
        (lambda r: _edit_run_json(r, lambda m: m.update(modality="text")), [], "is a language"),
        (
            lambda r: _edit_run_json(r, lambda m: m["config"].pop("model")),
            [],
            "run.json has no config.model: SSFT retrains the run's model",
        ),
        (_no_training_examples, [], "has 0 training example(s): SSFT needs two halves"),
        (None, ["--epochs", "0"], "error: --epochs must be an integer in 1..100000, got 0"),
        (None, ["--second-epochs", "x"], "--second-epochs must be an integer in 1..100000"),
        (None, ["--seed", "-1"], "--seed must be an integer in 0..4294967295, got -1"),
    ],
)
def test_ssft_command_refuses_in_one_line_and_writes_nothing(run_copy, damage, args, message):
    if damage is not None:
        damage(run_copy)
    before = sorted((p, p.stat().st_size) for p in run_copy.rglob("*"))
    result = runner.invoke(app, ["ssft", str(run_copy), *args])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and message in " ".join(result.output.split()), result.output
    assert sorted((p, p.stat().st_size) for p in run_copy.rglob("*")) == before


def test_ssft_command_names_a_missing_run(tmp_path):
    result = runner.invoke(app, ["ssft", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "run.json: missing" in result.output


def test_ssft_of_a_run_without_its_data_config_still_runs(run_copy):
    """A run's data lives in its files (inputs.npy, examples.parquet): only its model and
    training must be in the config."""
    _edit_run_json(run_copy, lambda m: m["config"].pop("data"))
    table, _ = write_ssft(run_copy, SSFTSpec(epochs=1, second_epochs=1))
    assert len(table) == 163
