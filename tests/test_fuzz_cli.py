"""Every command's options, fuzzed with hypothesis: each call ends in success or in one clear
message and a non-zero exit, never in a traceback."""

import inspect
import math
import shutil

import pytest
import tally
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from memdash.analysis.cli import app, specs
from memdash.analysis.cli.options import ImageSize, Seeds
from memdash.analysis.cli.specs import Checked, Device, Names, Number, Numbers, OneOf, Spec

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


def _clean(result, written=None) -> None:
    """One clear outcome: success, or a message with a non-zero exit; never a traceback. A
    refusal of the options (exit code 2) is one line and leaves nothing at `written`."""
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    if result.exit_code != 0:
        assert result.output.strip(), "a failure must say why"
        if "diverged" not in result.output:  # only a failure in training comes after the bar
            assert "━" not in result.output, "a progress bar drawn before an argument error"
    if result.exit_code == 2:
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.output
        assert written is None or not written.exists(), f"{written} left behind"


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
    "--store-inputs": st.sampled_from(["auto", "full", "thumbnail", "path", "jpeg"]),
}


@fuzz(40)
@given(picked=st.fixed_dictionaries({}, optional=TRAIN_OPTIONS))
def test_train_options(picked, tmp_path):
    out = tmp_path / "run"
    shutil.rmtree(out, ignore_errors=True)
    args = ["train", "--dataset", "synthetic", "--n-examples", "40", "--epochs", "1"]
    _clean(_invoke([*args, "--out", str(out)], picked), written=out)


