"""One example read alone (analysis/tables/example_row.py, dashboard/data/one_example.py): the
example table's rows of a few ids by predicate pushdown against the whole table's rows (all
columns, values and dtypes, a file that lacks some example widening its columns as the
left join does) on a hand-made five-example run and the sample runs; an
example's rows of the derived per-example files; bad ids and damaged files named in one
line; the Examples page of a large run showing the same detail without reading its table."""

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FIVE
from streamlit.testing.v1 import AppTest

from memdash.analysis.store import Run, RunFormatError, RunWriter
from memdash.analysis.store.derived import replace_derived
from memdash.analysis.store.sources import select_source
from memdash.analysis.tables.example_row import derived_rows, example_rows
from memdash.analysis.tables.examples import example_table

NAN = np.nan
SAMPLES = Path(__file__).resolve().parents[1] / "sample_runs"
NOISE20 = SAMPLES / "digits_mlp_noise20"
# k-NN at two layers; the last ("out") lacks example 4, so the whole table's knn_pred is a
# float and its knn_agrees an object with NaN there
KNN = pd.DataFrame(
    {
        "example_id": np.array([0, 1, 2, 3, 4, 0, 1, 2, 3], np.int64),
        "epoch": np.full(9, 2, np.int64),
        "layer": ["fc1"] * 5 + ["out"] * 4,
        "knn_pred": np.array([0, 1, 1, 0, 2, 0, 0, 1, 2], np.int64),
        "dnn_pred": np.array([0, 1, 1, 0, 2, 0, 1, 1, 0], np.int64),
        "agrees": [True, True, True, True, True, True, False, True, False],
        "knn_is_label": [True, True, True, True, True, True, False, True, False],
        "knn_is_true": [True, False, True, True, True, True, True, True, False],
    }
)
# the three nearest training examples of each example at the last layer
NEIGHBOURS = pd.DataFrame(
    {
        "example_id": np.repeat(np.arange(5, dtype=np.int64), 3),
        "rank": np.tile(np.arange(1, 4, dtype=np.int16), 5),
        "neighbor_id": np.array([2, 1, 4, 0, 2, 4, 0, 1, 4, 2, 0, 1, 0, 1, 2], np.int64),
        "distance": np.arange(15, dtype=np.float32) / 10,
        "epoch": np.full(15, 2, np.int64),
        "layer": ["out"] * 15,
    }
)


@pytest.fixture(scope="module")
def five(tmp_path_factory):
    """Five examples with scores of both traces (every example), a held-out estimate
    (every example), k-NN (its last layer lacking example 4) and the neurons zeroed to
    flip examples 1 and 4 only (an int: a float in the whole table)."""
    path = tmp_path_factory.mktemp("rows") / "five"
    config = {"data": {"dataset": "synthetic", "n_examples": 5}, "train": {"epochs": 2}}
    writer = RunWriter.create(
        path, config=config, examples=FIVE, inputs=np.zeros((5, 2), np.float32), n_classes=3
    )
    writer.finish("complete")
    scores = pd.DataFrame(
        {
            "example_id": np.arange(5),
            "confidence": [0.9, 0.2, NAN, 0.5, 0.7],
            "forgetting_events": np.array([0, 3, 1, 0, 2], np.int64),
            "confidence_train": [0.8, 0.1, 0.4, NAN, 0.6],
            "forgetting_events_train": np.array([1, 4, 0, 0, 2], np.int64),
        }
    )
    replace_derived(path, "scores", {"scores.parquet": scores}, {})
    heldout = pd.DataFrame({"example_id": np.arange(5), "mem_score": [0.1, 0.8, 0.3, NAN, 0.95]})
    replace_derived(path, "heldout", {"heldout.parquet": heldout}, {})
    replace_derived(path, "knn", {"knn_examples.parquet": KNN, "neighbors.parquet": NEIGHBOURS}, {})
    flips = pd.DataFrame({"example_id": [1, 4], "neurons_zeroed": np.array([3, 7], np.int64)})
    replace_derived(path, "flipping", {"localization.parquet": flips}, {})
    return Run.open(path)


def test_rows_by_hand(five):
    rows = example_rows(five, [4, 1, 3])
    assert rows.index.tolist() == [4, 1, 3]
    assert rows["kind"].tolist() == ["canary", "flipped", "test"]
    assert rows["label"].tolist() == [2, 1, 0] and rows["label"].dtype == np.int64
    assert rows["confidence"].tolist() == [0.7, 0.2, 0.5]
    assert rows["forgetting_events"].tolist() == [2, 3, 0]  # every example scored: an int
    assert rows["forgetting_events"].dtype == np.int64
    # layer "out" lacks example 4: its k-NN columns widened as the left join widens them
    assert rows["knn_pred"].dtype == np.float64 and rows["knn_agrees"].dtype == object
    assert np.isnan(rows["knn_pred"].iloc[0]) and rows["knn_pred"].tolist()[1:] == [0.0, 2.0]
    assert rows["knn_agrees"].tolist()[1:] == [False, False]
    assert rows["neurons_zeroed"].dtype == np.float64  # examples 1 and 4 only
    assert rows["neurons_zeroed"].tolist()[:2] == [7.0, 3.0] and np.isnan(rows["neurons_zeroed"][3])


