"""The house rules of docs/architecture.md: no module over 400 lines, and the import contracts
(imports point down) catch an upward import."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("analysis", "dashboard", "memdash")
MAX_LINES = 400


def test_no_module_of_the_packages_is_over_400_lines():
    modules = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    assert len(modules) > 50, "the packages were not found"
    long = {
        str(p.relative_to(ROOT)): n
        for p in modules
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def _copy_of_the_tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "lint-imports", tmp_path / ".ci")
    return tmp_path


def _lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(tree / ".ci" / "lint-imports"), sys.executable],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_the_contracts_keep_the_tree_and_break_on_an_upward_import(tmp_path):
    tree = _copy_of_the_tree(tmp_path)
    kept = _lint(tree)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "0 broken" in kept.stdout

    measure = tree / "analysis" / "measures" / "dynamics.py"
    measure.write_text(measure.read_text() + "\nfrom memdash.analysis.store import Run  # noqa\n")
    broken = _lint(tree)
    assert broken.returncode == 1
    assert "memdash.analysis.measures is not allowed to import memdash.analysis.store" in (
        broken.stdout
    )
    assert "memdash.analysis.measures.dynamics -> memdash.analysis.store" in broken.stdout


@pytest.mark.slow
def test_the_contracts_break_on_an_import_cycle_between_siblings(tmp_path):
    tree = _copy_of_the_tree(tmp_path)
    # record.dataset is imported by record.data; importing data back closes a cycle inside
    # one layer, which only the acyclic contract sees
    dataset = tree / "analysis" / "record" / "dataset.py"
    dataset.write_text(dataset.read_text() + "\nfrom memdash.analysis.record import data  # noqa\n")
    broken = _lint(tree)
    assert broken.returncode == 1
    assert "no import cycle between sibling modules or packages anywhere BROKEN" in broken.stdout
