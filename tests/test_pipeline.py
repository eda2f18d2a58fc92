import math
import shutil

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.measures.skewnorm import skewnorm_logcdf
from memdash.analysis.record.config import AnalysisConfig
from memdash.analysis.steps.exposure import compute_exposure
from memdash.analysis.steps.knn import compute_knn
from memdash.analysis.steps.pipeline import analyze
from memdash.analysis.steps.scores import compute_scores
from memdash.analysis.steps.umap import compute_umap
from memdash.analysis.store import Run, RunWriter, write_json


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    shutil.copytree(tiny_run, tmp_path / "r")
    return tmp_path / "r"


def test_scores_have_eval_and_train_columns(run_copy):
    run = Run.open(run_copy)
    scores = compute_scores(run)["scores.parquet"]
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


ALL = ("scores", "knn", "umap", "exposure")


def _states(state):
    # extraction is a text run's step: a classifier's analysis says so, every time
    return dict.fromkeys(ALL, state) | {"extraction": "not for classifiers"}


def test_analyze_caches_and_notices_staleness(run_copy):
    assert analyze(run_copy) == _states("computed")
    assert analyze(run_copy) == _states("up to date")
    assert analyze(run_copy, only=["scores"], force=True) == {"scores": "computed"}
    # a parameter in a step's key makes that step, and only it, stale
    assert analyze(run_copy, config=AnalysisConfig(knn_k=5)) == _states("up to date") | {
        "knn": "computed"
    }
    assert Run.open(run_copy).derived_manifest()["knn"]["params"]["knn_k"] == 5
    RunWriter.reopen(run_copy)  # status becomes running: the inputs changed
    assert analyze(run_copy, only=["scores"]) == {"scores": "computed"}
    assert Run.open(run_copy).read_derived("scores.parquet").shape[0] == 200


def test_analyze_recomputes_a_missing_result_and_rejects_unknown_steps(run_copy):
    analyze(run_copy, only=["scores", "knn"])
    (run_copy / "derived" / "neighbors.parquet").unlink()
    assert analyze(run_copy, only=["scores", "knn"]) == {"scores": "up to date", "knn": "computed"}
    with pytest.raises(ValueError, match=r"unknown step\(s\) \['umap9'\]; valid: scores"):
        analyze(run_copy, only=["umap9"])


def test_an_old_or_broken_manifest_entry_means_stale_and_stale_files_are_removed(run_copy):
    derived = run_copy / "derived"
    derived.mkdir()
    (derived / "umap").mkdir()
    (derived / "umap" / "gone.parquet").write_bytes(b"old")
    write_json(
        derived / "manifest.json", {"scores": "b9b2", "umap": {"files": ["umap/gone.parquet"]}}
    )
    assert analyze(run_copy, only=["scores", "umap"]) == {"scores": "computed", "umap": "computed"}
    assert sorted(p.name for p in (derived / "umap").iterdir()) == ["fc1.parquet", "out.parquet"]
    (derived / "manifest.json").write_text("{not json")
    assert analyze(run_copy, only=["scores"]) == {"scores": "computed"}


def test_knn_step_matches_sklearn_leave_one_out(run_copy):
    run = Run.open(run_copy)
    tables = compute_knn(run, AnalysisConfig(knn_k=7))
    ex = run.examples()
    train = (ex["split"] == "train").to_numpy()
    X = run.embedding(4, "out").astype(np.float32)
    nn = NearestNeighbors(n_neighbors=7, metric="manhattan", algorithm="brute").fit(X[train])
    train_ids = np.flatnonzero(train)
    labels = ex["label"].to_numpy()
    loo = train_ids[nn.kneighbors(return_distance=False)]  # sklearn leaves each point out
    held = train_ids[nn.kneighbors(X[~train], return_distance=False)]
    expect = np.empty(len(X), int)
    expect[train] = [np.bincount(labels[r], minlength=4).argmax() for r in loo]
    expect[~train] = [np.bincount(labels[r], minlength=4).argmax() for r in held]
    per = tables["knn_examples.parquet"]
    out = per[per["layer"] == "out"].sort_values("example_id")
    np.testing.assert_array_equal(out["knn_pred"], expect)
    assert (per["epoch"] == 4).all() and set(per["layer"]) == {"fc1", "out"}

    knn = tables["knn.parquet"]
    row = knn[
        (knn.epoch == 4) & (knn.layer == "out") & (knn.split == "train") & (knn.subset == "all")
    ]
    assert row["n"].item() == train.sum()
    assert row["knn_accuracy"].item() == pytest.approx(np.mean(expect[train] == labels[train]))
    trace = run.trace("eval", epochs=[4])
    assert row["dnn_accuracy"].item() == pytest.approx(trace["correct"][train].mean())
    assert set(knn["subset"]) == {"all", "clean", "flipped"} and set(knn["epoch"]) == {0, 4}

    nbrs = tables["neighbors.parquet"]
    assert len(nbrs) == len(X) * 7 and (nbrs["layer"] == "out").all()
    assert nbrs["neighbor_id"].isin(train_ids).all()
    assert (nbrs["neighbor_id"] != nbrs["example_id"]).all()
    first = nbrs[nbrs["example_id"] == train_ids[0]].sort_values("rank")
    np.testing.assert_array_equal(first["neighbor_id"], loo[0])
    assert first["distance"].is_monotonic_increasing