@pytest.mark.parametrize("ids", [[0], [4], [3, 0, 2], [1, 4], [0, 1, 2, 3, 4]])
def test_rows_equal_the_whole_tables(five, ids):
    """All columns, values, dtypes and the index (row i is example i)."""
    pd.testing.assert_frame_equal(example_rows(five, ids), example_table(five).iloc[ids])


def test_rows_without_scores_read_examples_parquet_alone(five, tmp_path):
    table = example_table(five)
    rows = example_rows(five, [4, 0], scores=False)
    assert list(rows.columns) == ["example_id", "kind", *FIVE.columns[1:]]
    pd.testing.assert_frame_equal(rows, table.iloc[[4, 0]][rows.columns])
    unread = tmp_path / "five"  # its derived files gone: never read
    shutil.copytree(five.path, unread)
    shutil.rmtree(unread / "derived")
    pd.testing.assert_frame_equal(example_rows(Run.open(unread), [4, 0], scores=False), rows)


def test_an_examples_rows_of_a_derived_file(five):
    knn = derived_rows(five, "knn_examples.parquet", [1])  # its two layers, in file order
    assert knn["layer"].tolist() == ["fc1", "out"]
    assert knn["knn_pred"].tolist() == [1, 0] and knn["agrees"].tolist() == [True, False]
    near = derived_rows(five, "neighbors.parquet", [2])
    assert near["neighbor_id"].tolist() == [0, 1, 4] and near["rank"].tolist() == [1, 2, 3]
    assert near["distance"].tolist() == pytest.approx([0.6, 0.7, 0.8])
    whole = five.read_derived("neighbors.parquet")
    expected = whole[whole["example_id"] == 2].reset_index(drop=True)
    pd.testing.assert_frame_equal(near, expected)  # the whole read's dtypes (int16 rank)
    assert derived_rows(five, "localization.parquet", [0]).empty  # never flipped
    two = derived_rows(five, "knn_examples.parquet", [3, 0], columns=["example_id", "layer"])
    assert list(two.columns) == ["example_id", "layer"] and len(two) == 4


def test_bad_ids_and_unreadable_files_are_named(five, tmp_path):
    with pytest.raises(ValueError, match="example 5 is not in run 'five': its ids are 0 to 4"):
        example_rows(five, [0, 5])
    with pytest.raises(ValueError, match="example -1 is not in run"):
        example_rows(five, [-1])
    with pytest.raises(ValueError, match="distinct; 2 is asked for twice"):
        example_rows(five, [2, 1, 2])
    with pytest.raises(RunFormatError, match="derived/neighbors.parquet: no column 'nope'"):
        derived_rows(five, "neighbors.parquet", [0], columns=["nope"])
    with pytest.raises(RunFormatError, match="derived/umap.parquet: missing"):
        derived_rows(five, "umap.parquet", [0])
    damaged = tmp_path / "five"
    shutil.copytree(five.path, damaged)
    FIVE.assign(example_id=[0, 1, 2, 3, 7]).to_parquet(damaged / "examples.parquet")
    with pytest.raises(RunFormatError, match="examples.parquet: example_id must be 0..N-1"):
        example_rows(Run.open(damaged), [2, 4])  # example 4 listed as 7
    (damaged / "derived" / "neighbors.parquet").write_bytes(b"PAR1 not parquet")
    with pytest.raises(RunFormatError, match="neighbors.parquet: not a readable Parquet file"):
        derived_rows(Run.open(damaged), "neighbors.parquet", [0])
    (damaged / "examples.parquet").write_bytes(b"PAR1 not parquet")
    with pytest.raises(RunFormatError, match="examples.parquet: not a readable Parquet file"):
        example_rows(Run.open(damaged), [0])


