"""Bad numbers refused before any work (issue 23, items 4-7): every option has a declared type
and range; a value outside it is one line naming the option and the range, exit code 2, and
nothing on disk. The issue's own examples, each as a test."""

import math
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from memdash.analysis.cli import app, footprint
from memdash.analysis.record.config import (
    AnalysisConfig,
    DataConfig,
    LocalizeConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    validate,
)

runner = CliRunner()
TINY = ["--dataset", "synthetic", "--n-examples", "120", "--shape", "8", "--n-classes", "3"]
TINY += ["--epochs", "1", "--hidden", "16", "--batch-size", "16"]


def _refused(args: list[str], tmp_path) -> str:
    """Run `memdash train TINY args --out tmp/run`: exit code 2, one line, no run folder."""
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", *TINY, *args, "--out", str(out)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert not out.exists() and not any(tmp_path.iterdir())
    return lines[0]


def test_an_overflowing_batch_size_is_one_line_and_leaves_no_folder(tmp_path):
    line = _refused(["--batch-size", "100000000000000000000"], tmp_path)
    assert line == "error: --batch-size must be an integer in 1..1000000, got 100000000000000000000"


def test_a_huge_width_is_refused_before_the_model_is_built(tmp_path):
    line = _refused(["--hidden", "99999999999"], tmp_path)
    assert line.startswith("error: --hidden must be integers in 1..1000000")
    assert line.endswith("got 99999999999")


def test_a_trillion_canaries_is_refused_before_they_are_drawn(tmp_path):
    line = _refused(["--canaries", "1000000000000"], tmp_path)
    assert line == "error: --canaries must be an integer in 0..10000000, got 1000000000000"


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--lr", "a finite number > 0"),
        ("--momentum", "a finite number in [0, 1)"),
        ("--weight-decay", "a finite number >= 0"),
        ("--noise", "a finite number in [0, 1]"),
        ("--dropout", "a finite number in [0, 1)"),
        ("--test-fraction", "a finite number in (0, 1)"),
    ],
)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_and_infinite_floats_are_refused(option, expected, value, tmp_path):
    line = _refused([option, value], tmp_path)
    assert line == f"error: {option} must be {expected}, got {value}"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--momentum", "1"], "error: --momentum must be a finite number in [0, 1), got 1"),
        (["--epochs", "0"], "error: --epochs must be an integer in 1..100000, got 0"),
        (["--epochs", "two"], "error: --epochs must be an integer in 1..100000, got two"),
        (["--seed", "-1"], "error: --seed must be an integer in 0..4294967295, got -1"),
        (
            ["--dataset", "cifar"],
            "error: --dataset must be one of digits, mnist1d, synthetic, npz, folder, hf, text, "
            "got cifar",
        ),
        (
            ["--shape", "1x2x3x4"],
            "error: --shape must be integers in 1..10000000 separated by commas or x (1 to 3), "
            "got 1x2x3x4",
        ),
    ],
)
def test_out_of_range_and_wrong_type_values_name_the_option_and_the_range(args, line, tmp_path):
    assert _refused(args, tmp_path) == line


def test_a_value_that_does_not_fit_other_options_is_a_usage_error_too(tmp_path):
    line = _refused(["--embed-epochs", "9"], tmp_path)
    assert line == "error: --embed-epochs must lie in 0..1 (0 to --epochs), got [9]"


def test_a_model_that_cannot_fit_in_memory_names_the_option(tmp_path, monkeypatch):
    monkeypatch.setattr(footprint, "machine_memory", lambda: 2**30)  # a machine of 1 GiB
    # 8 inputs -> 20000 -> 20000 -> 3 classes: 8*20000+20000 + 20000*20000+20000 + 20000*3+3
    # = 400,260,003 parameters, 4 bytes each for the weights, the gradients and sgd's momentum
    line = _refused(["--hidden", "20000,20000"], tmp_path)
    assert line == (
        "error: --hidden 20000,20000: the model's 400,260,003 parameters need at least 4.8 GB "
        "(weights, gradients and sgd's momentum, float32), more than this machine's 1.1 GB "
        "of memory"
    )


def test_inputs_that_cannot_fit_in_memory_name_the_option(tmp_path, monkeypatch):
    monkeypatch.setattr(footprint, "machine_memory", lambda: 2**30)
    # 120 examples + 3 x 20000 canaries + 500 references, 8 values each, float32, plus at
    # least 64 bytes of table and trace a row and 16 bytes a training id of an epoch
    args = ["--canaries", "20000", "--shape", "100x100"]
    line = _refused(args, tmp_path)
    rows = 120 + 3 * 20000 + 500
    assert rows * 100 * 100 * 4 > 2**30  # 2.4 GB of inputs alone
    assert line.startswith("error: --canaries 20000: the inputs (60,620 rows of 10,000 values)")
    assert line.endswith("more than this machine's 1.1 GB of memory")