def test_umap_step_writes_one_aligned_table_per_layer(run_copy):
    tables = compute_umap(Run.open(run_copy), AnalysisConfig())
    assert sorted(tables) == ["umap/fc1.parquet", "umap/out.parquet"]
    for frame in tables.values():
        assert len(frame) == 2 * 200 and sorted(frame["epoch"].unique()) == [0, 4]
        assert np.isfinite(frame[["x", "y"]].to_numpy()).all()


def test_exposure_step_on_canaries(canary_run):
    run = Run.open(canary_run)
    table = compute_exposure(run)["exposure.parquet"]
    canaries = table[table["kind"] == "canary"]
    assert sorted(canaries["repeats"].unique()) == [1, 10, 50]
    assert len(canaries) == 6 * 5 and sorted(table["epoch"].unique()) == [0, 1, 2, 3, 4]
    assert (table["ceiling"] == np.log2(40)).all()
    refs = table[(table["kind"] == "reference") & (table["epoch"] == 0)]
    # 40 references ranked among the other 39: mean log2(39) - log2(40!)/40
    expect = math.log2(39) - math.lgamma(41) / math.log(2) / 40
    assert refs["exposure_interpolation"].mean() == pytest.approx(expect)
    # a canary's interpolation by hand at the last epoch
    last = table[table["epoch"] == 4]
    ref_loss = np.sort(last[last["kind"] == "reference"]["loss"].to_numpy())
    c = last[last["kind"] == "canary"].iloc[0]
    rank = 1 + np.searchsorted(ref_loss, c["loss"], side="right")
    assert c["exposure_interpolation"] == pytest.approx(np.log2(40) - np.log2(rank))
    # one fit per epoch and space; each row carries its epoch's loss-space floor flag, and
    # each extrapolation is -log2 CDF under that epoch's fit in its space
    tables = compute_exposure(run)
    fits = tables["exposure_fits.parquet"]
    assert sorted(fits["space"].unique()) == ["log_loss", "loss"]
    assert fits[fits["space"] == "loss"]["epoch"].tolist() == [0, 1, 2, 3, 4]
    assert (fits["n_references"] == 40).all()
    flags = table.groupby("epoch")["fit_floored"].agg(["min", "max"])
    assert (flags["min"] == flags["max"]).all()
    assert (flags["min"].to_numpy() == fits[fits["space"] == "loss"]["floored"].to_numpy()).all()
    by_space = fits[fits["epoch"] == 4].set_index("space")
    for space, column, x in (
        ("loss", "exposure_extrapolation", c["loss"]),
        ("log_loss", "exposure_extrapolation_log", np.log(max(c["loss"], 1.4e-45))),
    ):
        fit = by_space.loc[space]
        bits = -skewnorm_logcdf(np.array([x]), fit["shape"], fit["loc"], fit["scale"])
        assert c[column] == pytest.approx(bits[0] / np.log(2))


def test_exposure_of_a_run_without_canaries_is_an_empty_table(run_copy):
    tables = compute_exposure(Run.open(run_copy))
    table = tables["exposure.parquet"]
    assert table.empty and "exposure_interpolation" in table.columns
    assert tables["exposure_fits.parquet"].empty


