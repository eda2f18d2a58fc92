"""Crash safety of every writer: `memdash analyze`, `localize` and `estimate`, each killed
(SIGKILL) at seeded moments, rerun to the results an uninterrupted run gives, byte for byte."""

import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

KILL_SEEDS = (0, 1, 2)
COMMANDS = {
    "analyze": ["analyze"],
    "localize": ["localize", "--retrain-epochs", "1", "--flip-examples", "5"],
    # one worker: the estimate trains in its own process, so the kill stops all its work
    "estimate": ["estimate", "--models", "8", "--models-per-batch", "2", "--workers", "1"],
}


def _command(name: str, run) -> list[str]:
    args = COMMANDS[name]
    target = ["--like", str(run)] if name == "estimate" else [str(run)]
    return [sys.executable, "-m", "memdash.analysis.cli", args[0], *target, *args[1:]]


def _results(run) -> dict[str, bytes]:
    """Every derived table's bytes, and the estimate's stored batches."""
    files = sorted((run / "derived").rglob("*.parquet"))
    if (run / "heldout").is_dir():
        files += sorted((run / "heldout").glob("*.npy")) + [run / "heldout" / "spec.json"]
    return {str(p.relative_to(run)): p.read_bytes() for p in files}


@pytest.fixture(scope="module")
def references(tiny_run, tmp_path_factory):
    """Per command, the tiny run processed without interruption, and the shorter of two such
    runs' times (the first pays for cold caches, so a kill timed from it could come late)."""
    out = {}
    for name in COMMANDS:
        seconds = []
        for attempt in range(2):
            run = tmp_path_factory.mktemp("crash") / f"{name}{attempt}"
            shutil.copytree(tiny_run, run)
            start = time.perf_counter()
            subprocess.run(_command(name, run), check=True, capture_output=True, timeout=600)
            seconds.append(time.perf_counter() - start)
        out[name] = (run, min(seconds))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("seed", KILL_SEEDS)
@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_writer_killed_at_a_seeded_moment_reruns_to_identical_results(
    name, seed, references, tiny_run, tmp_path
):
    from memdash.analysis.store import Run

    reference, seconds = references[name]
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    delay = random.Random(seed).uniform(0.15, 0.6) * seconds  # somewhere inside the work
    proc = subprocess.Popen(
        _command(name, run), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL  # killed mid-way, not finished first
    # killed mid-way: the run reads, and every step its manifest records has all its files
    # (the manifest is written after a step's files, so a killed step is simply stale)
    killed = Run.open(run)
    for step, entry in killed.derived_manifest().items():
        assert all(killed.derived_path(f).is_file() for f in entry["files"]), step
    subprocess.run(_command(name, run), check=True, capture_output=True, timeout=600)
    assert _results(run) == _results(reference)
    keys = {k: v["key"] for k, v in Run.open(run).derived_manifest().items()}
    assert keys == {k: v["key"] for k, v in Run.open(reference).derived_manifest().items()}
