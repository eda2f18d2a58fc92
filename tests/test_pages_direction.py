"""Which end of each score means memorized, read the same way by every page, and the small
defects of the Compare, Findings, Forgetting, Embeddings and Runs pages (issue 23's tour).

Pure tests of the helpers on hand-made tables, and AppTests of the pages on the sample suite.
"""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from memdash.dashboard.labels import (
    DIRECTIONS,
    HIGHER,
    LOWER,
    direction_text,
    memorized_end,
    ranking_text,
)
from memdash.dashboard.palette import KIND_COLORS

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "app.py")
SAMPLES = ROOT / "sample_runs"


# --- each score's direction, from the one label dictionary --------------------------------


def test_every_score_a_page_offers_has_a_direction_and_the_rankings_agree_with_it():
    from memdash.dashboard.app_pages.common import SCORES, flagged_first

    assert set(SCORES) <= set(DIRECTIONS)
    # each score's meaning is one sentence of text (the help of tables and selectors)
    assert all(isinstance(meaning, str) and meaning for meaning in SCORES.values())
    # the memorization scores and their ends (Feldman & Zhang; Maini et al.; Carlini et al.)
    assert memorized_end("mem_score") == HIGHER
    assert memorized_end("neurons_zeroed") == LOWER
    assert memorized_end("vulnerability") == HIGHER
    # difficulty and fit are not memorization: a flipped example the network has NOT fit has
    # low confidence and few forgetting events, one it has memorized high confidence
    for score in ("confidence", "forgetting_events", "aum", "correctness", "learned_epoch"):
        assert memorized_end(score) is None, score
    assert memorized_end("not_a_score") is None
    assert direction_text("mem_score") == "higher = more memorized"
    assert direction_text("neurons_zeroed") == "lower = more memorized"
    assert direction_text("confidence") == "not a memorization score"
    # the gallery ranks from the flagged end the dictionary gives, and says which end it is
    table = pd.DataFrame({"neurons_zeroed": [3.0, 1.0, 2.0], "aum": [0.5, -1.0, 2.0]})
    table["example_id"] = [10, 11, 12]
    assert flagged_first(table, "neurons_zeroed", 2)["example_id"].tolist() == [11, 12]
    assert flagged_first(table, "aum", 1)["example_id"].tolist() == [11]
    assert ranking_text("mem_score") == "Most memorized first (higher = more memorized)"
    assert ranking_text("forgetting_events_train").startswith(
        "Highest forgetting events (minibatches) first: the hard, atypical end"
    )


def _five(score, a, b):
    """Five examples paired across two runs (as compare.paired makes them)."""
    return pd.DataFrame(
        {
            "example_id": range(5),
            "kinds": ["clean", "flipped", "clean", "flipped", "clean"],
            "label": [0, 1, 2, 3, 4],
            "true_label": [0, 2, 2, 0, 4],
            f"{score} A": a,
            f"{score} B": b,
        }
    )


def test_compare_counts_read_a_higher_is_memorized_score_upwards():
    from memdash.dashboard.charts.compare import one_run_only

    both = _five("mem_score", [0.9, 0.1, 0.8, 0.6, 0.5], [0.2, 0.7, 0.9, 0.4, 0.1])
    # above 0.5: A holds 0, 2, 3 (0.5 itself is not above), B holds 1, 2
    only_a, only_b = one_run_only(both, "mem_score", 0.5, HIGHER)
    assert only_a["example_id"].tolist() == [0, 3]
    assert only_b["example_id"].tolist() == [1]


def test_compare_counts_read_a_lower_is_memorized_score_downwards():
    from memdash.dashboard.charts.compare import one_run_only

    both = _five("neurons_zeroed", [1, 5, 2, 8, 3], [6, 2, 1, 9, 4])
    # below 3: A holds 0, 2 (3 itself is not below), B holds 1, 2
    only_a, only_b = one_run_only(both, "neurons_zeroed", 3, LOWER)
    assert only_a["example_id"].tolist() == [0]
    assert only_b["example_id"].tolist() == [1]


