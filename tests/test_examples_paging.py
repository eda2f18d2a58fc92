"""The Examples table of a large run, server-side: DuckDB's filtered, sorted page of the
example table (analysis/tables/example_query.py) against the pandas one
(analysis/tables/example_filter.py) on a hand-made five-example run and on the tiny run
forced through it; one example's trajectory read by predicate pushdown against a full read;
the row groups of a newly written trace part; the Examples page with its threshold lowered."""

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FIVE
from streamlit.testing.v1 import AppTest

from memdash.analysis.store import Run, RunFormatError, RunWriter
from memdash.analysis.store import trace as store_trace
from memdash.analysis.store.derived import replace_derived
from memdash.analysis.store.sources import select_source
from memdash.analysis.tables.example_filter import (
    ExampleFilter,
    facets_of,
    filter_examples,
    page_of,
)
from memdash.analysis.tables.example_query import (
    example_columns,
    example_facets,
    example_page,
    example_rows,
    example_top,
)
from memdash.analysis.tables.examples import example_table

NAN = np.nan
CONFIDENCE = [0.9, 0.2, NAN, 0.5, 0.7]
MEM_SCORE = [0.1, 0.8, 0.3, NAN, 0.95]
LOSS = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [0.5, 1.5, 2.5, 3.5, 4.5], [0.1, 0.2, 0.3, 0.4, 0.5]])


def _part(epoch: int, ids: np.ndarray, loss: np.ndarray) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "source": pa.array(["eval"] * n),
            "epoch": np.full(n, epoch, np.int32),
            "example_id": np.asarray(ids, np.int64),
            "loss": np.asarray(loss, np.float32),
            "prob_label": np.exp(-np.asarray(loss, np.float32)),
            "margin": np.zeros(n, np.float32),
            "pred": np.zeros(n, np.int32),
            "correct": np.asarray(loss) < 1.0,
        }
    )


@pytest.fixture(scope="module")
def five(tmp_path_factory):
    """A run of five examples, three epochs of eval trace (parts written in reverse id
    order), hand-made scores and a held-out estimate."""
    path = tmp_path_factory.mktemp("paging") / "five"
    config = {"data": {"dataset": "synthetic", "n_examples": 5}, "train": {"epochs": 2}}
    writer = RunWriter.create(
        path, config=config, examples=FIVE, inputs=np.zeros((5, 2), np.float32), n_classes=3
    )
    for epoch in range(3):
        writer.write_trace("eval", epoch, _part(epoch, np.arange(5)[::-1], LOSS[epoch][::-1]))
        writer.commit_epoch(epoch)
    writer.finish("complete")
    scores = pd.DataFrame({"example_id": np.arange(5), "confidence": CONFIDENCE})
    replace_derived(path, "scores", {"scores.parquet": scores}, {})
    heldout = pd.DataFrame({"example_id": np.arange(5), "mem_score": MEM_SCORE})
    replace_derived(path, "heldout", {"heldout.parquet": heldout}, {})
    return Run.open(path)


def _ids(frame: pd.DataFrame) -> list[int]:
    return frame["example_id"].astype(int).tolist()


@pytest.mark.parametrize(
    ("where", "sort", "descending", "offset", "expected", "total"),
    [
        # NaN last whichever the direction: 0.95, 0.8, 0.3, 0.1, then example 3's NaN
        (ExampleFilter(), "mem_score", True, 0, [4, 1, 2, 0, 3], 5),
        (ExampleFilter(), "mem_score", False, 0, [0, 2, 1, 4, 3], 5),
        # clean or flipped with mem_score in [0.2, 1]: 1 (0.8) and 2 (0.3); by confidence 0.2, NaN
        (
            ExampleFilter(kinds=("clean", "flipped"), score="mem_score", low=0.2, high=1.0),
            "confidence",
            False,
            0,
            [1, 2],
            2,
        ),
        # confidence in [0.5, 0.9] keeping the missing: 0, 3, 4 and 2 (NaN); by kind, then id
        (
            ExampleFilter(score="confidence", low=0.5, high=0.9, keep_missing=True),
            "kind",
            False,
            0,
            [4, 0, 2, 3],
            4,
        ),
        (ExampleFilter(labels=(1, 2)), "example_id", True, 1, [2, 1], 3),  # 4, 2, 1 from 1
        (ExampleFilter(defined=("confidence", "mem_score")), "example_id", False, 0, [0, 1, 4], 3),
    ],
)
def test_a_page_by_hand_duckdb_and_pandas(five, where, sort, descending, offset, expected, total):
    table = example_table(five)
    mine, counted = example_page(five, where, sort=sort, descending=descending, offset=offset)
    theirs, n = page_of(table, where, sort=sort, descending=descending, offset=offset)
    assert _ids(mine) == _ids(theirs) == expected
    assert counted == n == total
    pd.testing.assert_frame_equal(mine, theirs, check_dtype=False)
    top = example_top(five, where, sort=sort, descending=descending, offset=offset, limit=2)
    assert _ids(top) == expected[:2]