def test_the_sample_runs_rows_equal_their_tables():
    """Scores of both traces, an estimate with LiRA, k-NN at three layers, the neurons zeroed
    to flip some examples (widened), a CNN's canaries, a text run."""
    names = ("digits_mlp_noise20", "mnist1d_cnn_noise10_canaries", "text_gpt_canaries")
    for run in (Run.open(SAMPLES / name) for name in names):
        table = example_table(run)
        n = len(table)
        for ids in ([0], [n - 1], [n // 2, 7, 1]):
            pd.testing.assert_frame_equal(example_rows(run, ids), table.iloc[ids])
    run = Run.open(NOISE20)
    whole = run.read_derived("neighbors.parquet")
    for example in (0, 57, 2326):
        mine = derived_rows(run, "neighbors.parquet", [example])
        theirs = whole[whole["example_id"] == example].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, theirs)


def test_the_dashboards_rows_as_the_pages_table_holds_them(five):
    """With the training minibatches' scores and a seed group's easiness, as the Examples
    page builds its table; a text run's in its own kinds."""
    from memdash.dashboard.data import one_example
    from memdash.dashboard.data import run as run_data
    from memdash.dashboard.data.studies import easiness

    group = (str(SAMPLES / "groups" / "digits_true" / f"seed_{s}") for s in range(3))
    group = tuple(group)
    seed = Path(group[1])
    table = run_data.examples(seed).merge(easiness(group, 1), on="example_id", how="left")
    rows = one_example.example_rows(seed, [1796, 3, 40], group=group)
    pd.testing.assert_frame_equal(rows, table.iloc[[1796, 3, 40]])
    table = select_source(run_data.examples(five.path), "train")
    rows = one_example.example_rows(five.path, [2, 0], source="train")
    pd.testing.assert_frame_equal(rows, table.iloc[[2, 0]])
    assert rows["confidence"].tolist() == [0.4, 0.8]  # confidence_train, under the plain name
    text = SAMPLES / "text_gpt_canaries"
    table = run_data.examples(text)
    pd.testing.assert_frame_equal(one_example.example_rows(text, [5, 0]), table.iloc[[5, 0]])
    assert one_example.derived_rows(five.path, "umap/out.parquet", [0]) is None  # not computed
    assert one_example.derived_size(five.path, "neighbors.parquet") == 15


# ------------------------------------------------------------------ the page, forced
def _examples_page() -> None:
    from memdash.dashboard.app_pages import examples

    examples.render()


def _detail(at: AppTest) -> tuple:
    """What the detail shows: its facts, k-NN table, headings and neighbours' captions."""
    return (
        [t.value.to_dict("list") for t in at.table],
        at.dataframe[-1].value.to_dict("list"),
        [m.value for m in at.markdown if "**" in m.value],
        [i.caption for e in at.image for i in e.proto.imgs if re.match(r"#\d+: ", i.caption)],
        len(at.get("plotly_chart")),
    )


def test_a_large_runs_detail_shows_the_same_without_its_table(monkeypatch):
    """The sample run's example 57 on the Examples page, its table in memory against its
    rows read alone (the page then never reads the whole table)."""
    from memdash.dashboard.data import paging
    from memdash.dashboard.data import run as run_data

    monkeypatch.setenv("MEMDASH_ROOTS", str(SAMPLES))
    shown = {}
    for large in (False, True):
        monkeypatch.setattr(paging, "LARGE_RUN", 100 if large else 100_000)
        if large:  # the page and its detail never read the whole table

            def whole_table(*args):
                raise AssertionError("the whole example table was read")

            monkeypatch.setattr(run_data, "_examples", whole_table)
        at = AppTest.from_function(_examples_page, default_timeout=60)
        at.session_state["run"] = NOISE20.name
        at.session_state["example"] = 57  # a deep link's example (?example=57)
        at.run()
        assert not at.exception, at.exception
        assert any("k-NN against the network** at epoch" in m.value for m in at.markdown)
        shown[large] = _detail(at)
        neighbour = next(b for b in at.button if b.key.startswith("examples_neighbour_"))
        neighbour.click().run()
        assert not at.exception
        assert at.session_state["example"] == int(neighbour.key.rsplit("_", 1)[1]) != 57
    assert shown[True] == shown[False]
    facts, knn, headings, captions, charts = shown[True]
    table = example_table(Run.open(NOISE20))
    assert facts[0]["fact"][:3] == ["kind", "given label", "true label"]
    assert facts[0]["value"][:3] == [
        table["kind"][57],
        *map(str, table.loc[57, ["label", "true_label"]]),
    ]
    assert knn["layer"] == ["fc1", "fc2", "out"] and len(headings) == 2
    assert charts == 3  # its input, trajectory and confidences under the estimate's models
    near = Run.open(NOISE20).read_derived("neighbors.parquet").query("example_id == 57")
    near = near.sort_values("rank")
    assert [int(c[1:].split(":")[0]) for c in captions] == near["neighbor_id"].tolist()[:12]


def test_a_large_text_runs_sequence_shows_the_same_without_its_table(monkeypatch):
    """The sample text run's sequence 5 (its facts, tokens and nearest sequences), its
    table in memory against its row read alone."""
    from memdash.dashboard.data import paging

    monkeypatch.setenv("MEMDASH_ROOTS", str(SAMPLES))
    shown = {}
    for large in (False, True):
        monkeypatch.setattr(paging, "LARGE_RUN", 100 if large else 100_000)
        at = AppTest.from_function(_examples_page, default_timeout=60)
        at.session_state["run"] = "text_gpt_canaries"
        at.session_state["example"] = 5
        at.run()
        assert not at.exception, at.exception
        opens = [b.key for b in at.button if b.key.startswith("examples_neighbour_")]
        markdown = [m.value for m in at.markdown if "Nearest training sequences" in m.value]
        shown[large] = ([t.value.to_dict("list") for t in at.table], markdown, opens)
    assert shown[True] == shown[False]
    facts, markdown, opens = shown[True]
    assert facts[0]["fact"][0] == "kind" and len(markdown) == 1 and len(opens) == 6
