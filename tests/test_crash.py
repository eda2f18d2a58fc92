"""Crash safety of `memdash analyze`: killed at seeded moments, a rerun gives the results an
uninterrupted run gives, byte for byte."""

import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

KILL_SEEDS = (0, 1, 2)


def _analyze(run) -> list[str]:
    return [sys.executable, "-m", "memdash.analysis.cli", "analyze", str(run)]


def _derived(run) -> dict[str, bytes]:
    """Every derived table's bytes (the manifest is compared by its entries' keys)."""
    return {
        str(p.relative_to(run)): p.read_bytes()
        for p in sorted((run / "derived").rglob("*.parquet"))
    }


@pytest.fixture(scope="module")
def reference(tiny_run, tmp_path_factory):
    """The tiny run analyzed without interruption, and how long that took."""
    run = tmp_path_factory.mktemp("crash") / "reference"
    shutil.copytree(tiny_run, run)
    start = time.perf_counter()
    subprocess.run(_analyze(run), check=True, capture_output=True, timeout=600)
    return run, time.perf_counter() - start


@pytest.mark.slow
@pytest.mark.parametrize("seed", KILL_SEEDS)
def test_analyze_killed_at_a_seeded_moment_reruns_to_identical_results(
    seed, reference, tiny_run, tmp_path
):
    from memdash.analysis.runs import Run

    ref_run, seconds = reference
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    delay = random.Random(seed).uniform(0.1, 0.9) * seconds  # somewhere inside the work
    proc = subprocess.Popen(_analyze(run), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # killed mid-way: the run reads, and every step its manifest records has all its files
    # (the manifest is written after a step's files, so a killed step is simply stale)
    killed = Run.open(run)
    for step, entry in killed.derived_manifest().items():
        assert all(killed.derived_path(f).is_file() for f in entry["files"]), step
    subprocess.run(_analyze(run), check=True, capture_output=True, timeout=600)
    assert _derived(run) == _derived(ref_run)
    manifest, expected = Run.open(run).derived_manifest(), Run.open(ref_run).derived_manifest()
    assert {k: v["key"] for k, v in manifest.items()} == {k: v["key"] for k, v in expected.items()}