def test_compare_words_say_memorized_only_for_a_memorization_score():
    from memdash.dashboard.app_pages.compare import reading

    assert reading("mem_score") == (HIGHER, "memorized")
    assert reading("neurons_zeroed") == (LOWER, "memorized")
    assert reading("confidence") == (LOWER, "low")  # the hard end, in neutral words
    assert reading("forgetting_events") == (HIGHER, "high")


def _paired_chart_points(fig):
    """Example id -> (x, y) of every kind trace's point, and the ring traces by name."""
    points, rings = {}, {}
    for trace in fig.data:
        if trace.customdata is None:
            rings[trace.name] = list(zip(trace.x, trace.y, strict=True))
            continue
        for row, x, y in zip(trace.customdata, trace.x, trace.y, strict=True):
            points[int(row[0])] = (x, y)
    return points, rings


def _lines(fig):
    vertical = [s.x0 for s in fig.layout.shapes if s.x0 == s.x1]
    horizontal = [s.y0 for s in fig.layout.shapes if s.y0 == s.y1]
    return vertical, horizontal


def test_paired_chart_rings_and_lines_show_the_counts_of_the_lists():
    """The whole-number score is jittered; the threshold lines sit between whole numbers, so
    a point is right of the line exactly when it is counted, and the rings (one trace per
    side, its count in the legend) are the examples the lists hold."""
    from memdash.dashboard.charts import paired_scatter

    both = _five("forgetting_events", [4, 5, 0, 7, 4], [0, 6, 0, 1, 5])
    fig = paired_scatter(both, score="forgetting_events", threshold=4, end=HIGHER, word="high")
    (vline,), (hline,) = _lines(fig)
    assert vline == hline == 4.5  # "above 4" counts 5 and more
    points, rings = _paired_chart_points(fig)
    # above 4: A holds 1, 3 (4 itself is not above), B holds 1, 4
    assert set(rings) == {"high in A only (1)", "high in B only (1)"}
    for i, (x, y) in points.items():
        a, b = both.loc[i, "forgetting_events A"], both.loc[i, "forgetting_events B"]
        assert (x > vline) == (a > 4) and (y > hline) == (b > 4) and abs(x - a) <= 0.3
    assert rings["high in A only (1)"] == [points[3]]
    assert rings["high in B only (1)"] == [points[4]]
    # a count axis has whole-number ticks: none at -0.5
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert axis.tick0 == 0 and axis.dtick >= 1 and float(axis.dtick).is_integer()
    low = paired_scatter(both, score="forgetting_events", threshold=4, end=LOWER, word="low")
    assert _lines(low) == ([3.5], [3.5])  # "below 4" counts 3 and less
    # below 4: A holds 2, B holds 0, 2, 3; a side with none draws no ring
    assert set(_paired_chart_points(low)[1]) == {"low in B only (2)"}


def test_paired_chart_draws_a_kind_that_differs_between_runs_in_the_palette_colour():
    from memdash.dashboard.charts import paired_scatter

    both = _five("confidence", [0.1, 0.2, 0.3, 0.9, 0.5], [0.9, 0.1, 0.4, 0.2, 0.6])
    both["kinds"] = ["clean", "flipped", "flipped in A, clean in B", "clean in A, flipped in B"] + [
        "clean"
    ]
    fig = paired_scatter(both, score="confidence", threshold=0.35, end=LOWER, word="low")
    by_name = {t.name: t for t in fig.data if t.customdata is not None}
    for name in ("flipped", "flipped in A, clean in B", "clean in A, flipped in B"):
        assert by_name[name].marker.color == KIND_COLORS["flipped"], name
    # the two mixed kinds are told apart from "flipped" (and each other) by their symbol
    symbols = {by_name[n].marker.symbol for n in by_name if "flipped" in n}
    assert len(symbols) == 3
    # a share runs from 0 to 1 on both axes
    assert tuple(fig.layout.xaxis.range) == tuple(fig.layout.yaxis.range) == (0, 1.02)