def test_the_memory_estimate_counts_the_model_exactly():
    config = RunConfig(
        data=DataConfig(dataset="synthetic", n_examples=120, shape=(8,), n_classes=3),
        model=ModelConfig(hidden=(16, 4)),
        train=TrainConfig(optimizer="adam"),
    )
    parts = {part.option: part for part in footprint.parts(config)}
    # 8*16+16 + 16*4+4 + 4*3+3 = 227 parameters; adam keeps two moments
    assert parts["--hidden"].size == 227 * 4 * 4
    # 120 rows of 8 values, float32, + 64 a row; 96 training ids (test 0.2) x 16
    assert parts["--n-examples"].size == 120 * 8 * 4 + 120 * 64 + 96 * 16


def test_a_run_that_fits_still_trains(tmp_path, monkeypatch):
    monkeypatch.setattr(footprint, "machine_memory", lambda: 2**30)
    result = runner.invoke(app, ["train", *TINY, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output


def test_estimate_refuses_too_many_models_at_once_before_creating_its_run(tmp_path, monkeypatch):
    monkeypatch.setattr(footprint, "machine_memory", lambda: 2**30)
    out = tmp_path / "est"
    args = ["estimate", "--out", str(out), "--dataset", "synthetic", "--n-examples", "120"]
    args += ["--hidden", "2000,2000", "--models-per-batch", "100"]
    result = runner.invoke(app, args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    # 64*2000+2000 + 2000*2000+2000 + 2000*10+10 = 4,152,010 parameters, 100 models at once
    assert lines[0].startswith("error: --models-per-batch 100: the 100 models' 415,201,000 ")
    assert not out.exists()


def test_estimate_and_analyze_refuse_bad_numbers(tmp_path):
    est = ["estimate", "--out", str(tmp_path / "e"), "--subset", "nan"]
    result = runner.invoke(app, est)
    assert result.exit_code == 2
    assert result.output.strip() == "error: --subset must be a finite number in (0, 1), got nan"
    result = runner.invoke(app, ["analyze", str(tmp_path), "--umap-min-dist", "2"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: --umap-min-dist must be a finite number in [0, 1], got 2"
    )
    result = runner.invoke(app, ["dashboard", "--port", "70000"])
    assert result.output.strip() == "error: --port must be an integer in 1..65535, got 70000"
    assert not any(tmp_path.iterdir())


def test_the_library_refuses_nan_too():
    with pytest.raises(ValueError, match=r"train.lr must be a finite number > 0, got nan"):
        validate(RunConfig(train=TrainConfig(lr=math.nan)))
    with pytest.raises(ValueError, match=r"train.momentum must be a finite number in \[0, 1\)"):
        validate(RunConfig(train=TrainConfig(momentum=1.0)))
    with pytest.raises(ValueError, match=r"umap_min_dist must be a finite number in \[0, 1\]"):
        AnalysisConfig(umap_min_dist=math.inf)
    with pytest.raises(ValueError, match=r"flip_own_weight must be a finite number >= 0"):
        LocalizeConfig(flip_own_weight=math.nan)


def test_help_shows_the_ranges():
    help_text = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    shown = " ".join(help_text.replace("│", " ").split())
    assert "[1..1000000]" in shown and "[0 <= x < 1]" in shown


def test_a_model_that_fits_the_machine_but_not_its_gpu_names_the_gpu(monkeypatch):
    monkeypatch.setattr(footprint, "machine_memory", lambda: 10**12)
    monkeypatch.setattr(footprint, "device_memory", lambda device: 10**9)
    config = RunConfig(
        data=DataConfig(dataset="synthetic", n_examples=120, shape=(8,), n_classes=3),
        model=ModelConfig(hidden=(20000, 20000)),
        train=TrainConfig(device="cuda:0"),
    )
    assert footprint.unfit(config) == (
        "--hidden 20000,20000: the model's 400,260,003 parameters need at least 4.8 GB "
        "(weights, gradients and sgd's momentum, float32), more than the cuda:0 device's "
        "1.0 GB of memory"
    )
    assert footprint.unfit(replace(config, train=TrainConfig(device="cpu"))) is None
