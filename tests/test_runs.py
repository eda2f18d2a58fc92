import contextlib
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memdash.analysis.store import Run, RunFormatError, RunWriter, discover_runs


def _examples(n=3):
    return pd.DataFrame(
        {
            "example_id": np.arange(n, dtype=np.int64),
            "split": ["train"] * (n - 1) + ["test"],
            "label": np.array([1, 0, 2][:n] + [0] * max(0, n - 3), dtype=np.int64),
            "true_label": np.array([0, 0, 2][:n] + [0] * max(0, n - 3), dtype=np.int64),
            "is_noisy": [True] + [False] * (n - 1),
            "is_canary": [False] * n,
        }
    )


def _trace(source, epoch, n=3):
    return pd.DataFrame(
        {
            "source": [source] * n,
            "epoch": np.full(n, epoch, dtype=np.int32),
            "example_id": np.arange(n, dtype=np.int64),
            "loss": np.linspace(0.1, 1, n).astype(np.float32),
            "prob_label": np.linspace(0.9, 0.4, n).astype(np.float32),
            "margin": np.linspace(1, -1, n).astype(np.float32),
            "pred": np.array([1, 0, 0][:n], dtype=np.int32),
            "correct": [True, True, False][:n],
        }
    )


@pytest.fixture
def written(tmp_path):
    w = RunWriter.create(
        tmp_path / "r",
        config={"train": {"epochs": 2}},
        examples=_examples(),
        inputs=np.arange(6, dtype=np.float32).reshape(3, 2),
        n_classes=3,
        layers=["fc1"],
    )
    for epoch in (0, 1):
        w.write_trace("eval", epoch, _trace("eval", epoch))
        w.write_embedding(epoch, "fc1", np.full((3, 4), epoch, dtype=np.float16))
        w.commit_epoch(epoch)
    w.write_trace("train", 1, _trace("train", 1).iloc[:2])
    w.write_checkpoint(1, {"w": torch.ones(2, 2)})
    w.commit_epoch(1)
    w.finish("complete")
    return tmp_path / "r"


def test_round_trip(written):
    run = Run.open(written)
    assert run.status == "complete" and run.epochs_completed == 1 and run.n_classes == 3
    assert run.examples().equals(_examples())
    assert np.array_equal(run.inputs(), np.arange(6, dtype=np.float32).reshape(3, 2))
    t = run.trace("eval")
    assert t["epoch"].tolist() == [0, 0, 0, 1, 1, 1]
    pd.testing.assert_frame_equal(t.iloc[3:].reset_index(drop=True), _trace("eval", 1))
    assert len(run.trace(None)) == 8 and run.trace_sources() == ["eval", "train"]
    assert run.trace("eval", columns=["loss"], epochs=[1])["loss"].tolist() == pytest.approx(
        [0.1, 0.55, 1.0]
    )
    assert run.embedding_index() == {0: ["fc1"], 1: ["fc1"]}
    assert run.embedding(1, "fc1").dtype == np.float16
    assert torch.equal(run.checkpoint(1)["w"], torch.ones(2, 2))
    assert run.validate()
    # readable without memdash
    assert len(pd.read_parquet(written / "trace.parquet")) == 8
    assert json.loads((written / "run.json").read_text())["schema_version"] == 1


def test_epochs_after_the_last_commit_are_ignored(written):
    w = RunWriter.reopen(written)
    w.write_trace("eval", 2, _trace("eval", 2))  # written, then "killed" before commit
    w.write_embedding(2, "fc1", np.zeros((3, 4)))
    run = Run.open(written)
    assert run.trace("eval")["epoch"].max() == 1
    assert 2 not in run.embedding_index()
    assert run.status == "running"


def test_trace_grids_read_part_by_part(written):
    run = Run.open(written)
    epochs, grids = run.trace_grids("eval", ["loss", "correct", "pred"], first_epoch=0)
    assert epochs.tolist() == [0, 1]
    np.testing.assert_allclose(grids["loss"], [[0.1, 0.55, 1.0]] * 2, rtol=1e-6)
    assert grids["correct"].tolist() == [[1.0, 1.0, 0.0]] * 2
    assert grids["pred"].dtype == np.float64 and grids["pred"].tolist() == [[1, 0, 0]] * 2
    # the minibatch part holds examples 0 and 1 only: the test example is NaN
    epochs, grids = run.trace_grids("train", ["margin"])
    assert epochs.tolist() == [1]
    np.testing.assert_allclose(grids["margin"], [[1.0, 0.0, np.nan]])
    with pytest.raises(ValueError, match="unknown trace source 'both'"):
        run.trace_grids("both", ["loss"])


def test_reopen_after_an_earlier_epoch_rolls_back(written):
    w = RunWriter.reopen(written, epoch=0)
    assert w.epochs_completed == 0
    run = Run.open(written)
    assert run.epochs_completed == 0 and sorted(run.trace_parts()) == [("eval", 0)]
    with pytest.raises(RunFormatError, match="cannot resume after epoch 3: the run holds "):
        RunWriter.reopen(written, epoch=3)


def test_no_temporary_files_are_left(written):
    assert not [p for p in written.rglob(".*") if p.is_file()]


def test_create_refuses_to_overwrite(written):
    with pytest.raises(FileExistsError, match="already exists.*--resume"):
        RunWriter.create(
            written, config={}, examples=_examples(), inputs=np.zeros((3, 2)), n_classes=3
        )


