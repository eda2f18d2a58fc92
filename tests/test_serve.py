"""The dashboard's launcher (`python -m memdash.dashboard`): the preloading thread beside the
server, and `memdash dashboard` running it."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import logging
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from memdash.dashboard import data, serve
from memdash.dashboard.data.roots import SUMMARY_COLUMNS


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

    def read(roots: tuple[str, ...]) -> pd.DataFrame:
        calls.append(roots)
        return pd.DataFrame(columns=SUMMARY_COLUMNS)  # no runs: no curves to read

    monkeypatch.setattr(data, "run_summaries", read)
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
    # and inspect knows the module's file, as Streamlit's first element will ask it to
    probe_file = os.path.realpath(sys.modules[probe_module].__file__)
    assert inspect.modulesbyfile[probe_file] == probe_module


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
    """`memdash dashboard` (parsed alone by `cli.main`) runs `python -m memdash.dashboard run
    APP` in its own process, the roots in MEMDASH_ROOTS."""
    from memdash.analysis import cli
    from memdash.analysis.cli import dashboard

    seen = {}

    def run_module(name, *, run_name, alter_sys):
        seen.update(name=name, run_name=run_name, argv=list(sys.argv))

    monkeypatch.setattr(dashboard.runpy, "run_module", run_module)
    monkeypatch.setattr(sys, "argv", ["memdash", "dashboard", str(tmp_path), "--port", "8612"])
    monkeypatch.delenv("MEMDASH_ROOTS", raising=False)
    with pytest.raises(SystemExit) as exited:  # typer's standalone end, after the server's
        cli.main()
    assert exited.value.code == 0
    app = importlib.util.find_spec("memdash.dashboard.app").origin
    assert (seen["name"], seen["run_name"]) == ("memdash.dashboard", "__main__")
    assert seen["argv"][:3] == ["memdash.dashboard", "run", app]
    assert seen["argv"][seen["argv"].index("--server.port") + 1] == "8612"
    assert os.environ["MEMDASH_ROOTS"] == str(tmp_path.resolve())
    # the plain command line (the benchmark's minimal app) is Streamlit's own
    plain = dashboard.streamlit_command(tmp_path / "app.py", port=1, host="127.0.0.1")
    assert plain[1:4] == ["-m", "streamlit", "run"]


def test_memdash_dashboard_alone_refuses_what_the_whole_command_line_refuses(
    tmp_path, monkeypatch, capsys
):
    """The dashboard's own command line is the same command: a bad option is refused (exit
    code 2), a missing root is an error (exit code 1), and the other commands still parse."""
    from memdash.analysis import cli

    for argv, code, said in (
        (["dashboard", str(tmp_path), "--port", "99999"], 2, "--port must be"),
        (["dashboard", str(tmp_path / "nowhere")], 1, "no such run root"),
        (["info", "--help"], 0, "Usage: memdash info"),
    ):
        monkeypatch.setattr(sys, "argv", ["memdash", *argv])
        with pytest.raises(SystemExit) as exited:
            cli.main()
        assert exited.value.code == code
        out = capsys.readouterr()
        assert said in " ".join((out.out + out.err).split())


def _summaries(*rows: tuple[str, str, int]) -> pd.DataFrame:
    """Run summaries of (name, status, analyses) rows, each run at /r/NAME."""
    table = pd.DataFrame(columns=SUMMARY_COLUMNS, index=range(len(rows)), dtype=object)
    for i, (name, status, analyses) in enumerate(rows):
        table.loc[i, ["run", "status", "analyses", "path"]] = [name, status, analyses, f"/r/{name}"]
    return table


def test_the_preload_reads_and_draws_the_curves_the_runs_page_opens_on(monkeypatch):
    """The most informative readable run (the sidebar's first): its eval-pass curves read
    into their cache and drawn as the Runs page draws them first (accuracy)."""
    from memdash.dashboard import charts

    calls = []
    monkeypatch.setattr(data, "trace_sources", lambda path: ["eval", "train"])
    monkeypatch.setattr(data, "curves", lambda path, source: calls.append((path, source)) or 7)
    monkeypatch.setattr(charts, "training_curves", lambda c, *, metric: calls.append((c, metric)))
    serve.first_chart(
        _summaries(
            ("a", "complete", 1), ("b", "complete", 3), ("c", "error", 9), ("d", "created", 9)
        )
    )
    assert calls == [(Path("/r/b"), "eval"), (7, "accuracy")]  # b: 3 analyses, readable
    calls.clear()
    serve.first_chart(_summaries(("c", "error", 9)))  # nothing readable: nothing read
    monkeypatch.setattr(data, "trace_sources", lambda path: ["train"])  # no eval pass
    serve.first_chart(_summaries(("a", "complete", 1)))
    assert calls == []


def test_the_launcher_skips_streamlits_scan_for_custom_components(monkeypatch):
    """The runtime's scan of every installed distribution for components is replaced by
    nothing, and a runtime's component manager then scans nothing."""
    from streamlit.components.v2 import manifest_scanner
    from streamlit.components.v2.component_manager import BidiComponentManager

    monkeypatch.setattr(BidiComponentManager, serve.SCAN, getattr(BidiComponentManager, serve.SCAN))

    scans = []
    monkeypatch.setattr(manifest_scanner, "scan_component_manifests", lambda: scans.append(1) or [])
    BidiComponentManager().discover_and_register_components(start_file_watching=False)
    assert scans == [1]  # Streamlit's own: one scan
    serve.skip_component_scan()
    assert getattr(BidiComponentManager, serve.SCAN) is serve._no_components
    BidiComponentManager().discover_and_register_components(start_file_watching=False)
    assert scans == [1]  # none more


def test_curves_that_fail_to_read_leave_the_preload_done(probe_module, monkeypatch, caplog):
    """A run listed readable whose trace then fails to read: the preload still counts as done
    (modules imported and mapped, summaries read), the failure at debug level only, for the
    Runs page reports it; an unexpected error is a warning, the preload done all the same."""
    from memdash.analysis.store import RunFormatError

    monkeypatch.setattr(data, "run_summaries", lambda roots: _summaries(("a", "complete", 1)))
    monkeypatch.setattr(data, "trace_sources", lambda path: ["eval"])

    def damaged(path, source):
        raise RunFormatError(path, "trace.parquet/eval-epoch_000.parquet", "damaged")

    monkeypatch.setattr(data, "curves", damaged)
    with caplog.at_level(logging.DEBUG, logger=serve.__name__):
        assert serve.preload(lambda: True, modules=[probe_module]) is True
    assert [r.levelname for r in caplog.records] == ["DEBUG"]
    assert "eval-epoch_000.parquet" in caplog.text
    probe_file = os.path.realpath(sys.modules[probe_module].__file__)
    assert inspect.modulesbyfile[probe_file] == probe_module
    caplog.clear()
    monkeypatch.setattr(data, "curves", lambda path, source: {}["a bug"])
    with caplog.at_level(logging.DEBUG, logger=serve.__name__):
        assert serve.preload(lambda: True, modules=[]) is True
    assert [r.levelname for r in caplog.records] == ["WARNING"]


def test_streamlits_missing_context_warning_is_dropped_for_the_preload_thread_alone(
    monkeypatch,
):
    import threading

    logger = logging.getLogger(serve.CONTEXT_LOGGER)
    monkeypatch.setattr(logger, "filters", list(logger.filters))  # restored afterwards
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.threadName)
    logger.addHandler(handler)
    try:
        serve.quiet_preload()
        serve.quiet_preload()  # once is enough: one filter
        for name in (serve.THREAD, "ScriptRunner.scriptThread"):
            thread = threading.Thread(target=logger.warning, args=("missing",), name=name)
            thread.start()
            thread.join()
    finally:
        logger.removeHandler(handler)
    assert seen == ["ScriptRunner.scriptThread"]
    assert sum(isinstance(f, serve._OtherThreads) for f in logger.filters) == 1


def test_the_preload_reads_the_curves_the_runs_page_opens_on(monkeypatch):
    """On the sample suite, with no run in the URL: the curves `first_chart` reads are the
    ones the Runs page then reads (and finds cached)."""
    from streamlit.testing.v1 import AppTest

    app = importlib.util.find_spec("memdash.dashboard.app").origin
    monkeypatch.setenv("MEMDASH_ROOTS", str(Path(app).parents[1] / "sample_runs"))
    read = []
    curves = data.curves
    monkeypatch.setattr(data, "curves", lambda p, s: read.append((str(p), s)) or curves(p, s))
    serve.first_chart(data.run_summaries(data.run_roots()))
    preloaded = list(read)
    read.clear()
    at = AppTest.from_file(app, default_timeout=60).run()
    assert not at.exception
    assert len(preloaded) == 1 and read == preloaded
