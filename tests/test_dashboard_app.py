"""AppTest of every dashboard page against a small run, with interactions."""

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


@pytest.fixture
def roots(tiny_run, tmp_path, monkeypatch):
    shutil.copytree(tiny_run, tmp_path / "tiny")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    return tmp_path


def test_runs_page_lists_runs_and_draws_curves(roots):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Runs"
    table = at.dataframe[0].value
    assert set(table["run"]) == {"tiny", "broken"}
    assert table.set_index("run").loc["tiny", "status"] == "complete"
    # the broken run gets its own message; the good one still works
    assert any("broken" in e.value and "not valid JSON" in e.value for e in at.error)
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    assert '"train (flipped)"' in charts[0].proto.spec


def test_runs_page_interactions(roots):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert at.radio(key="runs_source").options == ["eval", "train"]
    at.radio(key="runs_metric").set_value("loss").run()
    assert not at.exception
    assert '"loss"' in at.get("plotly_chart")[0].proto.spec
    at.radio(key="runs_source").set_value("train").run()
    assert not at.exception and len(at.get("plotly_chart")) == 1
    at.multiselect(key="runs_chosen").set_value([]).run()
    assert not at.get("plotly_chart")
    assert any("Choose at least one run" in i.value for i in at.info)


def test_empty_root_explains_how_to_make_a_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "memdash train" in at.info[0].value