def test_overlaid_histograms_draw_bars_side_by_side_in_the_legend_colours():
    """Translucent bars on top of each other mix colours no legend entry has: the groups'
    bars stand side by side, opaque, in their palette colours."""
    from memdash.dashboard.charts import histograms

    frame = pd.DataFrame({"kind": ["clean"] * 4 + ["flipped"] * 2, "v": [0, 1, 1, 2, 1, 2]})
    fig = histograms(frame, value="v", group="kind")
    assert fig.layout.barmode == "group"
    assert all(t.opacity in (None, 1) for t in fig.data)
    assert [t.marker.color for t in fig.data] == [KIND_COLORS["clean"], KIND_COLORS["flipped"]]


def test_the_current_example_is_marked_on_a_scatter():
    from memdash.dashboard.charts import mark_example, scatter

    table = pd.DataFrame(
        {
            "example_id": [0, 1, 2],
            "kind": ["clean", "flipped", "clean"],
            "label": [0, 1, 2],
            "true_label": [0, 0, 2],
            "x": [0.1, 0.5, 0.9],
            "y": [1.0, 2.0, 3.0],
        }
    )
    fig = mark_example(scatter(table, x="x", y="y", color="kind"), table, 1, x="x", y="y")
    mark = fig.data[-1]
    assert mark.name == "example 1 (the sidebar's)"
    assert (list(mark.x), list(mark.y)) == ([0.5], [2.0])
    assert [a.text for a in fig.layout.annotations] == ["example 1"]
    unchanged = scatter(table, x="x", y="y", color="kind")
    n = len(unchanged.data)
    assert len(mark_example(unchanged, table, None, x="x", y="y").data) == n
    assert len(mark_example(unchanged, table, 7, x="x", y="y").data) == n  # not on the chart


# --- the Findings page ----------------------------------------------------------------------


def test_every_findings_figure_names_the_runs_its_finding_reads():
    from memdash.analysis.findings import REGISTRY
    from memdash.dashboard.app_pages import findings

    assert set(findings.FIGURES) <= set(REGISTRY)
    paths = {"noise": SAMPLES / "digits_mlp_noise20", "canaries": SAMPLES / "x" / "canary_run"}
    caption = findings.figure_caption("membership_follows_memorization", paths)
    assert caption == "Figure from run **digits\\_mlp\\_noise20** (20% flipped labels)."
    assert findings.figure_caption("exposure", paths) == (
        "Figure from run **canary\\_run** (canaries)."
    )
    assert findings.figure_caption("membership_follows_memorization", {}) == ""  # no "from ."
    for key in findings.FIGURES:  # every role a figure reads has words
        assert all(role in findings.ROLE_NAMES for role in REGISTRY[key].roles), key


def test_a_never_reached_fit_says_so_in_words():
    from memdash.analysis.findings import REGISTRY
    from memdash.analysis.findings.registry import Measured

    measured = Measured(
        {"clean_epoch_95": 2.0, "noise_epoch_95": 41.0, "random_epoch_95": float("nan")},
        {"last_epochs": {"clean": 60, "noise": 60, "random": 60}},
    )
    text = REGISTRY["noise_rate"].statistic(measured)
    assert text == (
        "95% of the training set fitted at epoch 2 (clean), 41 (noise), "
        "not reached in 60 epochs (random)"
    )
    assert "nan" not in text


def _page(name):
    import importlib

    importlib.import_module(f"memdash.dashboard.app_pages.{name}").render()


def _sample_page(name: str, monkeypatch, **params) -> AppTest:
    monkeypatch.setenv("MEMDASH_ROOTS", str(SAMPLES))
    at = AppTest.from_function(_page, args=(name,), default_timeout=90)
    for key, value in params.items():
        at.session_state[key] = value
    return at


