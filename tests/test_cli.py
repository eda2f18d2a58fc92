import numpy as np
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.store import Run

runner = CliRunner()
TINY = [
    "--dataset",
    "synthetic",
    "--n-examples",
    "120",
    "--shape",
    "8",
    "--n-classes",
    "3",
    "--epochs",
    "3",
    "--hidden",
    "16",
    "--batch-size",
    "16",
]


def test_train_then_info_end_to_end(tmp_path):
    out = tmp_path / "cli_run"
    result = runner.invoke(
        app,
        [
            "train",
            *TINY,
            "--noise",
            "0.25",
            "--embed-layers",
            "fc1",
            "--embed-epochs",
            "3",
            "--checkpoint-epochs",
            "0,3",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    run = Run.open(out)
    assert run.status == "complete" and run.epochs_completed == 3
    assert run.config["data"]["noise"] == 0.25
    assert run.config["command"].startswith("memdash ")
    assert run.examples()["is_noisy"].sum() == round(0.25 * 96)
    assert run.embedding(3, "fc1").shape == (120, 16)
    assert run.layer_grads()["epoch"].max() == 3  # on by default with label noise
    result = runner.invoke(app, ["info", str(out)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "complete (3 of 3 epochs)" in result.output


def test_canaries_and_npz_from_the_command_line(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "own.npz", X=rng.standard_normal((60, 1, 16)), y=np.arange(60) % 3)
    out = tmp_path / "npz_run"
    result = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "npz",
            "--data-path",
            str(tmp_path / "own.npz"),
            "--model",
            "cnn",
            "--channels",
            "4,4",
            "--hidden",
            "8",
            "--epochs",
            "2",
            "--canaries",
            "2",
            "--canary-repeats",
            "1,5",
            "--reference-canaries",
            "10",
            "--no-record-train",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    run = Run.open(out)
    ex = run.examples()
    assert (ex["split"] == "reference").sum() == 10 and ex["is_canary"].sum() == 14
    assert run.trace_sources() == ["eval"]
    assert run.layer_grads().empty  # no label noise: no gradient accounting by default


def test_bad_options_give_clear_errors(tmp_path):
    result = runner.invoke(app, ["train", "--dataset", "cifar", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "--dataset must be one of digits, mnist1d" in result.output
    result = runner.invoke(
        app, ["train", *TINY, "--embed-epochs", "9", "--out", str(tmp_path / "y")]
    )
    assert result.exit_code == 2 and "--embed-epochs must lie in 0..3" in result.output
    result = runner.invoke(
        app,
        [
            "train",
            *TINY,
            "--embed-layers",
            "conv7",
            "--embed-epochs",
            "1",
            "--out",
            str(tmp_path / "z"),
        ],
    )
    assert result.exit_code == 2 and "unknown embedding layers ['conv7']" in result.output
    result = runner.invoke(app, ["train", *TINY, "--hidden", "a,b", "--out", str(tmp_path / "w")])
    assert result.exit_code != 0 and "integers" in result.output


def test_existing_run_is_not_overwritten_without_asking(tmp_path):
    out = tmp_path / "twice"
    assert runner.invoke(app, ["train", *TINY, "--out", str(out)]).exit_code == 0
    result = runner.invoke(app, ["train", *TINY, "--out", str(out)])
    assert result.exit_code == 1 and "already exists" in result.output
    assert runner.invoke(app, ["train", *TINY, "--overwrite", "--out", str(out)]).exit_code == 0


def test_info_reports_a_broken_run(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text('{"schema_version": 2}')
    result = runner.invoke(app, ["info", str(tmp_path / "broken")])
    assert result.exit_code == 1
    assert "run.json" in result.output and "missing key 'name'" in result.output


def test_dashboard_rejects_missing_roots(tmp_path):
    result = runner.invoke(app, ["dashboard", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "no such run root" in result.output