def test_facets_by_hand(five):
    facets = example_facets(five, ranged=("mem_score", "confidence", "aum"))
    assert facets.n_examples == 5
    assert facets.kinds == ("canary", "clean", "flipped", "test")
    assert facets.labels == (0, 1, 2)
    assert facets.ranges == {"mem_score": (0.1, 0.95), "confidence": (0.2, 0.9)}  # no aum
    assert facets == facets_of(example_table(five), ranged=("mem_score", "confidence", "aum"))


def test_a_text_runs_page_in_its_own_words(tmp_path):
    """A text run's table has kinds plain and duplicate and no labels (the dashboard's
    `text_kinds`), and finds sequences by their text, case-insensitive."""
    from memdash.dashboard.data.run import text_kinds

    examples = FIVE.assign(
        label=0,
        true_label=0,
        is_noisy=False,
        corruption=["", "duplicate", "", "", ""],
        text=["Ab c", "xyz", "ABC", "ab", "cab"],
    )
    writer = RunWriter.create(
        tmp_path / "text",
        config={"data": {"dataset": "text"}, "train": {"epochs": 1}},
        examples=examples,
        inputs=np.zeros((5, 2), np.float32),
        n_classes=2,
        extra={"modality": "text"},
    )
    run = Run.open(writer.path)
    table = text_kinds(example_table(run))
    facets = example_facets(run)
    assert facets.kinds == ("canary", "duplicate", "plain", "test") and facets.labels == ()
    assert facets == facets_of(table)
    where = ExampleFilter(text="ab")  # "Ab c", "ABC", "ab", "cab"
    mine, total = example_page(run, where, sort="kind")
    theirs, n = page_of(table, where, sort="kind")
    assert _ids(mine) == [4, 0, 2, 3] and total == n == 4  # by kind, then by id
    assert mine["kind"].tolist() == ["canary", "plain", "plain", "test"]
    pd.testing.assert_frame_equal(mine, theirs, check_dtype=False)


@pytest.fixture(scope="module")
def tiny(tiny_run, tmp_path_factory):
    """The tiny run analysed (scores of both traces, k-NN) with a held-out estimate whose
    test examples have no score (NaN)."""
    from memdash.analysis.steps.pipeline import analyze

    path = tmp_path_factory.mktemp("paging") / "tiny"
    shutil.copytree(tiny_run, path)
    analyze(path, only=["scores", "knn"])
    run = Run.open(path)
    split = run.examples(["split"])["split"].to_numpy()
    mem = np.where(split == "train", np.linspace(-0.2, 1.0, len(split)), np.nan)
    heldout = pd.DataFrame({"example_id": np.arange(len(split)), "mem_score": mem})
    replace_derived(path, "heldout", {"heldout.parquet": heldout}, {})
    return run


CASES = [  # a filter and the column and direction of its sort
    (ExampleFilter(), "example_id", False),
    (ExampleFilter(kinds=("flipped",)), "mem_score", True),
    (
        ExampleFilter(
            kinds=("clean", "test"), labels=(0, 2), score="confidence", low=0.3, high=0.8
        ),
        "confidence",
        False,
    ),
    (ExampleFilter(score="mem_score", low=0.1, high=0.6, keep_missing=True), "mem_score", False),
    (ExampleFilter(kinds=("clean", "flipped"), defined=("mem_score",)), "kind", True),
]


@pytest.mark.parametrize(("where", "sort", "descending"), CASES)
@pytest.mark.parametrize("source", ["eval", "train"])
def test_the_tiny_runs_pages_equal_pandas(tiny, where, sort, descending, source):
    table = select_source(example_table(tiny), source)
    for offset in (0, 30):
        mine, counted = example_page(
            tiny, where, source=source, sort=sort, descending=descending, offset=offset, limit=40
        )
        theirs, n = page_of(table, where, sort=sort, descending=descending, offset=offset, limit=40)
        assert counted == n == len(filter_examples(table, where))
        pd.testing.assert_frame_equal(mine, theirs, check_dtype=False)