ANALYZE_OPTIONS = {
    "--knn-k": NUMBER,
    "--knn-metric": st.sampled_from(["l1", "l2", "cosine", "hamming", ""]),
    "--knn-pca": NUMBER,
    "--knn": st.sampled_from(["exact", "ivf", "auto", "ivx", ""]),
    "--knn-lists": NUMBER,
    "--knn-probes": NUMBER,
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
    _clean(runner.invoke(app, args), written=out)


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


# ------------------------------------------------------------ every option, bad values
# Every option of every command has a declared type and range (analysis/cli/options.py): a
# value outside it is one line naming the option and what it accepts, exit code 2, and
# nothing on disk (issue 23, items 4-7).
COMMANDS = typer.main.get_command(app).commands
# a run that trains in a moment, should a bad value pass (the option fuzzed comes last and wins)
FAST = ["--dataset", "synthetic", "--n-examples", "40", "--n-classes", "2", "--epochs", "1"]
# what each command needs to get as far as its options: a run, a folder to write into
NEEDS = {
    "train": lambda run, out: ["--out", str(out), *FAST],
    "info": lambda run, out: [str(run)],
    "analyze": lambda run, out: [str(run)],
    "localize": lambda run, out: [str(run)],
    "estimate": lambda run, out: ["--out", str(out)],
    "ssft": lambda run, out: [str(run)],
    "proxies": lambda run, out: [str(run)],
    "similarity": lambda run, out: [str(run), "--out", str(out)],
    "findings": lambda run, out: [str(run)],
    "sql": lambda run, out: ["SELECT 1", str(run)],
    "dashboard": lambda run, out: [str(run)],
}


def _declared():
    """(command, option, spec or annotation) of every parameter of every command."""
    for info in app.registered_commands:
        name = info.name or info.callback.__name__.replace("_", "-")
        opts = {p.name: p.opts[0] for p in COMMANDS[name].params}
        for param in inspect.signature(info.callback).parameters.values():
            yield name, opts[param.name], getattr(param.default, "parser", None), param.annotation


def test_every_option_of_every_command_has_a_declared_type_and_range():
    seen = set()
    for command, option, spec, annotation in _declared():
        seen.add(command)
        assert COMMANDS[command].__class__ is Checked, command
        if spec is None:  # only flags and paths are typer's own types
            assert annotation in ("bool", "Path", "list[Path]"), (command, option, annotation)
        else:
            assert isinstance(spec, Spec), (command, option)
    assert seen == set(NEEDS)


def _fixed_bad(spec) -> list[str]:
    """Values `spec` must refuse: out of range on both sides, huge, NaN and infinities, words,
    blanks, too many numbers; [] for a spec that takes any text."""
    if isinstance(spec, Number):
        r = spec.range
        bad = ["nan", "inf", "-inf", "x", "", "1e400"]
        bad += [str(r.low - 1)] if r.low is not None else []
        bad += [str(r.high + 1), str(10**20), "10" * 15] if r.high is not None else []
        bad += [str(r.low)] if r.open_low else []
        bad += [str(r.high)] if r.open_high else []
        bad += ["1.5", "1e3", "-" + "9" * 25] if r.integer else []
        return bad
    if isinstance(spec, Numbers):
        r, (fewest, most) = spec.range, spec.range.items
        bad = ["x", "1,y", "nan", "1;2", "inf"]
        bad += [str(r.low - 1), f"{r.low},{r.low - 1}"] if r.low is not None else []
        bad += [str(r.high + 1), str(10**20)] if r.high is not None else []
        bad += [",".join([str(r.low if r.low is not None else 1)] * (most + 1))] if most else []
        bad += [""] if fewest and not isinstance(spec, ImageSize) else []
        bad += ["1.5"] if r.integer else ["0", "1"]
        return bad
    if isinstance(spec, OneOf):
        return ["bogus", "", " ".join(specs._listed(spec.choices)).upper()]
    if isinstance(spec, Names) and spec.choices is not None:
        return ["bogus", f"{specs._listed(spec.choices)[0]},bogus", "ü"]
    if isinstance(spec, Seeds):
        return ["3-1", "x", "-1", "0-99999", "4294967296", "1-", ",,x", "0-4294967296"]
    if isinstance(spec, Device):
        return ["bogus", "gpu", "cuda:99", "cpu:x", "", "cuda:-1"]
    return []  # any text: a column, an address, layer names (checked once the model is built)


def _outside(r):
    """A hypothesis strategy of numbers outside the range `r`, as text."""
    parts = []
    if r.integer:
        parts += [st.integers(max_value=r.low - 1)] if r.low is not None else []
        parts += [st.integers(min_value=r.high + 1)] if r.high is not None else []
    else:
        parts += [st.sampled_from([math.nan, math.inf, -math.inf])]
        parts += [st.floats(max_value=r.low)] if r.low is not None else []
        parts += [st.floats(min_value=r.high)] if r.high is not None else []
    return st.one_of(parts).filter(lambda v: not r.admits(v)).map(repr)


def _generated_bad(spec):
    """A hypothesis strategy of values `spec` refuses (None: a spec without a number range):
    one number outside, or a list of numbers of which one is outside."""
    if isinstance(spec, Number):
        return _outside(spec.range)
    if isinstance(spec, Numbers):
        r = spec.range
        inside = st.just(repr(r.low if r.low is not None else 1))
        ok = st.lists(inside, max_size=2)
        return st.tuples(ok, _outside(r)).map(lambda parts: ",".join([*parts[0], parts[1]]))
    return None


BAD_OPTIONS = [
    pytest.param(command, option, spec, id=f"{command} {option}")
    for command, option, spec, _ in _declared()
    if spec is not None and _fixed_bad(spec)
]


def _refused_cleanly(command, option, spec, value, run, folder):
    """`memdash COMMAND ... OPTION VALUE` is refused: exit code 2, one line naming the option
    and its range, and nothing written (the folder and the run unchanged)."""
    tally.case("command options (hypothesis)")
    before = sorted((p, p.stat().st_size) for p in run.rglob("*"))
    out = folder / "out"
    args = [command, *NEEDS[command](run, out), option, value]
    result = runner.invoke(app, args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, (args, result.output)
    assert len(lines) == 1 and lines[0].startswith(f"error: {option} must be "), (args, lines)
    if isinstance(spec, Number):
        assert spec.range.number() in lines[0], lines
    if isinstance(spec, Numbers):
        assert spec.expected() in lines[0], lines
    assert not out.exists() and not any(folder.iterdir()), args
    assert sorted((p, p.stat().st_size) for p in run.rglob("*")) == before, args


@pytest.mark.parametrize(("command", "option", "spec"), BAD_OPTIONS)
def test_every_option_refuses_its_bad_values(command, option, spec, analyzable, tmp_path):
    for value in _fixed_bad(spec):
        _refused_cleanly(command, option, spec, value, analyzable, tmp_path)


@pytest.mark.parametrize(
    ("command", "option", "spec"),
    [case for case in BAD_OPTIONS if _generated_bad(case.values[2]) is not None],
)
def test_every_number_option_refuses_numbers_out_of_its_range(
    command, option, spec, analyzable, tmp_path
):
    @fuzz(10)
    @given(value=_generated_bad(spec))
    def check(value):
        _refused_cleanly(command, option, spec, value, analyzable, tmp_path)

    check()