def test_findings_page_captions_the_membership_figure_with_its_run(monkeypatch):
    at = _sample_page("findings", monkeypatch).run()
    at.selectbox(key="findings_choice").set_value(
        "Memorized examples are the ones membership inference exposes"
    ).run()
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert "Figure from run **digits\\_mlp\\_noise20** (20% flipped labels)." in captions
    assert not any(c.startswith("Figure from .") for c in captions)
    assert len(at.get("plotly_chart")) == 1


# --- the Compare page on the sample suite -------------------------------------------------


def _trained(name: str) -> pd.DataFrame:
    """A run's trained examples (not test, not reference canaries) and their eval-pass scores,
    read without the dashboard."""
    from memdash.analysis.store import Run
    from memdash.analysis.tables.examples import example_table

    table = example_table(Run.open(SAMPLES / name))
    return table[~table["kind"].isin(["test", "reference"])].set_index("example_id")


def _array(value) -> np.ndarray:
    """A plotly spec's array: a list, or a packed typed array (``{"dtype", "bdata"}``)."""
    if isinstance(value, dict):
        import base64

        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value, dtype=float)


def _chart(at) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def test_compare_reads_confidence_neutrally_and_its_counts_match_the_data(monkeypatch):
    """Dropout (A) leaves the flipped labels unfit (low confidence), example-tied dropout (B)
    fits them: 'low in A only' is what the data says; 'memorized in A' was backwards."""
    at = _sample_page(
        "compare", monkeypatch, run="digits_mlp_noise20_dropout", run_b="digits_mlp_noise20_tied"
    ).run()
    at.selectbox(key="compare_score").set_value("confidence").run()
    assert not at.exception, at.exception
    slider = at.slider(key="compare_threshold")
    assert "Memorized" not in slider.label and "below" in slider.label
    threshold = slider.value
    a, b = _trained("digits_mlp_noise20_dropout"), _trained("digits_mlp_noise20_tied")
    low_a, low_b = a["confidence"] < threshold, b["confidence"] < threshold
    n_a, n_b = int((low_a & ~low_b).sum()), int((low_b & ~low_a).sum())
    assert n_a > 200 and n_b == 0  # by hand from the tables, the page must agree
    texts = [m.value for m in at.markdown]
    assert any(t.startswith(f"**Low in A only: {n_a}**") for t in texts), texts
    assert any(t.startswith(f"**Low in B only: {n_b}**") for t in texts), texts
    assert not any("emorized in" in t for t in texts)
    assert any("not a memorization score" in c.value for c in at.caption)
    # the chart beside them rings the same examples, left of its line
    spec = _chart(at)
    rings = {t["name"]: t for t in spec["data"] if t.get("hoverinfo") == "skip"}
    assert set(rings) == {f"low in A only ({n_a})"}
    vline = next(s["x0"] for s in spec["layout"]["shapes"] if s["x0"] == s["x1"])
    assert math.isclose(vline, threshold)
    xs = _array(rings[f"low in A only ({n_a})"]["x"])
    assert len(xs) == n_a and (xs < vline).all()


def test_compare_reads_forgetting_events_neutrally_with_whole_number_thresholds(monkeypatch):
    at = _sample_page(
        "compare", monkeypatch, run="digits_mlp_noise20", run_b="digits_mlp_clean"
    ).run()
    assert not at.exception, at.exception
    at.selectbox(key="compare_score").set_value("forgetting_events").run()
    slider = at.slider(key="compare_threshold")
    assert slider.label.startswith("High when forgetting events is above")
    assert float(slider.value).is_integer()
    threshold = int(slider.value)
    a, b = _trained("digits_mlp_noise20"), _trained("digits_mlp_clean")
    high_a, high_b = a["forgetting_events"] > threshold, b["forgetting_events"] > threshold
    n_a = int((high_a & ~high_b).sum())
    assert any(m.value.startswith(f"**High in A only: {n_a}**") for m in at.markdown)
    spec = _chart(at)
    vline = next(s["x0"] for s in spec["layout"]["shapes"] if s["x0"] == s["x1"])
    assert vline == threshold + 0.5
    names = [t.get("name") for t in spec["data"]]
    assert "flipped in A, clean in B" in names
    mixed = next(t for t in spec["data"] if t.get("name") == "flipped in A, clean in B")
    assert mixed["marker"]["color"] == KIND_COLORS["flipped"]
    # the lists' score columns are headed by the run alone (the score is in the help)
    table = at.dataframe[0]
    config = json.loads(table.proto.columns)
    assert config["forgetting_events A"]["label"] == "run A"
    assert config["forgetting_events B"]["label"] == "run B"


