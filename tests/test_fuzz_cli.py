"""Every command's options, fuzzed with hypothesis: each call ends in success or in one clear
message and a non-zero exit, never in a traceback."""

import shutil

import pytest
import tally
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from memdash.analysis.cli import app

runner = CliRunner()
# values a person might type, right and wrong: numbers of every sign and size, words, lists
TEXT = st.sampled_from(["", "0", "-1", "1e9", "nan", "x", "a,b", "1,,2", "fc1", "../..", "ü"])
NUMBER = st.one_of(
    st.integers(-5, 5).map(str), st.sampled_from(["0.5", "-0.1", "1e30", "inf", "nan", "two"])
)


def fuzz(examples: int):
    """hypothesis settings for a command: `examples` cases, no deadline (commands train)."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


def _invoke(args: list[str], picked: dict[str, str]):
    """Run the command `args` plus the options hypothesis picked."""
    tally.case("command options (hypothesis)")
    return runner.invoke(app, [*args, *(part for item in picked.items() for part in item)])


def _clean(result) -> None:
    """One clear outcome: success, or a message with a non-zero exit; never a traceback."""
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    if result.exit_code != 0:
        assert result.output.strip(), "a failure must say why"
        if "diverged" not in result.output:  # only a failure in training comes after the bar
            assert "━" not in result.output, "a progress bar drawn before an argument error"


TRAIN_OPTIONS = {
    "--dataset": st.sampled_from(["synthetic", "digits", "cifar", "npz", ""]),
    "--noise": NUMBER,
    "--epochs": NUMBER,
    "--batch-size": NUMBER,
    "--lr": NUMBER,
    "--hidden": TEXT,
    "--model": st.sampled_from(["mlp", "cnn", "resnet9", ""]),
    "--n-examples": st.sampled_from(["40", "0", "-3", "many"]),
    "--canaries": NUMBER,
    "--embed-epochs": TEXT,
    "--embed-layers": TEXT,
    "--corruption": st.sampled_from(["symmetric", "random_labels", "random_inputs", "none"]),
    "--seeds": st.sampled_from(["0-1", "3-1", "0,,2", "x", "-1", "0-99999", "1"]),
    "--data-seed": NUMBER,
}


@fuzz(40)
@given(picked=st.fixed_dictionaries({}, optional=TRAIN_OPTIONS))
def test_train_options(picked, tmp_path):
    out = tmp_path / "run"
    shutil.rmtree(out, ignore_errors=True)
    args = ["train", "--dataset", "synthetic", "--n-examples", "40", "--epochs", "1"]
    _clean(_invoke([*args, "--out", str(out)], picked))


ANALYZE_OPTIONS = {
    "--knn-k": NUMBER,
    "--knn-metric": st.sampled_from(["l1", "l2", "cosine", "hamming", ""]),
    "--knn-pca": NUMBER,
    "--umap-neighbors": NUMBER,
    "--umap-min-dist": NUMBER,
    "--only": st.sampled_from(["scores", "knn", "nothing", "", "scores,,knn"]),
}


@pytest.fixture(scope="module")
def analyzable(tiny_run, tmp_path_factory):
    run = tmp_path_factory.mktemp("fuzz") / "run"
    shutil.copytree(tiny_run, run)
    return run


@fuzz(30)
@given(picked=st.fixed_dictionaries({}, optional=ANALYZE_OPTIONS))
def test_analyze_options(picked, analyzable):
    _clean(_invoke(["analyze", str(analyzable), "--only", "scores,knn"], picked))


LOCALIZE_OPTIONS = {
    "--retrain-epochs": NUMBER,
    "--flip-examples": NUMBER,
    "--flip-max-units": NUMBER,
    "--flip-others": NUMBER,
    "--flip-own-weight": NUMBER,
    "--only": st.sampled_from(["rewinding", "flipping", "nothing", ""]),
}


@fuzz(20)
@given(picked=st.fixed_dictionaries({}, optional=LOCALIZE_OPTIONS))
def test_localize_options(picked, analyzable):
    args = ["localize", str(analyzable), "--only", "rewinding", "--flip-examples", "2"]
    _clean(_invoke(args, picked))


@fuzz(20)
@given(
    models=NUMBER,
    per_batch=NUMBER,
    subset=NUMBER,
    backend=st.sampled_from(["local", "ray", "slurm", ""]),
)
def test_estimate_options(models, per_batch, subset, backend, tmp_path):
    out = tmp_path / "est"
    shutil.rmtree(out, ignore_errors=True)
    args = ["estimate", "--out", str(out), "--dataset", "synthetic", "--n-examples", "40"]
    args += ["--epochs", "1", "--models", models, "--models-per-batch", per_batch]
    args += ["--subset", subset, "--backend", backend, "--workers", "1"]
    _clean(runner.invoke(app, args))


@fuzz(15)
@given(source=TEXT, as_json=st.booleans())
def test_findings_options(source, as_json):
    args = ["findings", "--source", source] + (["--json"] if as_json else [])
    _clean(runner.invoke(app, args))


@fuzz(20)
@given(epochs=TEXT, measures=st.sampled_from(["cka", "svcca", "cka,svcca", "", "mi", "cka,,"]))
def test_similarity_options(epochs, measures, analyzable, tmp_path):
    args = ["similarity", str(analyzable), str(analyzable), "--out", str(tmp_path / "s")]
    _clean(_invoke([*args, "--epochs", epochs, "--measures", measures], {}))