def test_analyze_command(run_copy):
    runner = CliRunner()
    result = runner.invoke(app, ["analyze", str(run_copy), "--only", "scores,exposure"])
    assert result.exit_code == 0 and "scores: computed" in result.output
    assert "exposure: computed" in result.output
    result = runner.invoke(app, ["analyze", str(run_copy), "--only", "scores"])
    assert "scores: up to date" in result.output
    result = runner.invoke(app, ["analyze", str(run_copy), "--only", "knn", "--knn-k", "5"])
    assert result.exit_code == 0 and "knn: computed" in result.output
    assert Run.open(run_copy).derived_manifest()["knn"]["params"]["knn_k"] == 5
    result = runner.invoke(app, ["analyze", str(run_copy), "--knn-metric", "chebyshev"])
    assert result.exit_code == 2 and "--knn-metric must be one of l2, cosine, l1" in result.output
    result = runner.invoke(app, ["analyze", str(run_copy / "nowhere")])
    assert result.exit_code == 1 and "run.json" in result.output


def test_a_run_without_embeddings_gets_empty_tables(tmp_path):
    from dataclasses import replace

    from memdash.analysis.record.training import train
    from tests.conftest import tiny_config

    config = tiny_config()
    config = replace(config, record=replace(config.record, embed_layers=(), embed_epochs=()))
    train(config, tmp_path / "bare")
    assert analyze(tmp_path / "bare", only=["knn", "umap"]) == {
        "knn": "computed",
        "umap": "computed",
    }
    run = Run.open(tmp_path / "bare")
    assert run.read_derived("knn.parquet").empty
    assert run.read_derived("neighbors.parquet").empty
    assert list(run.read_derived("knn_examples.parquet").columns)[:3] == [
        "example_id",
        "epoch",
        "layer",
    ]
    assert run.derived_manifest()["umap"]["files"] == []
    assert analyze(tmp_path / "bare", only=["knn", "umap"]) == {
        "knn": "up to date",
        "umap": "up to date",
    }


def test_two_analyze_processes_on_one_run_compute_once(run_copy):
    """Started together on the same run: one takes the run's write lock and computes, the
    other waits (and says so), then finds every result fresh; the files are one run's."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "memdash.analysis.cli", "analyze", str(run_copy)]
    command += ["--only", "scores,knn,exposure"]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    computed = [o.count(": computed") for o in outputs]
    assert sorted(computed) == [0, 3], outputs  # one computed all three, the other none
    assert any(o.count("up to date") == 3 for o in outputs)
    manifest = Run.open(run_copy).derived_manifest()
    assert {"scores", "knn", "exposure"} <= set(manifest)


def test_a_run_directory_that_cannot_be_written_is_named_before_any_work(run_copy):
    """The write lock cannot be taken (here its file is a directory, as a read-only disk or a
    missing permission would refuse it): a clear error names the run, nothing is written."""
    from memdash.analysis.store import RunNotWritable

    (run_copy / ".memdash.lock").mkdir()
    before = (
        sorted(p.name for p in (run_copy / "derived").glob("*"))
        if (run_copy / "derived").is_dir()
        else []
    )
    with pytest.raises(RunNotWritable, match="cannot write to the run directory"):
        analyze(run_copy, only=["scores"], force=True)
    after = (
        sorted(p.name for p in (run_copy / "derived").glob("*"))
        if (run_copy / "derived").is_dir()
        else []
    )
    assert after == before


def test_parameters_added_later_enter_the_key_only_off_their_defaults():
    """A run analysed before the k-NN search and the UMAP sample were options stays up to
    date at their defaults (its exact results are what they give at its size); another value
    is in the key and the params."""
    from dataclasses import replace

    from memdash.analysis.record.config import AnalysisConfig
    from memdash.analysis.steps.pipeline import step_params

    default = AnalysisConfig()
    assert "knn_method" not in step_params("knn", default)
    assert "umap_sample" not in step_params("umap", default)
    assert step_params("knn", default)["knn_k"] == 30
    assert step_params("knn", replace(default, knn_method="ivf"))["knn_method"] == "ivf"
    assert step_params("umap", replace(default, umap_sample=0))["umap_sample"] == 0
