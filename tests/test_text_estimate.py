"""`memdash estimate` on a text run: language models on random halves of the sequences, their
per-sequence statistics in resumable batch files, counterfactual memorization and the attacks
on log-likelihoods, and the bad inputs refused in one line with nothing written."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.ensemble import text_estimate as te
from memdash.analysis.ensemble.batched import model_seed, subset_mask
from memdash.analysis.ensemble.text_estimate import check_text, copy_counts, load_text_batches
from memdash.analysis.record.config import RunConfig
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
    # only training sequences are ever trained on
    assert not trained[:, (examples["split"] != "train").to_numpy()].any()
    assert trained.sum(0).max() <= 4


def test_each_copy_is_drawn_on_its_own_from_the_model_seed_alone(text_estimate):
    run = text_estimate
    examples = run.examples(["split", "duplicates"])
    dup = examples.loc[examples["split"] == "train", "duplicates"].to_numpy()
    spec = json.loads((run.path / "heldout" / "spec.json").read_text())
    for b in (0, 1):
        stored = run.heldout_array(f"r0_b{b:04d}.copies.npy")
        first = np.unpackbits(run.heldout_array(f"r0_b{b:04d}.subsets.npy"), axis=1)
        first = first[:, : len(dup)].astype(bool)
        assert stored.dtype == np.uint16 and stored.shape == (2, len(dup))
        for j in range(2):
            seed = model_seed(spec["seed"], 0, 2 * b + j)  # its seed, not its batch
            assert (first[j] == subset_mask(seed, len(dup), 0.5)).all()  # as before
            np.testing.assert_array_equal(stored[j], copy_counts(seed, dup, first[j], ratio=0.5))
        # a copy beyond the first is in or out whatever the first does; one copy: the first
        assert (stored >= first).all() and (stored <= dup).all()
        assert (stored[:, dup == 1] == first[:, dup == 1]).all()


def test_copy_counts_by_hand():
    copies = np.array([1, 1, 3, 40, 40])
    first = np.array([True, False, False, True, False])
    a = copy_counts(7, copies, first, ratio=0.5)
    assert a.dtype == np.uint16 and (a == copy_counts(7, copies, first, ratio=0.5)).all()
    assert a[:2].tolist() == [1, 0]  # one copy: exactly its first copy's draw
    assert 0 <= a[2] <= 2 and 1 <= a[3] <= 40 and 0 <= a[4] <= 39
    rest = np.random.default_rng([7, 1]).binomial(copies - 1, 0.5)  # the other copies
    np.testing.assert_array_equal(a, first + rest)
    every = copy_counts(7, copies, first, ratio=1.0)  # every other copy in
    assert every.tolist() == [1, 0, 2, 40, 39]
    assert not (copy_counts(8, copies, first, ratio=0.5) == a).all()


@pytest.mark.parametrize(
    ("copies", "first", "ratio", "message"),
    [
        ([1, 2], [True], 0.5, "differ in shape"),
        ([0, 2], [True, False], 0.5, r"must lie in \[1, 65535\], got 0 .. 2"),
        ([1, 2], [True, False], 0.0, r"ratio must lie in \(0, 1\], got 0.0"),
    ],
)
def test_bad_copy_counts_are_named(copies, first, ratio, message):
    with pytest.raises(ValueError, match=message):
        copy_counts(0, np.array(copies), np.array(first), ratio=ratio)


def test_a_sequence_trains_once_per_epoch_for_each_copy_a_model_holds(
    text_estimate, tmp_path, monkeypatch
):
    import shutil

    run_path = tmp_path / "run"
    shutil.copytree(text_estimate.path, run_path)
    seen: list[np.ndarray] = []

    def counting(model, opt, recorder, tokens, train_ids, config, epoch):
        seen.append(np.bincount(train_ids.numpy(), minlength=len(tokens)))

    monkeypatch.setattr(te, "train_text_epoch", counting)
    te.train_text_batch(str(run_path), 0, 1, 2, 4)
    run = Run.open(run_path)
    train_ids = np.flatnonzero((run.examples(["split"])["split"] == "train").to_numpy())
    stored = run.heldout_array("r0_b0001.copies.npy")
    epochs = RunConfig.from_dict(run.config).train.epochs
    assert len(seen) == 2 * epochs
    for j in range(2):
        expected = np.zeros(len(run.examples()), np.int64)
        expected[train_ids] = stored[j]
        for counts in seen[j * epochs : (j + 1) * epochs]:
            np.testing.assert_array_equal(counts, expected)
    dup = run.examples(["duplicates"])["duplicates"].to_numpy()[train_ids]
    assert stored[:, dup > 1].max() > 1  # a duplicated sequence trained more than once


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
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    for gone in ("loglik", "copies"):  # the batch's last file, then its copies: incomplete
        (folder / f"r0_b0001.{gone}.npy").unlink()
        result = runner.invoke(app, ["estimate", "--like", str(run.path), *ESTIMATE])
        assert result.exit_code == 0, result.output
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == files  # identical files
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


def _finding_table(dup_scores: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "group": ["plain"] * 3 + ["duplicate"] * 5 + ["canary"] * 3,
            "copies": [1, 1, 1, 1, 2, 4, 8, 16, 1, 1, 16],
            "cf_mem_accuracy": [0.0, 0.1, 0.3, *dup_scores, 0.6, 0.4, 0.05],
            "cf_mem_loglik": [1.0, 2.0, 3.0, 5.0, 4.0, 3.0, 2.0, 1.0, 9.0, 8.0, 1.0],
        }
    )


def test_the_counterfactual_finding_by_hand():
    from memdash.analysis.findings.text import counterfactual_by_copies, counterfactual_of_text

    table = _finding_table([0.2, 0.15, 0.1, 0.12, 0.0])
    m = counterfactual_by_copies(table)
    assert m["median_plain"] == pytest.approx(0.1)
    assert m["median_canary_once"] == pytest.approx(0.5)  # (0.6 + 0.4) / 2
    assert m["median_canary_1"] == pytest.approx(0.5) and m["median_canary_16"] == 0.05
    assert m["median_canary"] == pytest.approx(0.4)
    assert [m[f"median_dup_{c}"] for c in (1, 2, 4, 8, 16)] == [0.2, 0.15, 0.1, 0.12, 0.0]
    assert m["copies"] == [1, 2, 4, 8, 16] and m["insertions"] == [1, 16]
    # the duplicated only: ranks of copies 1..5, of scores 5, 4, 2, 3, 1: rho = 1 - 6*2/120
    expected = stats.spearmanr([1, 2, 4, 8, 16], [0.2, 0.15, 0.1, 0.12, 0.0])
    assert m["spearman"] == pytest.approx(0.9 - 1.8) == pytest.approx(expected.statistic)
    assert m["p_value"] == pytest.approx(expected.pvalue) and m["p_value"] < 0.05
    assert m["spearman_loglik"] == pytest.approx(-1.0) and m["duplicated"] == 5
    assert counterfactual_of_text.holds(m)
    # rising with copies, or a once-inserted canary at plain text's level: does not hold
    assert not counterfactual_of_text.holds(
        counterfactual_by_copies(_finding_table([0, 1, 2, 3, 4]))
    )
    low = _finding_table([0.2, 0.15, 0.1, 0.12, 0.0])
    low.loc[8:9, "cf_mem_accuracy"] = [0.1, 0.1]
    assert not counterfactual_of_text.holds(counterfactual_by_copies(low))
    flat = counterfactual_by_copies(_finding_table([0.1] * 5))  # no spread: rho 0, p 1
    assert (flat["spearman"], flat["p_value"]) == (0.0, 1.0)


def test_the_counterfactual_finding_names_what_is_missing():
    from memdash.analysis.findings.registry import Missing
    from memdash.analysis.findings.text import counterfactual_by_copies

    table = _finding_table([0.2, 0.15, 0.1, 0.12, 0.0])
    for dropped in (
        table["group"] == "plain",
        table["copies"].isin([1, 16]) & (table["group"] == "canary"),
    ):
        with pytest.raises(Missing, match="canaries inserted once"):
            counterfactual_by_copies(table[~dropped])


def test_the_counterfactual_finding_on_a_text_estimate(text_estimate):
    from memdash.analysis.findings.registry import FAILS, HOLDS
    from memdash.analysis.findings.text import counterfactual_of_text

    found = counterfactual_of_text({"text": text_estimate})
    assert found.verdict in (HOLDS, FAILS) and "Spearman of copies" in found.statistic
    assert found.values["sequences"] > 0


def test_a_model_that_did_not_learn_is_left_out_and_named(text_estimate, tmp_path):
    """Model 1's accuracy set to 0.1 and the others' to 0.8 to 0.82 (the tiny models barely
    learn in two epochs): derive leaves model 1 out of every table and names it."""
    import shutil

    from memdash.analysis.ensemble.text_estimate import derive_text

    run_path = tmp_path / "run"
    shutil.copytree(text_estimate.path, run_path)
    for b, levels in ((0, (0.80, 0.10)), (1, (0.81, 0.82))):
        part = run_path / "heldout" / f"r0_b{b:04d}.accuracy.npy"
        accuracy = np.load(part, allow_pickle=False)
        accuracy[:] = np.array(levels, dtype=np.float32)[:, None]
        np.save(part, accuracy)
    run = Run.open(run_path)
    batches = [(0, 0, 0, 2), (0, 1, 2, 4)]
    tables, summary = derive_text(run, batches)
    assert summary["failed_models"] == [1]
    trained, _, _ = load_text_batches(run, batches)
    kept = trained[[0, 2, 3]]
    assert (tables["counterfactual.parquet"]["n_in"].to_numpy() == kept.sum(0)).all()
