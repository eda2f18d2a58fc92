"""Damaged runs through the commands: every file of the run store truncated, garbled, deleted
or of the wrong shape. Each case ends in one clear message that names the file, a non-zero
exit, no traceback, and no file of the user's changed."""

import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from memdash.analysis.cli import app

# the run store's files (a trace part, an embedding, a checkpoint... of the tiny run)
FILES = (
    "run.json",
    "examples.parquet",
    "inputs.npy",
    "trace.parquet/eval-epoch_002.parquet",
    "trace.parquet/train-epoch_002.parquet",
    "layer_grads.parquet/epoch_002.parquet",
    "embeddings/epoch_004/fc1.npy",
    "checkpoints/epoch_002.safetensors",
)


def _truncate(path):
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)])


def _garble(path):
    path.write_bytes(np.random.default_rng(0).bytes(max(64, path.stat().st_size // 4)))


def _delete(path):
    path.unlink()


def _reshape(path):
    """The right format with the wrong content: another dtype and shape for arrays, a
    JSON list for JSON, an unrelated table for Parquet."""
    if path.suffix == ".npy":
        np.save(path, np.zeros((3,), dtype=np.int8))
    elif path.suffix == ".json":
        path.write_text("[1, 2, 3]")
    elif path.suffix == ".parquet":
        import pandas as pd

        pd.DataFrame({"unrelated": [1, 2]}).to_parquet(path)
    else:
        path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")  # an empty safetensors header


def _link_out(path):
    """The same, valid content moved out of the run and linked back in."""
    run = next(p for p in path.parents if p.name == "run")  # the test's copy, TMP/run
    outside = run.parent / "elsewhere" / path.name
    outside.parent.mkdir()
    path.rename(outside)
    path.symlink_to(outside)


DAMAGES = {
    "truncated": _truncate,
    "garbage": _garble,
    "missing": _delete,
    "wrong": _reshape,
    "linked_out": _link_out,
}
CASES = [(f, d) for f in FILES for d in DAMAGES]


def _snapshot(run):
    return {
        str(p.relative_to(run)): p.read_bytes()
        for p in sorted(run.rglob("*"))
        if p.is_file() and "derived" not in p.parts and p.name != ".memdash.lock"
    }


def test_a_folder_linked_out_of_the_run_is_refused_before_any_write(tiny_run, tmp_path):
    """A derived/ folder that is a link to elsewhere: analyze names it and writes nothing."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("derived"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run / "derived").symlink_to(elsewhere)
    result = CliRunner().invoke(app, ["analyze", str(run), "--only", "scores"])
    out = " ".join(result.output.split())
    assert result.exit_code == 1, out
    assert f"derived: a link to {elsewhere}, outside the run directory" in out
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(("name", "damage"), CASES, ids=[f"{f}-{d}" for f, d in CASES])
@pytest.mark.parametrize("command", ["info", "analyze"])
def test_a_damaged_file_gets_one_clear_message(command, name, damage, tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    DAMAGES[damage](run / name)
    before = _snapshot(run)
    args = [command, str(run)] + (["--only", "scores"] if command == "analyze" else [])
    result = CliRunner().invoke(app, args)
    out = result.output
    assert "Traceback" not in out
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    # scores read run.json, the examples and the trace; analyze checks every part first
    needed = (
        command == "info"
        or name != "inputs.npy"
        and not name.startswith(("embeddings/", "checkpoints/"))
    )
    # a promised file that is gone, or a link out of the run, is always named
    needed = needed or damage in ("missing", "linked_out")
    if needed:
        assert result.exit_code != 0, out
        assert name.split("/")[-1] in out.replace("\n", ""), out
    else:
        assert result.exit_code == 0, out
    assert _snapshot(run) == before  # nothing of the user's changed