def test_the_whole_table_counts_facets_and_extra_columns(tiny):
    table = example_table(tiny)
    assert example_columns(tiny) == list(table.columns)
    ranged = ("mem_score", "confidence", "knn_pred", "aum_train")
    assert example_facets(tiny, ranged=ranged) == facets_of(table, ranged=ranged)
    rows = example_rows(tiny, ExampleFilter(), columns=["example_id", "kind"])
    pd.testing.assert_frame_equal(rows, table[["example_id", "kind"]], check_dtype=False)
    # a seed group's easiness, joined by example_id (training examples only)
    easy = pd.DataFrame({"example_id": [0, 2, 5], "easiness": [1.0, 0.5, 0.0]})
    page, total = example_page(
        tiny, ExampleFilter(defined=("easiness",)), sort="easiness", extra=easy
    )
    assert total == 3 and _ids(page) == [5, 2, 0]
    assert page["easiness"].tolist() == [0.0, 0.5, 1.0]


def test_bad_requests_are_named_in_one_line(five, tmp_path):
    with pytest.raises(ValueError, match="sort: no column 'nope'; valid: example_id, kind"):
        example_page(five, ExampleFilter(), sort="nope")
    with pytest.raises(ValueError, match="filter: no column 'nope'"):
        example_page(five, ExampleFilter(score="nope", low=0, high=1))
    with pytest.raises(ValueError, match="offset >= 0 and limit >= 1, got -1 and 100"):
        example_page(five, ExampleFilter(), offset=-1)
    with pytest.raises(ValueError, match="low 2 above high 1"):
        ExampleFilter(score="mem_score", low=2, high=1)
    with pytest.raises(ValueError, match="unknown trace source 'neither'"):
        example_page(five, ExampleFilter(), source="neither")
    with pytest.raises(ValueError, match="extra columns need example_id"):
        example_page(five, ExampleFilter(), extra=pd.DataFrame({"id": [0]}))
    with pytest.raises(ValueError, match="sort: no column 'nope'"):
        page_of(example_table(five), ExampleFilter(), sort="nope")
    damaged = tmp_path / "five"
    shutil.copytree(five.path, damaged)
    (damaged / "examples.parquet").write_bytes(b"PAR1 not parquet")
    with pytest.raises(RunFormatError, match="examples.parquet: not a readable Parquet file"):
        example_page(Run.open(damaged), ExampleFilter())


# ------------------------------------------------------------------ trace row groups
def test_row_group_size():
    assert store_trace.trace_row_group_size(200) == 8192  # a small part: one row group
    assert store_trace.trace_row_group_size(1_000_000) == 15_625  # 64 of them
    assert store_trace.trace_row_group_size(64 * 8192 + 1) == 8193


def test_a_new_part_is_sorted_in_row_groups_that_skip(tmp_path, monkeypatch):
    monkeypatch.setattr(store_trace, "MIN_ROW_GROUP", 2)  # 10 rows: 5 row groups of 2
    examples = pd.concat([FIVE, FIVE.assign(example_id=FIVE["example_id"] + 5)])
    config = {"data": {"dataset": "synthetic", "n_examples": 10}, "train": {"epochs": 1}}
    writer = RunWriter.create(
        tmp_path / "ten",
        config=config,
        examples=examples.reset_index(drop=True),
        inputs=np.zeros((10, 2), np.float32),
        n_classes=3,
    )
    shuffled = np.array([7, 2, 9, 0, 5, 1, 8, 3, 6, 4])
    writer.write_trace("eval", 0, _part(0, shuffled, shuffled / 10))
    writer.commit_epoch(0)
    file = tmp_path / "ten" / "trace.parquet" / "eval-epoch_000.parquet"
    meta = pq.ParquetFile(file).metadata
    assert meta.num_row_groups == 5
    bounds = [
        (meta.row_group(g).column(2).statistics.min, meta.row_group(g).column(2).statistics.max)
        for g in range(5)
    ]
    assert bounds == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert store_trace.row_groups_holding(meta, 2, 7) == [3]
    run = Run.open(tmp_path / "ten")
    epochs, values, decoded = store_trace.example_trace(
        run.path, run.trace_parts("eval"), 7, ["loss"], first_epoch=0
    )
    assert decoded == 1 and epochs.tolist() == [0]
    assert values["loss"] == pytest.approx([0.7])


