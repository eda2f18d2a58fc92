"""The proxies' scoreboard of a run (steps/proxies.py) and `memdash proxies`."""

import json
import shutil

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.ensemble.estimate import EstimateSpec, estimate
from memdash.analysis.steps.pipeline import analyze
from memdash.analysis.steps.proxies import scoreboard_of
from memdash.analysis.store import Run
from memdash.analysis.tables.proxies import compute_proxies, proxy_values

runner = CliRunner()


@pytest.fixture(scope="module")
def analysed(tiny_run, tmp_path_factory):
    """The tiny run analysed (trace scores, k-NN) with a 6-model estimate."""
    path = tmp_path_factory.mktemp("proxies") / "r"
    shutil.copytree(tiny_run, path)
    analyze(path, only=["scores", "knn"])
    estimate(path, EstimateSpec(models=6, models_per_batch=3, seed=3), workers=1)
    return path


def test_values_are_the_trained_examples_scores_and_knn_disagreement(analysed):
    run = Run.open(analysed)
    table, costs = proxy_values(run)
    examples = run.examples()
    assert table["example_id"].tolist() == examples.index[examples["split"] == "train"].tolist()
    scores = run.read_derived("scores.parquet").set_index("example_id")
    ids = table["example_id"]
    assert np.allclose(table["confidence"], scores.loc[ids, "confidence"])
    knn = run.read_derived("knn_examples.parquet")
    last = knn[(knn["layer"] == "fc1") & (knn["epoch"] == knn["epoch"].max())]
    disagrees = 1.0 - last.set_index("example_id").loc[ids, "agrees"].astype(float)
    assert np.array_equal(table["knn_disagreement@fc1"], disagrees)
    # never learned: after the last epoch
    never = scores.loc[ids, "learned_epoch"].isna().to_numpy()
    assert (table.loc[never, "learned_epoch"] == scores["n_epochs"].max() + 1).all()
    manifest = run.derived_manifest()
    assert costs["confidence_train"] == manifest["scores"]["seconds"] > 0
    assert costs["knn_disagreement@out"] == manifest["knn"]["seconds"]


def test_scoreboard_equals_scipy_and_sklearn_on_the_run(analysed):
    run = Run.open(analysed)
    table, _ = proxy_values(run)
    board = compute_proxies(run, n_boot=100).set_index("proxy")
    has = table["mem_score"].notna()
    mem = table.loc[has, "mem_score"]
    rho = spearmanr(-table.loc[has, "confidence"], mem).statistic  # flagged low: negated
    assert board.loc["confidence", "spearman"] == pytest.approx(rho, abs=1e-12)
    assert board.loc["confidence", "n"] == has.sum()
    lo, hi = board.loc["confidence", ["spearman_lo", "spearman_hi"]]
    assert lo <= rho <= hi
    flipped, canary = table["is_noisy"] & ~table["is_canary"], table["is_canary"]
    clean = ~flipped & ~canary
    pick = flipped | clean
    expected = roc_auc_score(flipped[pick], table.loc[pick, "aum"] * -1)
    assert board.loc["aum", "auroc_flipped"] == pytest.approx(expected)
    assert np.isnan(board.loc["aum", "auroc_canary"])  # the tiny run has no canaries
    train = run.meta["timing"]["train"]  # the training loop's seconds (run.json)
    assert board.loc["aum", "cost_runs"] == pytest.approx(board.loc["aum", "seconds"] / train)
    eval_pass = run.meta["timing"]["eval_pass"]
    scores = run.derived_manifest()["scores"]["seconds"]
    assert board.loc["aum", "seconds"] == pytest.approx(scores + eval_pass)  # the eval trace's
    assert board.loc["aum_train", "seconds"] == pytest.approx(scores)  # minibatches: free


def test_stored_then_read_while_up_to_date(analysed):
    run = Run.open(analysed)
    first, computed = scoreboard_of(run, n_boot=50)
    assert computed and (analysed / "derived" / "proxies.parquet").is_file()
    again, computed = scoreboard_of(Run.open(analysed), n_boot=50)
    assert not computed and again.equals(first)
    _, computed = scoreboard_of(Run.open(analysed), n_boot=60)  # other parameters: stale
    assert computed


def test_without_an_estimate_ranks_by_the_flips(tiny_run, tmp_path):
    path = tmp_path / "r"
    shutil.copytree(tiny_run, path)
    run = Run.open(path)
    with pytest.raises(ValueError, match="no trace scores: run `memdash analyze"):
        compute_proxies(run)
    analyze(path, only=["scores"])
    board = compute_proxies(Run.open(path), n_boot=50)
    assert board["spearman"].isna().all()
    assert board["auroc_flipped"].is_monotonic_decreasing
    result = runner.invoke(app, ["proxies", str(path), "--bootstrap", "50"])
    assert result.exit_code == 0, result.output
    assert "no estimate" in result.output and "ranked by flips" in result.output


def test_command_prints_the_table_and_json(analysed):
    result = runner.invoke(app, ["proxies", str(analysed), "--bootstrap", "50", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["proxies"]
    assert {r["proxy"] for r in rows} >= {"confidence", "aum", "knn_disagreement@fc1"}
    result = runner.invoke(app, ["proxies", str(analysed), "--bootstrap", "50"])
    assert result.exit_code == 0 and "up to date" in result.output
    assert "Spearman" in result.output and "knn_disagreement@fc1" in result.output
    refused = runner.invoke(app, ["proxies", str(analysed), "--share", "2"])
    assert refused.exit_code == 2 and "--share" in refused.output
