"""`memdash sql` and analysis/tables/sql.py: the views over two copies of the tiny run (a seed
group: one with scores and a hand-made held-out estimate of three examples, one with a
held-out estimate of four examples alone), counted against pandas, joined, refused on errors
with one line, and never writing anything."""

import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.store import Run, write_json
from memdash.analysis.store.derived import replace_derived
from memdash.analysis.tables.sql import QueryError, check_query, one_line, query_runs

runner = CliRunner()
A, B = "tiny (a)", "tiny (b)"  # both copies are named "tiny" in run.json: their folders tell
# the hand-made held-out estimates: a's for examples 0..2, b's for 0..3
MEM_A = pd.DataFrame({"example_id": [0, 1, 2], "mem_score": [0.9, 0.1, 0.6], "n_in": [5, 5, 4]})
MEM_B = pd.DataFrame({"example_id": [0, 1, 2, 3], "mem_score": [0.8, 0.2, 0.7, np.nan]})


@pytest.fixture(scope="module")
def root(tiny_run, tmp_path_factory):
    """grp/a and grp/b: the tiny run twice, b with seed 4 (the data fixed by data.seed 3, as
    the run's seed 3 drew it), so that they form the seed group "grp"."""
    from memdash.analysis.steps.pipeline import analyze

    base = tmp_path_factory.mktemp("sql")
    for name, seed in (("a", 3), ("b", 4)):
        path = base / "grp" / name
        shutil.copytree(tiny_run, path)
        meta = json.loads((path / "run.json").read_text())
        meta["config"]["seed"] = seed
        meta["config"]["data"]["seed"] = 3
        write_json(path / "run.json", meta)
    analyze(base / "grp" / "a", only=["scores"])
    replace_derived(base / "grp" / "a", "heldout", {"heldout.parquet": MEM_A}, {})
    replace_derived(base / "grp" / "b", "heldout", {"heldout.parquet": MEM_B}, {})
    return base


@pytest.fixture(scope="module")
def runs(root):
    return [Run.open(root / "grp" / name) for name in ("a", "b")]


def _files(folder):
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_each_view_counts_per_run_what_pandas_reads(runs):
    a, b = runs
    expected = {
        "examples": {A: len(a.examples()), B: len(b.examples())},
        "trace": {A: len(a.trace("eval")), B: len(b.trace("eval"))},
        "trace_train": {A: len(a.trace("train")), B: len(b.trace("train"))},
        "scores": {A: len(a.read_derived("scores.parquet")), B: len(MEM_B)},
    }
    for view, counts in expected.items():
        found = query_runs(runs, f"SELECT run, count(*) AS n FROM {view} GROUP BY run")
        assert dict(zip(found["run"], found["n"], strict=True)) == counts, view
    assert expected["trace"][A] == 200 * 5  # every example at epochs 0..4


def test_the_runs_view_is_one_row_per_run_from_run_json(runs):
    table = query_runs(runs, "SELECT * FROM runs ORDER BY run")
    assert table["run"].tolist() == [A, B]
    assert table["name"].tolist() == ["tiny", "tiny"]
    assert table["path"].tolist() == [str(run.path) for run in runs]
    assert table["seed"].tolist() == [3, 4]
    assert table["seed_group"].tolist() == ["grp", "grp"]
    assert table["status"].tolist() == ["complete", "complete"]
    assert table["epochs"].tolist() == [4, 4]
    assert table["noise"].tolist() == [0.2, 0.2]
    assert table["labels"].tolist() == ["20% symmetric labels"] * 2
    assert table["n_examples"].tolist() == [200, 200]
    assert table["test_acc"].tolist() == [r.meta["last_epoch"]["test_acc"] for r in runs]
    assert table["dp_epsilon"].isna().all()


def test_scores_carry_the_held_out_mem_score_where_estimated(runs):
    mem = query_runs(
        runs,
        "SELECT run, example_id, mem_score, n_in, forgetting_events FROM scores "
        "WHERE mem_score IS NOT NULL ORDER BY run, example_id",
    )
    assert mem["run"].tolist() == [A, A, A, B, B, B]  # b's NaN for example 3 reads as NULL
    assert mem["mem_score"].tolist() == [0.9, 0.1, 0.6, 0.8, 0.2, 0.7]
    assert mem["n_in"].tolist()[:3] == [5, 5, 4]
    assert mem["forgetting_events"].notna().tolist() == [True] * 3 + [False] * 3  # b: no scores
    # memorized (mem_score > 0.5) in every run of the seed group: examples 0 and 2
    every = query_runs(
        runs,
        "SELECT example_id FROM scores JOIN runs USING (run) WHERE seed_group = 'grp' "
        "GROUP BY example_id HAVING count(*) FILTER (mem_score > 0.5) = "
        "(SELECT count(*) FROM runs WHERE seed_group = 'grp') ORDER BY example_id",
    )
    assert every["example_id"].tolist() == [0, 2]


