"""The Privacy page of a text run: the attacks on log-likelihoods and counterfactual
memorization from a tiny text estimate, the command to run without one, and an example
opened from it."""

import json
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.dashboard.charts import counterfactual as cf_charts

runner = CliRunner()
TINY = [
    *("--dataset", "text", "--model", "gpt", "--width", "16", "--layers", "1"),
    *("--heads", "2", "--epochs", "1", "--n-examples", "40", "--seq-len", "24"),
    *("--prefix-len", "8", "--suffix-len", "4", "--batch-size", "16"),
    *("--canaries", "1", "--canary-repeats", "1,8", "--reference-canaries", "4"),
    *("--canary-format", "pin {d}{d}{d}"),
    *("--duplicate-sequences", "2", "--duplicate-counts", "1,4"),
]


def _page():
    from memdash.dashboard.app_pages import privacy

    privacy.render()


@pytest.fixture(scope="module")
def text_runs(tmp_path_factory):
    """Two tiny text runs: one with a 6-model estimate (the attacks need six), one without."""
    root = tmp_path_factory.mktemp("privacy_text")
    for name in ("estimated", "plain"):
        result = runner.invoke(app, ["train", *TINY, "--out", str(root / name)])
        assert result.exit_code == 0, result.output
    args = ["--models", "6", "--models-per-batch", "3", "--workers", "1"]
    result = runner.invoke(app, ["estimate", "--like", str(root / "estimated"), *args])
    assert result.exit_code == 0, result.output
    return root


def _at(root: Path, run: str, monkeypatch) -> AppTest:
    monkeypatch.setenv("MEMDASH_ROOTS", str(root))
    at = AppTest.from_function(_page, default_timeout=60)
    at.session_state["run"] = run
    return at


def test_a_text_estimate_draws_its_attacks_and_counterfactual_memorization(text_runs, monkeypatch):
    at = _at(text_runs, "estimated", monkeypatch).run()
    assert not at.exception
    heads = [h.value for h in at.subheader]
    assert "Membership inference on log-likelihoods" in heads
    assert "Counterfactual memorization" in heads
    roc, scatter, boxes = at.get("plotly_chart")[:3]
    assert '"type":"log"' in roc.proto.spec.replace(" ", "") and "online LiRA" in roc.proto.spec
    assert '"canary"' in scatter.proto.spec and '"plain"' in scatter.proto.spec
    assert "canary x8" in boxes.proto.spec and "duplicate x4" in boxes.proto.spec
    attacks = at.dataframe[0].value.set_index("attack")
    assert 0 <= attacks.loc["online LiRA", "AUC"] <= 1
    # TPRs in percent with two decimals, as on a classifier's page (not 25.2% beside 1.08%)
    assert '"%.2f%%"' in at.dataframe[0].proto.columns.replace(" ", "")
    assert 0 <= attacks.loc["online LiRA", "TPR at 1% FPR"] <= 100
    medians = at.dataframe[1].value
    assert "plain" in set(medians.iloc[:, 0])
    # short headers, so that the medians fit their half of the page
    assert list(medians.columns) == [*("group", "sequences", "token accuracy", "log-likelihood")]
    # the y-axis title on two lines: whole, it ran past a half-width chart's height
    yaxis = json.loads(scatter.proto.spec)["layout"]["yaxis"]["title"]["text"]
    assert yaxis == "counterfactual memorization<br>(in minus out token accuracy)"
    # open the first canary: its detail shows the sequence as text
    cf = pd.read_parquet(text_runs / "estimated" / "derived" / "counterfactual.parquet")
    examples = pd.read_parquet(text_runs / "estimated" / "examples.parquet")
    canary = int(examples.loc[examples["is_canary"] & (examples["split"] == "train")].iloc[0, 0])
    assert cf.loc[canary, "n_in"] + cf.loc[canary, "n_out"] == 6
    at.session_state["example"] = canary
    at.run()
    assert not at.exception
    facts = pd.concat([t.value for t in at.table]).astype(str).to_string()
    assert "counterfactual memorization" in facts  # its scores among its facts


def _examples_page():
    from memdash.dashboard.app_pages import examples

    examples.render()


def test_the_examples_page_of_a_text_run_lists_its_counterfactual_scores(text_runs, monkeypatch):
    monkeypatch.setenv("MEMDASH_ROOTS", str(text_runs))
    at = AppTest.from_function(_examples_page, default_timeout=60)
    at.session_state["run"] = "estimated"
    at.run()
    assert not at.exception
    columns = set(at.dataframe[0].value.columns)
    assert {"cf_mem_accuracy", "cf_mem_loglik"} <= columns


def test_a_text_run_without_an_estimate_says_which_command(text_runs, monkeypatch):
    at = _at(text_runs, "plain", monkeypatch).run()
    assert not at.exception
    assert any("memdash estimate --like" in c.value for c in at.code)


def test_medians_by_copies_group_kinds_and_counts():
    table = pd.DataFrame(
        {
            "example_id": [0, 1, 2, 3, 4],
            "kind": ["plain", "plain", "duplicate", "canary", "canary"],
            "duplicates": [1, 1, 4, 8, 8],
            "cf_mem_accuracy": [0.1, 0.3, 0.5, 0.6, 0.8],
            "cf_mem_loglik": [1.0, 3.0, 5.0, 6.0, 10.0],
        }
    )
    medians = cf_charts.median_by_copies(table)
    assert medians["group"].tolist() == ["plain", "duplicate x4", "canary x8"]
    assert medians["cf_mem_accuracy"].tolist() == pytest.approx([0.2, 0.5, 0.7])
    assert medians["cf_mem_loglik"].tolist() == [2.0, 5.0, 8.0]
    assert medians["sequences"].tolist() == [2, 1, 2]
