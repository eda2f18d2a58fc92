"""The dashboard's launcher (`python -m memdash.dashboard`): the preloading thread beside the
server, and `memdash dashboard` running it."""

from __future__ import annotations

import ast
import importlib.util
import logging
import sys
from pathlib import Path

import pytest

from memdash.dashboard import data, serve


@pytest.fixture
def probe_module(tmp_path, monkeypatch):
    """A module no test has imported yet, on the path: its name."""
    name = f"preload_probe_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.fixture
def summaries_read(monkeypatch, tmp_path):
    """The roots data.run_summaries is called with, in order (nothing is read)."""
    calls: list[tuple[str, ...]] = []
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    monkeypatch.setattr(data, "run_summaries", calls.append)
    return calls


def test_preload_waits_for_the_server_then_imports_and_reads_the_summaries(
    probe_module, summaries_read, tmp_path
):
    answers = iter([False, False, True])  # the server starts at the third look
    looks = []

    def started():
        looks.append(probe_module in sys.modules)  # nothing imported while waiting
        return next(answers)

    assert serve.preload(started, modules=[probe_module], poll_s=0) is True
    assert looks == [False, False, False]
    assert sys.modules[probe_module].VALUE == 1
    assert summaries_read == [(str(tmp_path.resolve()),)]  # the roots the pages read


def test_preload_gives_up_on_a_server_that_stops_or_never_starts(probe_module, summaries_read):
    assert serve.preload(lambda: None, modules=[probe_module]) is False  # stopping
    assert serve.preload(lambda: False, modules=[probe_module], timeout_s=0.05) is False
    assert probe_module not in sys.modules
    assert summaries_read == []


def test_a_failed_preload_is_logged_and_changes_nothing(monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))

    def broken(roots):
        raise OSError("disk on fire")

    monkeypatch.setattr(data, "run_summaries", broken)
    with caplog.at_level(logging.WARNING, logger=serve.__name__):
        assert serve.preload(lambda: True, modules=[]) is False
    assert "preloading the first page failed" in caplog.text
    assert "disk on fire" in caplog.text


def test_a_missing_module_is_a_failed_preload_not_a_crash(summaries_read):
    assert serve.preload(lambda: True, modules=["memdash.no_such_module"]) is False
    assert summaries_read == []


def test_the_preload_imports_what_the_app_imports_then_its_default_page():
    """PRELOADED is the app script's memdash imports in its order, then EXPLORE's first page
    (the one "/" forwards to): a changed app.py must change the list."""
    tree = ast.parse(Path(importlib.util.find_spec("memdash.dashboard.app").origin).read_text())
    imported = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module.startswith("memdash.dashboard"):
            package = importlib.util.find_spec(node.module).submodule_search_locations
            if package is None:  # names from a module: the module
                imported.append(node.module)
            else:  # modules from their package
                imported += [f"{node.module}.{alias.name}" for alias in node.names]
        if isinstance(node, ast.Assign) and node.targets[0].id == "EXPLORE":
            explore = ast.literal_eval(node.value)  # (module, title, path) of each page
    # (the app is not imported here: importing it runs it)
    assert (*imported, f"memdash.dashboard.app_pages.{explore[0][0]}") == serve.PRELOADED


def test_memdash_dashboard_runs_streamlit_under_the_launcher(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from memdash.analysis import cli
    from memdash.analysis.cli import dashboard

    seen = {}
    monkeypatch.setattr(dashboard.os, "execve", lambda exe, argv, env: seen.update(argv=argv))
    CliRunner().invoke(cli.app, ["dashboard", str(tmp_path), "--port", "8612"])
    argv = seen["argv"]
    app = importlib.util.find_spec("memdash.dashboard.app").origin
    assert argv[1:5] == ["-m", "memdash.dashboard", "run", app]
    assert argv[argv.index("--server.port") + 1] == "8612"
    # the plain command line (the benchmark's minimal app) is Streamlit's own
    plain = dashboard.streamlit_command(tmp_path / "app.py", port=1, host="127.0.0.1")
    assert plain[1:4] == ["-m", "streamlit", "run"]