def test_writer_rejects_bad_frames(tmp_path):
    bad = _examples().drop(columns=["is_canary"])
    with pytest.raises(RunFormatError, match="missing column 'is_canary'"):
        RunWriter.create(
            tmp_path / "x", config={}, examples=bad, inputs=np.zeros((3, 2)), n_classes=3
        )
    assert not (tmp_path / "x" / "run.json").exists()


def _rewrite_json(run, **changes):
    meta = json.loads((run / "run.json").read_text())
    meta.update(changes)
    (run / "run.json").write_text(json.dumps(meta))


def _drop_key(run, key):
    meta = json.loads((run / "run.json").read_text())
    del meta[key]
    (run / "run.json").write_text(json.dumps(meta))


def _rewrite_parquet(path, frame):
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


MALFORMED = {
    "scalar inputs": (
        lambda r: np.save(r / "inputs.npy", np.float32(1.0)),
        "inputs.npy",
        "shape \\(\\), expected 3 rows",
    ),
    "unknown schema": (
        lambda r: _rewrite_json(r, schema_version=7),
        "run.json",
        "unknown schema_version 7",
    ),
    "no run.json": (lambda r: (r / "run.json").unlink(), "run.json", "missing"),
    "bad json": (lambda r: (r / "run.json").write_text("{"), "run.json", "not valid JSON"),
    "missing key": (lambda r: _drop_key(r, "status"), "run.json", "missing key 'status'"),
    "bad status": (lambda r: _rewrite_json(r, status="done"), "run.json", "status 'done'"),
    "string epochs": (lambda r: _rewrite_json(r, epochs_completed="1"), "run.json", "must be int"),
    "no examples": (lambda r: (r / "examples.parquet").unlink(), "examples.parquet", "missing"),
    "no inputs": (lambda r: (r / "inputs.npy").unlink(), "inputs.npy", "missing"),
    "missing column": (
        lambda r: _rewrite_parquet(r / "examples.parquet", _examples().drop(columns="label")),
        "examples.parquet",
        "missing column 'label' \\(expected int\\)",
    ),
    "mistyped column": (
        lambda r: _rewrite_parquet(
            r / "examples.parquet", _examples().assign(label=["a", "b", "c"])
        ),
        "examples.parquet",
        "column 'label' is (large_)?string, expected int",
    ),
    "mistyped trace": (
        lambda r: _rewrite_parquet(
            r / "trace.parquet" / "eval-epoch_001.parquet",
            _trace("eval", 1).assign(loss=["x", "y", "z"]),
        ),
        "trace.parquet/eval-epoch_001.parquet",
        "column 'loss' is (large_)?string, expected float",
    ),
    "trace ids out of range": (
        lambda r: _rewrite_parquet(
            r / "trace.parquet" / "eval-epoch_001.parquet",
            _trace("eval", 1).assign(example_id=[0, 1, 9]),
        ),
        "trace.parquet/eval-epoch_001.parquet",
        "example_id outside 0..2",
    ),
    "garbage parquet": (
        lambda r: (r / "trace.parquet" / "eval-epoch_000.parquet").write_bytes(b"nope"),
        "trace.parquet/eval-epoch_000.parquet",
        "not a readable Parquet file",
    ),
    "short inputs": (
        lambda r: np.save(r / "inputs.npy", np.zeros((2, 2))),
        "inputs.npy",
        "shape \\(2, 2\\), expected 3 rows",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_runs_name_run_file_and_expectation(written, case):
    damage, file, message = MALFORMED[case]
    damage(written)
    with pytest.raises(RunFormatError, match=message) as info:
        Run.open(written).validate()
    assert info.value.file == file
    assert str(written) in str(info.value)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    target=st.sampled_from(
        [
            "run.json",
            "examples.parquet",
            "inputs.npy",
            "trace.parquet/eval-epoch_001.parquet",
            "embeddings/epoch_001/fc1.npy",
        ]
    ),
    junk=st.binary(max_size=300),
)
def test_garbage_files_never_crash_the_reader(written, tmp_path_factory, target, junk):
    run = tmp_path_factory.mktemp("fuzz") / "r"
    shutil.copytree(written, run)
    (run / target).write_bytes(junk)
    with contextlib.suppress(RunFormatError):  # any other exception fails the test
        Run.open(run).validate()


def test_discover_runs_finds_nested_runs_and_skips_hidden(written, tmp_path):
    (tmp_path / "group" / "b").mkdir(parents=True)
    shutil.copy(written / "run.json", tmp_path / "group" / "b" / "run.json")
    (tmp_path / ".hidden" / "c").mkdir(parents=True)
    shutil.copy(written / "run.json", tmp_path / ".hidden" / "c" / "run.json")
    found = discover_runs([tmp_path])
    assert found == [(tmp_path / "group" / "b").resolve(), written.resolve()]
    assert discover_runs([tmp_path / "absent"]) == []


def test_discover_runs_never_follows_a_link_out_of_the_root(written, tmp_path):
    """A run reached only through a link (here a link to a run outside the root) is not
    listed, so neither the dashboard nor a browser value can open it."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "linked").symlink_to(written)
    assert discover_runs([root]) == []
    shutil.copytree(written, root / "real")
    assert discover_runs([root]) == [(root / "real").resolve()]


def test_a_link_inside_the_run_is_fine_one_leading_out_is_named(written, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(written, run)
    (run / "notes").symlink_to(run / "run.json")  # stays inside
    Run.open(run).check_links()
    (run / "notes").unlink()
    (run / "notes").symlink_to(tmp_path)
    with pytest.raises(RunFormatError, match=f"notes: a link to {tmp_path}, outside the run"):
        Run.open(run).check_links()
