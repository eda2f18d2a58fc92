"""The installed package: its own import name, nothing generic in site-packages, a public API."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

OUTSIDE = """
import importlib.util, sys
assert importlib.util.find_spec("analysis") is None, "a top-level 'analysis' is importable"
assert importlib.util.find_spec("dashboard") is None, "a top-level 'dashboard' is importable"
try:
    import analysis  # noqa: F401
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("import analysis worked")
import memdash
assert "torch" not in sys.modules, "import memdash loaded torch"
print(memdash.TraceRecorder.__module__, memdash.Run.__module__, memdash.open_run.__module__)
import memdash.dashboard.charts
print(memdash.dashboard.charts.__name__)
"""


def test_from_outside_the_repository_memdash_imports_and_analysis_does_not(tmp_path):
    """In the installed venv, from a directory outside the repository (so the checkout's
    own folders are not on the path)."""
    assert not (tmp_path / "analysis").exists()
    out = subprocess.run(
        [sys.executable, "-c", OUTSIDE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "memdash.analysis.record.recorder",
        "memdash.analysis.store.reader",
        "memdash",
        "memdash.dashboard.charts",
    ]


def test_every_public_name_resolves():
    import memdash

    for name in memdash.__all__:
        assert getattr(memdash, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        memdash.nonsense  # noqa: B018


def test_the_readme_public_api_example_runs_as_written():
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    example = next(b for b in blocks if b.startswith("import memdash"))
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        exec(compile(example, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    run, events = namespace["run"], namespace["events"]
    scores = run.read_derived("scores.parquet")
    # the README's forgetting count equals the one memdash analyze stored
    assert (events == scores["forgetting_events"].to_numpy()).all()