def test_pushdown_reads_what_a_full_read_reads(five, tiny, tmp_path):
    # by hand: example 2's eval loss at epochs 0, 1, 2 (its parts written in reverse order)
    epochs, values, _ = store_trace.example_trace(
        five.path, five.trace_parts("eval"), 2, ["loss", "correct"], first_epoch=0
    )
    assert epochs.tolist() == [0, 1, 2]
    assert values["loss"] == pytest.approx([3.0, 2.5, 0.3])
    assert values["correct"].tolist() == [0.0, 0.0, 1.0]
    columns = ["prob_label", "loss", "correct"]
    for source in ("eval", "train"):
        every, grids = tiny.trace_grids(source, columns, first_epoch=0)
        for example in (0, 57, 199):  # 199 is a test example: absent from the train trace
            got, values, _ = store_trace.example_trace(
                tiny.path, tiny.trace_parts(source), example, columns, first_epoch=0
            )
            assert got.tolist() == every.tolist()
            for c in columns:
                np.testing.assert_array_equal(values[c], grids[c][:, example])
    # an example listed twice in a part keeps its last row, as the grids do
    twice = tmp_path / "trace.parquet"
    twice.mkdir()
    pq.write_table(_part(0, np.array([3, 1, 3]), np.array([1.0, 2.0, 4.0])), twice / "x.parquet")
    parts = {("eval", 0): twice / "x.parquet"}
    _, values, _ = store_trace.example_trace(tmp_path, parts, 3, ["loss"], first_epoch=0)
    _, grids = store_trace.trace_grids(tmp_path, parts, 4, ["loss"], first_epoch=0)
    assert values["loss"] == pytest.approx([4.0]) == grids["loss"][:, 3]


def test_an_unreadable_part_is_named(five, tmp_path):
    bad = tmp_path / "trace.parquet"
    bad.mkdir()
    (bad / "eval-epoch_000.parquet").write_bytes(b"PAR1 not parquet")
    with pytest.raises(RunFormatError, match="eval-epoch_000.parquet: damaged Parquet data"):
        store_trace.example_trace(
            tmp_path, {("eval", 0): bad / "eval-epoch_000.parquet"}, 0, ["loss"], first_epoch=0
        )


# ------------------------------------------------------------------ the page, forced
def _examples_page() -> None:
    from memdash.dashboard.app_pages import examples

    examples.render()


def test_the_examples_page_pages_a_run_above_the_threshold(tiny, tmp_path, monkeypatch):
    from memdash.dashboard.data import paging

    shutil.copytree(tiny.path, tmp_path / "tiny")
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    monkeypatch.setattr(paging, "LARGE_RUN", 100)
    assert paging.is_large(tmp_path / "tiny") and not paging.is_large(
        tmp_path / "tiny", threshold=201
    )
    at = AppTest.from_function(_examples_page, default_timeout=60).run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 100
    assert any("Rows 1-100 of 200 examples" in c.value for c in at.caption)
    at.number_input(key="examples_page").set_value(2).run()
    assert _ids(at.dataframe[0].value) == list(range(100, 200))
    # the flipped examples by mem_score, descending: pandas's page of the same
    at.multiselect(key="examples_kinds").set_value(["flipped"]).run()
    at.selectbox(key="examples_sort").set_value("mem_score").run()
    at.toggle(key="examples_descending").set_value(True).run()
    assert not at.exception
    where = ExampleFilter(kinds=("flipped",), labels=(0, 1, 2, 3))
    expected, total = page_of(example_table(tiny), where, sort="mem_score", descending=True)
    assert at.number_input(key="examples_page").value == 1  # one page of flipped examples
    assert _ids(at.dataframe[0].value) == _ids(expected) and total < 100
    # the gallery opens an example; its trajectory is read by pushdown
    opener = next(b for b in at.button if b.key.startswith("examples_open_"))
    opener.click().run()
    assert not at.exception
    assert at.session_state["example"] == int(opener.key.rsplit("_", 1)[1])
    assert len(at.get("plotly_chart")) == 2  # the input and its trajectory


def test_a_paged_run_of_a_seed_group_shows_its_easiness(monkeypatch):
    from pathlib import Path

    from memdash.dashboard.data import paging

    samples = Path(__file__).resolve().parents[1] / "sample_runs"
    group = [samples / "groups" / "digits_true" / f"seed_{s}" for s in range(3)]
    monkeypatch.setenv("MEMDASH_ROOTS", str(samples))
    monkeypatch.setattr(paging, "LARGE_RUN", 100)
    at = AppTest.from_function(_examples_page, default_timeout=60)
    at.session_state["run"] = "seed_1 (digits_true)"
    at.run()
    assert not at.exception
    page = at.dataframe[0].value.set_index("example_id")
    right = [
        Run.open(p).trace("eval", epochs=[1], columns=["correct"])["correct"].to_numpy()
        for p in group
    ]
    assert (page["split"] == "train").all()  # the first 100 by id
    assert np.allclose(page["easiness"].to_numpy(), np.mean(right, axis=0)[page.index])
    assert any("Easiness across seeds" in h.value for h in at.subheader)
    assert any("after epoch 1" in c.value for c in at.caption)
    at.multiselect(key="examples_kinds").set_value(["test"]).run()
    tested = at.dataframe[0].value
    assert len(tested) and tested["easiness"].isna().all()  # never trained on