# --- the sidebar: the example marked, an unknown example said, "/" writes ?run= ------------


def test_forgetting_and_embeddings_mark_the_sidebars_example(monkeypatch):
    at = _sample_page("forgetting", monkeypatch, run="digits_mlp_noise20", example=5).run()
    assert not at.exception
    spec = [c.proto.spec for c in at.get("plotly_chart")]
    data_map = json.loads(next(s for s in spec if "confidence against variability" in s))
    assert "example 5 (the sidebar's)" in [t.get("name") for t in data_map["data"]]
    at = _sample_page("embeddings", monkeypatch, run="digits_mlp_noise20", example=5).run()
    assert not at.exception
    umap = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "example 5 (the sidebar's)" in [t.get("name") for t in umap["data"]]


def test_an_example_id_the_run_does_not_have_is_said_in_the_sidebar(monkeypatch):
    """The sidebar counts the run's examples from examples.parquet's footer: it never reads
    the example table with its scores (a million rows on a large run)."""
    from memdash.dashboard import data

    def whole_table(path):
        raise AssertionError(f"the sidebar read {path}'s example table")

    monkeypatch.setattr(data, "examples", whole_table)
    monkeypatch.setenv("MEMDASH_ROOTS", str(SAMPLES))
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["run"] = "digits_mlp_noise20"
    at.query_params["example"] = "99999"
    at.run()
    assert not at.exception
    n = len(pd.read_parquet(SAMPLES / "digits_mlp_noise20" / "examples.parquet"))
    warnings = [w.value for w in at.sidebar.warning]
    assert any(
        "No example 99999" in w and f"0 to {n - 1:,}" in w and "none is open" in w for w in warnings
    ), warnings


def test_the_home_page_forwards_to_runs_with_the_run_in_the_url(monkeypatch):
    monkeypatch.setenv("MEMDASH_ROOTS", str(SAMPLES))
    at = AppTest.from_file(APP, default_timeout=90).run()
    assert not at.exception
    assert at.title[0].value == "Runs"
    assert at.query_params.get("run") == "digits_mlp_noise20"
    # parameters in the URL of "/" (bound to the sidebar's widgets) follow it, no traceback
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["run"] = "digits_mlp_noise20_tied"
    at.query_params["example"] = "5"
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Runs"
    assert at.sidebar.selectbox(key="run").value == "digits_mlp_noise20_tied"
    assert at.sidebar.number_input(key="example").value == 5


@pytest.mark.parametrize("score", ["mem_score", "neurons_zeroed"])
def test_compare_says_memorized_for_a_memorization_score(score, monkeypatch, tmp_path):
    """Two copies of the run with every score, one with the score shifted: the counts follow
    the score's direction (higher or lower = more memorized)."""
    import shutil

    for name in ("a", "b"):
        shutil.copytree(SAMPLES / "digits_mlp_noise20", tmp_path / name)
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    at = AppTest.from_function(_page, args=("compare",), default_timeout=90).run()
    at.selectbox(key="compare_score").set_value(score).run()
    assert not at.exception, at.exception
    slider = at.slider(key="compare_threshold")
    word = "above" if memorized_end(score) == HIGHER else "below"
    assert slider.label.startswith("Memorized when") and word in slider.label
    texts = [m.value for m in at.markdown]
    # a run and its copy: nothing is memorized in one only
    assert any(t.startswith("**Memorized in A only: 0**") for t in texts), texts
    assert np.isfinite(slider.value)
