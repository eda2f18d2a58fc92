"""Read-only and full disks, for real: each command runs in a private mount namespace
(`unshare`) where the run is a read-only bind mount, or lies on a small tmpfs filled to the
last byte. The commands say they cannot write, reads (info, the dashboard) still work, and
nothing of the user's is lost; with space again, the same command finishes the work."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from memdash.analysis.steps.pipeline import analyze

# as root a mount namespace is enough; anyone else maps to root in a user namespace
UNSHARE = ["unshare", "--mount"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
MEMDASH = str(Path(sys.executable).with_name("memdash"))


def in_namespace(setup: str, *command: str, env: dict | None = None):
    """Run `command` in a private mount namespace, after the shell lines `setup`."""
    script = f'set -e\n{setup}\nexec "$@"'
    return subprocess.run(
        [*UNSHARE, "sh", "-c", script, "sh", *map(str, command)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def read_only(path: Path) -> str:
    return f"mount --bind '{path}' '{path}'\nmount -o remount,bind,ro '{path}'"


def full_disk(folder: Path, run: Path) -> str:
    """A 1 MiB tmpfs on `folder` holding a copy of `run`, then filled to the last byte."""
    return (
        f"mount -t tmpfs -o size=1m tmpfs '{folder}'\n"
        f"cp -a '{run}' '{folder}/run'\n"
        f"dd if=/dev/zero of='{folder}/filler' bs=4k 2>/dev/null || true"
    )


def said(result) -> str:
    return " ".join((result.stdout + result.stderr).split())


def snapshot(run: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(run)): p.read_bytes()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name != ".memdash.lock"
    }


# the dashboard's pages on the read-only run, through Streamlit's AppTest, in the namespace
PAGES = """
import json
from streamlit.testing.v1 import AppTest

PAGE = "import importlib; importlib.import_module('memdash.dashboard.app_pages.{}').render()"
seen = {}
for name in ("runs", "examples", "forgetting", "knn"):
    at = AppTest.from_string(PAGE.format(name), default_timeout=120).run()
    if name == "knn":  # its results are missing: ask the page to compute them
        at.button(key="knn_compute").click().run()
    seen[name] = {
        "exceptions": [e.value for e in at.exception],
        "errors": [e.value for e in at.error],
        "charts": len(at.get("plotly_chart")),
        "tables": len(at.dataframe) + len(at.table),  # data grids and static tables
    }
