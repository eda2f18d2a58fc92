"""`memdash estimate`: storage, resume, backends, and Feldman & Zhang's finding on digits."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.ensemble.estimate import EstimateSpec, completed, estimate
from memdash.analysis.store import Run

SPEC = EstimateSpec(models=6, models_per_batch=2, seed=3)


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    shutil.copytree(tiny_run, tmp_path / "r")
    return tmp_path / "r"


def _files(run: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted((run / "heldout").glob("*.npy"))}


def test_estimate_stores_bits_and_derives_scores(run_copy):
    tables = estimate(run_copy, SPEC, workers=1)
    assert completed(Run.open(run_copy)) == {(0, 0), (0, 1), (0, 2)}
    files = _files(run_copy)
    assert len(files) == 9  # subsets, confidences, correctness per batch
    n_train = 160  # tiny run: 200 examples, 20% test
    assert np.load(run_copy / "heldout" / "r0_b0000.subsets.npy").shape == (2, n_train // 8)
    assert np.load(run_copy / "heldout" / "r0_b0000.correct.npy").shape == (2, 200 // 8)
    conf = np.load(run_copy / "heldout" / "r0_b0000.conf.npy")
    assert conf.dtype == np.float16 and conf.shape == (2, 200) and np.isfinite(conf).all()
    # phi > 0 exactly where the label's probability beats 1/2, so where the model is right
    # whenever phi > 0 (a right answer can still have p < 1/2 with three or more classes)
    correct = np.unpackbits(np.load(run_copy / "heldout" / "r0_b0000.correct.npy"), axis=1)
    assert correct[conf > 0].all()
    held = Run.open(run_copy).read_derived("heldout.parquet")
    assert len(held) == 200 and (held["n_in"] + held["n_out"] == 6).all()
    test = held.iloc[160:]
    assert (test["n_in"] == 0).all() and test["mem_score"].isna().all()  # never trained on
    assert len(tables["influence.parquet"]) == 40 * 5
    # a second call trains nothing and gives the same tables
    assert estimate(run_copy, SPEC, workers=1)["heldout.parquet"].equals(tables["heldout.parquet"])


def test_a_killed_estimate_resumes_with_the_same_result(run_copy, tmp_path):
    shutil.copytree(run_copy, tmp_path / "whole")
    estimate(tmp_path / "whole", SPEC, workers=1)

    def kill_after_first(done, total):
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        estimate(run_copy, SPEC, workers=1, progress=kill_after_first)
    assert completed(Run.open(run_copy)) == {(0, 0)}
    estimate(run_copy, SPEC, workers=1)
    assert _files(run_copy) == _files(tmp_path / "whole")


def test_a_batch_without_confidences_is_trained_again_to_the_same_bits(run_copy):
    """An estimate stored before confidences were: its batches count as missing, and the
    same seeds give back the same subsets and correctness, now with confidences."""
    estimate(run_copy, SPEC, workers=1)
    before = _files(run_copy)
    (run_copy / "heldout" / "r0_b0001.conf.npy").unlink()
    assert completed(Run.open(run_copy)) == {(0, 0), (0, 2)}
    estimate(run_copy, SPEC, workers=1)
    assert _files(run_copy) == before


def test_more_models_extend_an_estimate_and_a_changed_spec_is_refused(run_copy):
    estimate(run_copy, SPEC, workers=1)
    before = _files(run_copy)
    bigger = EstimateSpec(models=8, models_per_batch=2, seed=3)
    estimate(run_copy, bigger, workers=1)
    after = _files(run_copy)
    new = {"r0_b0003.subsets.npy", "r0_b0003.conf.npy", "r0_b0003.correct.npy"}
    assert set(after) - set(before) == new
    assert all(after[k] == v for k, v in before.items())
    with pytest.raises(ValueError, match="--overwrite"):
        estimate(run_copy, EstimateSpec(models=8, models_per_batch=2, seed=4), workers=1)


@pytest.mark.slow
def test_local_processes_and_ray_give_identical_estimates(run_copy, tmp_path):
    pytest.importorskip("ray", reason="make test installs the ray extra")
    shutil.copytree(run_copy, tmp_path / "ray")
    estimate(run_copy, SPEC, backend="local", workers=2)
    estimate(tmp_path / "ray", SPEC, backend="ray", workers=2)
    assert _files(run_copy) == _files(tmp_path / "ray")
    a = Run.open(run_copy).read_derived("heldout.parquet")
    b = Run.open(tmp_path / "ray").read_derived("heldout.parquet")
    assert a.equals(b)


def test_estimate_command(tmp_path):
    runner = CliRunner()
    args = ["estimate", "--out", str(tmp_path / "e"), "--dataset", "synthetic"]
    args += ["--n-examples", "120", "--hidden", "8", "--epochs", "2", "--noise", "0.2"]
    args += ["--models", "4", "--models-per-batch", "2", "--ratios", "0.3,0.7", "--workers", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "4 of 4 model batches trained" in " ".join(result.output.split())  # 2 ratios x 2
    held = Run.open(tmp_path / "e").read_derived("heldout.parquet")
    assert {"c_score", "heldout_accuracy_r0.3", "heldout_accuracy_r0.7"} <= set(held.columns)
    again = ["estimate", "--like", str(tmp_path / "e"), "--models", "4", "--models-per-batch"]
    again += ["2", "--ratios", "0.3,0.7", "--workers", "1"]
    result = runner.invoke(app, [*again, "--budget", "1,3"])
    assert result.exit_code == 0, result.output
    assert "every batch was stored, scores derived again" in " ".join(result.output.split())
    # 4 models: one target (a quarter), so at most 3 references; refused before any work
    result = runner.invoke(app, [*again, "--budget", "1,4"])
    assert result.exit_code == 2
    assert "--budget 4: an estimate of 4 models has at most 3 reference models" in " ".join(
        result.output.split()
    )
    result = runner.invoke(app, ["estimate", "--models", "4"])
    assert result.exit_code == 2 and "--like RUN" in result.output
    result = runner.invoke(app, [*args[:3], "--backend", "spark"])
    assert result.exit_code == 2 and "--backend must be one of local, ray" in result.output


@pytest.mark.slow
def test_digits_flipped_examples_are_memorized(tmp_path):
    """Feldman & Zhang on digits with 20% flipped labels, K=64 models on 70% subsets.

    Measured: flipped mean mem_score 0.95; clean median 0.06 and mean 0.17 (the
    models' held-out accuracy on clean examples is only about 0.83 here)."""
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "estimate",
            "--out",
            str(tmp_path / "d"),
            "--dataset",
            "digits",
            "--noise",
            "0.2",
            "--models",
            "64",
        ],
    )
    assert result.exit_code == 0, result.output
    run = Run.open(tmp_path / "d")
    held, ex = run.read_derived("heldout.parquet"), run.examples()
    train = ex["split"] == "train"
    flipped = held["mem_score"][train & ex["is_noisy"]]
    clean = held["mem_score"][train & ~ex["is_noisy"]]
    assert flipped.mean() > 0.5
    assert clean.median() < 0.1 and clean.mean() < flipped.mean()


def test_an_estimate_run_keeps_full_inputs_whatever_the_form_asked(tmp_path):
    """Its models train on the inputs: `--out` writes inputs.npy even where the config's
    form would keep thumbnails (as `auto` does above 2 GiB)."""
    from dataclasses import replace

    from conftest import tiny_config

    from memdash.analysis.cli.estimate import _new_estimate_run

    config = tiny_config()
    config = replace(config, record=replace(config.record, store_inputs="thumbnail"))
    _new_estimate_run(tmp_path / "est", config)
    run = Run.open(tmp_path / "est")
    assert run.input_form == "full" and run.inputs().shape == (200, 8)