def test_a_join_of_trace_and_examples_matches_pandas(runs):
    found = query_runs(
        runs,
        "SELECT t.run, avg(t.loss) AS loss FROM trace t JOIN examples e USING (run, example_id) "
        "WHERE e.is_noisy AND t.epoch = 4 GROUP BY t.run ORDER BY t.run",
    )
    for run, name in zip(runs, (A, B), strict=True):
        trace = run.trace("eval", epochs=[4]).merge(run.examples(), on="example_id")
        expected = trace.loc[trace["is_noisy"], "loss"].astype(np.float64).mean()
        assert found.set_index("run").loc[name, "loss"] == pytest.approx(expected, rel=1e-6)


def test_the_cli_prints_a_table_csv_and_json(root, runs):
    query = "SELECT run, epoch, avg(loss) AS loss FROM trace GROUP BY ALL ORDER BY run, epoch"
    expected = query_runs(runs, query)
    table = runner.invoke(app, ["sql", query, str(root)])
    assert table.exit_code == 0, table.output
    assert "tiny (a)" in table.output and "10 rows" in table.output
    csv = runner.invoke(app, ["sql", query, str(root), "--csv"])
    assert csv.exit_code == 0, csv.output
    pd.testing.assert_frame_equal(
        pd.read_csv(io.StringIO(csv.output)), expected, rtol=1e-6, check_dtype=False
    )
    js = runner.invoke(app, ["sql", query, str(root), "--json"])
    assert js.exit_code == 0, js.output
    pd.testing.assert_frame_equal(
        pd.DataFrame(json.loads(js.output)), expected, rtol=1e-6, check_dtype=False
    )
    few = runner.invoke(app, ["sql", query, str(root), "--max-rows", "2"])
    assert "2 rows" in few.output and "more rows not shown (--max-rows 2)" in few.output
    empty = runner.invoke(app, ["sql", "SELECT run, epoch FROM trace WHERE false", str(root)])
    assert "0 rows" in empty.output
    assert runner.invoke(app, ["sql", "FROM runs WHERE false", str(root), "--json"]).output == (
        "[]\n"
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELEC 1", 'error: Parser Error: syntax error at or near "SELEC"'),
        ("SELECT nope FROM trace", 'error: Binder Error: Referenced column "nope" not found'),
        ("COPY (SELECT 1) TO 'out.csv'", "error: a COPY statement: memdash sql only reads"),
        ("CREATE TABLE t AS SELECT 1", "error: a CREATE statement: memdash sql only reads"),
        ("SELECT 1; SELECT 2", "error: one statement at a time, got 2"),
        ("PIVOT trace ON epoch USING avg(loss)", "error: a PIVOT needs its values listed"),
        (" ; ", "error: no SQL statement given"),
        ("SELECT * FROM read_csv('../outside.csv')", "error: Permission Error"),
    ],
)
def test_a_bad_query_is_one_line_exit_1_and_nothing_is_written(
    query, message, root, tmp_path, monkeypatch
):
    (tmp_path / "outside.csv").write_text("secret\n1\n")
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    before = _files(root)
    result = runner.invoke(app, ["sql", query, str(root)])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines
    assert "LINE 1" not in lines[0] and "^" not in lines[0]
    assert _files(root) == before and list(here.iterdir()) == []


def test_no_runs_found_is_one_line_exit_1(tmp_path):
    result = runner.invoke(app, ["sql", "SELECT 1", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: no runs under {tmp_path}"


def test_json_and_csv_together_are_refused_with_exit_2(root):
    result = runner.invoke(app, ["sql", "SELECT 1", str(root), "--json", "--csv"])
    assert result.exit_code == 2 and "--json and --csv: give one" in result.output


def test_a_run_with_an_unreadable_part_is_skipped_with_a_note(tiny_run, tmp_path):
    for name in ("good", "bad"):
        shutil.copytree(tiny_run, tmp_path / name)
    (tmp_path / "bad" / "trace.parquet" / "eval-epoch_002.parquet").write_bytes(b"not parquet")
    result = runner.invoke(app, ["sql", "SELECT DISTINCT run FROM trace", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "eval-epoch_002.parquet" in result.output
    assert "tiny" in result.output and "1 row" in result.output


def test_check_query_and_one_line():
    assert check_query("WITH x AS (SELECT 1) SELECT * FROM x") == (
        "WITH x AS (SELECT 1) SELECT * FROM x"
    )
    reads = ("DESCRIBE trace", "SUMMARIZE scores", "EXPLAIN SELECT 1", "FROM runs")
    for query in (*reads, "PIVOT trace ON epoch IN (0, 4) USING avg(loss)"):
        assert check_query(query) == query
    with pytest.raises(QueryError, match="a SET statement"):
        check_query("SET threads = 1")
    err = ValueError('Parser Error: syntax error at or near "x"\n\nLINE 1: x\n        ^')
    assert one_line(err) == 'Parser Error: syntax error at or near "x"'
