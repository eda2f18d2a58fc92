"""`memdash estimate` on a text run: language models on random halves of the sequences, their
per-sequence statistics in resumable batch files, counterfactual memorization and the attacks
on log-likelihoods, and the bad inputs refused in one line with nothing written."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.ensemble.text_estimate import check_text, load_text_batches
from memdash.analysis.store import Run

runner = CliRunner()
TINY = [
    *("--dataset", "text", "--model", "gpt", "--width", "16", "--layers", "1"),
    *("--heads", "2", "--epochs", "2", "--n-examples", "40", "--seq-len", "24"),
    *("--prefix-len", "8", "--suffix-len", "4", "--batch-size", "16"),
    *("--canaries", "1", "--canary-repeats", "1,8", "--reference-canaries", "4"),
    *("--canary-format", "pin {d}{d}{d}"),
    *("--duplicate-sequences", "2", "--duplicate-counts", "1,4"),
]
ESTIMATE = ["--models", "4", "--models-per-batch", "2", "--workers", "1"]


@pytest.fixture(scope="module")
def text_estimate(tmp_path_factory):
    out = tmp_path_factory.mktemp("text_estimate") / "run"
    result = runner.invoke(app, ["train", *TINY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["estimate", "--like", str(out), *ESTIMATE])
    assert result.exit_code == 0, result.output
    assert "4 language models" in result.output
    return Run.open(out)


def test_each_batch_stores_its_subsets_and_per_sequence_statistics(text_estimate):
    run = text_estimate
    examples = run.examples()
    n, n_train = len(examples), int((examples["split"] == "train").sum())
    spec = json.loads((run.path / "heldout" / "spec.json").read_text())
    assert spec["ratios"] == [0.5] and spec["models"] == 4  # Zhang et al.'s halves
    for b in (0, 1):
        subsets = run.heldout_array(f"r0_b{b:04d}.subsets.npy")
        held = np.unpackbits(subsets, axis=1)[:, :n_train]
        assert held.shape == (2, n_train) and (held.sum(1) == round(0.5 * n_train)).all()
        for name in ("accuracy", "loglik"):
            part = run.heldout_array(f"r0_b{b:04d}.{name}.npy")
            assert part.dtype == np.float32 and part.shape == (2, n)
    trained, accuracy, loglik = load_text_batches(run, [(0, 0, 0, 2), (0, 1, 2, 4)])
    assert ((accuracy >= 0) & (accuracy <= 1)).all() and (loglik < 0).all()
    # only training sequences are ever trained on; a duplicated one with all its copies
    assert not trained[:, (examples["split"] != "train").to_numpy()].any()
    assert trained.sum(0).max() <= 4


def test_the_derived_counterfactual_table(text_estimate):
    run = text_estimate
    cf = pd.read_parquet(run.path / "derived" / "counterfactual.parquet")
    contract = ["example_id", "cf_mem_accuracy", "cf_mem_loglik", "n_in", "n_out"]
    contract += ["in_accuracy", "out_accuracy", "in_loglik", "out_loglik"]
    assert set(contract) <= set(cf.columns) and len(cf) == len(run.examples())
    split = run.examples(["split"])["split"].to_numpy()
    assert (cf["n_in"] + cf["n_out"] == 4).all()
    assert cf.loc[split != "train", "cf_mem_accuracy"].isna().all()  # never trained on
    both = (cf["n_in"] > 0) & (cf["n_out"] > 0)
    np.testing.assert_allclose(
        cf.loc[both, "cf_mem_loglik"], cf.loc[both, "in_loglik"] - cf.loc[both, "out_loglik"]
    )
    manifest = json.loads((run.path / "derived" / "manifest.json").read_text())
    entry = manifest["heldout"]
    assert "counterfactual.parquet" in entry["files"] and "membership.parquet" in entry["files"]
    assert entry["params"]["models"] == 4 and "online" in entry["membership"]
    # A1's attacks on the log-likelihoods: RMIA, the Gaussian check, the budget
    assert {"rmia", "rmia_offline", "gaussian", "budget"} <= set(entry["membership"])
    assert "membership_budget.parquet" in entry["files"]
    members = pd.read_parquet(run.path / "derived" / "membership.parquet")
    assert len(members) == len(cf) and {"vulnerability", "shapiro_in_p"} <= set(members)


def test_a_killed_estimate_resumes_with_the_missing_batch_only(text_estimate):
    run = text_estimate
    folder = run.path / "heldout"
    before = pd.read_parquet(run.path / "derived" / "counterfactual.parquet")
    kept = folder / "r0_b0000.loglik.npy"
    stamp = kept.stat().st_mtime_ns
    (folder / "r0_b0001.loglik.npy").unlink()  # the batch's last file: it is incomplete
    result = runner.invoke(app, ["estimate", "--like", str(run.path), *ESTIMATE])
    assert result.exit_code == 0, result.output
    assert kept.stat().st_mtime_ns == stamp  # the complete batch was not trained again
    after = pd.read_parquet(run.path / "derived" / "counterfactual.parquet")
    pd.testing.assert_frame_equal(before, after)  # the same seeds give the same models


def test_a_run_without_text_is_refused(tiny_run):
    with pytest.raises(ValueError, match="is not a text run"):
        check_text(Run.open(tiny_run))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "{dir}/new", "--dataset", "text"], "--out with --dataset text"),
        (["--like", "{run}", "--models", "1"], "--models"),
        (["--like", "{run}", "--ratios", "0.3,0.6"], "a text estimate takes one --subset"),
        (["--like", "{run}", "--dp-noise", "1.0"], "not text estimates"),
    ],
)
def test_bad_text_estimates_get_one_line_and_write_nothing(text_estimate, tmp_path, args, message):
    before = sorted(p.name for p in (text_estimate.path / "heldout").iterdir())
    args = [a.format(dir=tmp_path, run=text_estimate.path) for a in args]
    result = runner.invoke(app, ["estimate", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in (text_estimate.path / "heldout").iterdir()) == before


def test_the_example_table_of_a_text_run_carries_the_counterfactual_scores(text_estimate):
    from memdash.analysis.tables.examples import example_table

    table = example_table(text_estimate).set_index("example_id")
    cf = pd.read_parquet(text_estimate.path / "derived" / "counterfactual.parquet")
    cf = cf.set_index("example_id")
    for column in ("cf_mem_accuracy", "cf_mem_loglik", "n_in", "vulnerability"):
        assert column in table
    np.testing.assert_allclose(table["cf_mem_accuracy"], cf["cf_mem_accuracy"])
    assert "mem_score" not in table  # no classifier estimate on a text run


def test_the_counterfactual_finding_by_hand():
    from memdash.analysis.findings.text import counterfactual_by_copies

    table = pd.DataFrame(
        {
            "group": ["plain", "plain", "plain", "duplicate", "duplicate", "canary", "canary"],
            "copies": [1, 1, 1, 4, 4, 8, 1],
            "cf_mem_accuracy": [0.0, 0.1, 0.2, 0.3, 0.5, 0.9, 0.4],
            "cf_mem_loglik": [1.0, 2.0, 3.0, 4.0, 5.0, 9.0, 6.0],
        }
    )
    m = counterfactual_by_copies(table)
    assert m["median_plain"] == pytest.approx(0.1) and m["median_dup_4"] == pytest.approx(0.4)
    assert m["median_canary_1"] == 0.4 and m["median_canary_8"] == 0.9
    assert m["median_canary"] == pytest.approx(0.65)
    # copies 1,1,1,4,4 against 0, .1, .2, .3, .5: ranks 2,2,2,4.5,4.5 and 1..5 -> rho = 0.866
    assert m["spearman"] == pytest.approx(np.sqrt(3) / 2) and m["spearman_loglik"] > 0
    assert m["copies"] == [4] and m["insertions"] == [1, 8]


def test_the_counterfactual_finding_on_a_text_estimate(text_estimate):
    from memdash.analysis.findings.registry import FAILS, HOLDS
    from memdash.analysis.findings.text import counterfactual_of_text

    found = counterfactual_of_text({"text": text_estimate})
    assert found.verdict in (HOLDS, FAILS) and "Spearman of copies" in found.statistic
    assert found.values["sequences"] > 0