print(json.dumps(seen))
"""


@pytest.fixture
def scored(tiny_run, tmp_path):
    """A copy of the tiny run under ROOT/tiny with its trace scores computed."""
    run = tmp_path / "root" / "tiny"
    shutil.copytree(tiny_run, run)
    analyze(run, only=["scores"])
    return run


def test_a_read_only_run_is_read_but_never_written(scored):
    before = snapshot(scored)
    for command in (
        ["analyze", scored, "--only", "knn"],
        ["localize", scored],
        ["estimate", "--like", scored, "--models", "4", "--models-per-batch", "4"],
    ):
        result = in_namespace(read_only(scored), MEMDASH, *command)
        text = said(result)
        assert result.returncode == 1, text
        assert f"run {scored}: .memdash.lock: cannot write to the run directory " in text
        assert "(Read-only file system)" in text and "reading the run still works" in text
        assert "Traceback" not in text
    info = in_namespace(read_only(scored), MEMDASH, "info", scored)
    assert info.returncode == 0 and "complete" in said(info), said(info)
    pages = in_namespace(
        read_only(scored),
        sys.executable,
        "-c",
        PAGES,
        env={"MEMDASH_ROOTS": str(scored.parent)},
    )
    assert pages.returncode == 0, pages.stderr[-3000:]
    seen = json.loads(pages.stdout.strip().splitlines()[-1])
    assert all(not page["exceptions"] for page in seen.values()), seen
    assert seen["runs"]["tables"] == 1 and seen["runs"]["charts"] == 1
    assert seen["examples"]["tables"] >= 1
    assert seen["forgetting"]["charts"] == 3  # the stored scores: histograms and data map
    (error,) = (e.replace("\\", "") for e in seen["knn"]["errors"])  # markdown escapes gone
    assert error.startswith("Could not compute knn: run ") and "Read-only file system" in error
    assert snapshot(scored) == before


def test_a_full_disk_keeps_earlier_results_and_the_rerun_finishes(scored, tmp_path):
    """analyze --force on a full disk: one message, the earlier scores and manifest byte for
    byte, no temporary file left; with the filler gone the same command completes."""
    disk = tmp_path / "disk"
    disk.mkdir()
    inside = disk / "run"
    analyze_it = f"'{MEMDASH}' analyze '{inside}' --only scores,knn --force"
    setup = full_disk(disk, scored)
    # the disk as the failed command left it, copied out before the namespace ends
    result = in_namespace(
        f"{setup}\n{analyze_it} || echo FAILED=$?", "cp", "-a", inside, tmp_path / "left"
    )
    text = said(result)
    assert "FAILED=1" in text, text
    assert "No space left on device" in text and "Traceback" not in text
    assert "earlier results are kept" in text
    assert not list((tmp_path / "left").rglob("*.tmp"))  # no half-written file left behind
    assert snapshot(tmp_path / "left") == snapshot(scored)
    # the same, then room again: the command completes and its scores equal a fresh run's
    retry = in_namespace(
        f"{setup}\n{analyze_it} || true\nrm '{disk}/filler'\n{analyze_it}",
        "cp",
        "-a",
        f"{inside}/derived",
        tmp_path / "after",
    )
    assert retry.returncode == 0, said(retry)
    reference = tmp_path / "reference"
    shutil.copytree(scored, reference)
    analyze(reference, only=["scores", "knn"], force=True)
    for name in ("scores.parquet", "knn.parquet"):
        assert (tmp_path / "after" / name).read_bytes() == (
            reference / "derived" / name
        ).read_bytes()


@pytest.mark.parametrize("filled_kib", [900, 760], ids=["before-epoch-0", "mid-training"])
def test_training_on_a_full_disk_stops_cleanly_and_resumes(filled_kib, tmp_path):
    """memdash train fills the disk: one message, the run keeps its complete epochs (none,
    or some), `memdash info` reads it, and `--resume` with room again finishes it with the
    same trace as an uninterrupted run."""
    disk, log = tmp_path / "disk", tmp_path / "log"
    disk.mkdir()
    log.mkdir()
    args = ["--dataset", "synthetic", "--n-examples", "400", "--epochs", "6"]
    args += ["--hidden", "16", "--embed-layers", "fc1", "--embed-epochs", "0,2,4,6"]
    run = disk / "run"
    train = " ".join([MEMDASH, "train", *args, "--out", str(run)])
    setup = (
        f"mount -t tmpfs -o size=1m tmpfs '{disk}'\n"
        f"dd if=/dev/zero of='{disk}/filler' bs=1k count={filled_kib} 2>/dev/null\n"
        f"{train} > {log}/first 2>&1 || echo FAILED=$? >> {log}/first\n"
        f"'{MEMDASH}' info '{run}' > {log}/info 2>&1 || echo FAILED=$? >> {log}/info\n"
        f"rm '{disk}/filler'\n"
        f"{train} --resume > {log}/resumed 2>&1"
    )
    result = in_namespace(setup, "cp", "-a", run, tmp_path / "resumed")
    first, info = (" ".join((log / name).read_text().split()) for name in ("first", "info"))
    assert "FAILED=1" in first and "cannot write" in first, first
    assert "No space left on device" in first or "bytes free on the disk of" in first
    assert "Traceback" not in first and "--resume" in first
    status, kept = re.search(r"(failed|created) \((\d+) of 6 epochs\)", info).groups()
    # stopped before epoch 0: created, nothing recorded; later: failed, with its epochs kept
    assert (status, kept == "0") == (("created", True) if filled_kib == 900 else ("failed", False))
    assert result.returncode == 0, said(result) + (log / "resumed").read_text()
    subprocess.run(
        [MEMDASH, "train", *args, "--out", tmp_path / "whole"], check=True, capture_output=True
    )
    from memdash.analysis.store import Run

    resumed, whole = Run.open(tmp_path / "resumed"), Run.open(tmp_path / "whole")
    assert resumed.status == "complete"
    assert resumed.trace().equals(whole.trace())
