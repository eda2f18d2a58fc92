"""The Proxies page and the Learn lesson "Can one run tell you what 256 runs know?" (#26):
the scoreboard and a proxy's scatter on the sample run, with numbers checked against the
run's own files; a text run refused in one line; a run without an estimate or without trace
scores told what to run; the rank gaps and the scoreboard's table by hand."""

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_runs"
NOISE = SAMPLES / "digits_mlp_noise20"


def _page(name):
    """A script that renders one page (AppTest runs a function's source as its script)."""
    import importlib

    importlib.import_module(f"memdash.dashboard.app_pages.{name}").render()


def _lesson(slug):
    from memdash.dashboard.app_pages import learn

    {lesson.slug: lesson for lesson in learn.LESSONS}[slug].render()


def _open(function, arg, monkeypatch, root: Path, **state) -> AppTest:
    monkeypatch.setenv("MEMDASH_ROOTS", str(root))
    at = AppTest.from_function(function, args=(arg,), default_timeout=90)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _values(path: Path) -> pd.DataFrame:
    """The proxies per trained example, with their kinds, read here from the run."""
    from memdash.analysis.store import Run
    from memdash.analysis.tables.examples import example_table
    from memdash.analysis.tables.proxies import proxy_values

    run = Run.open(path)
    table, _ = proxy_values(run)
    kinds = example_table(run)[["example_id", "kind"]]
    return table.merge(kinds, on="example_id")


def _spearman(values: pd.DataFrame, proxy: str) -> float:
    """Spearman of the proxy's flagged end with the memorization score, by pandas."""
    from memdash.analysis.measures.directions import LOWER, flagged_end

    both = values.dropna(subset=[proxy, "mem_score"])
    sign = -1 if flagged_end(proxy) == LOWER else 1
    return float((sign * both[proxy]).corr(both["mem_score"], method="spearman"))


def _decoded(value):
    """A packed plotly array ({"dtype", "bdata"}) as numbers; anything else as it is."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = [int(n) for n in str(value.get("shape", len(array))).split(",")]
        return array.reshape(shape)
    return value


def _charts(at: AppTest) -> list[go.Figure]:
    """The page's plotly figures, their packed arrays decoded."""
    figures = []
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        data = [{k: _decoded(v) for k, v in trace.items()} for trace in spec["data"]]
        figures.append(go.Figure(data=data, layout=spec["layout"]))
    return figures


# ---------------------------------------------------------------- the page on the sample run


def test_page_ranks_the_proxies_and_draws_the_chosen_one_against_the_score(monkeypatch):
    from memdash.dashboard.labels import label

    at = _open(_page, "proxies", monkeypatch, SAMPLES, run="digits_mlp_noise20")
    values = _values(NOISE)
    board = at.dataframe[0].value
    fixed = {"example_id", "is_noisy", "is_canary", "mem_score", "kind"}
    proxies = [c for c in values.columns if c not in fixed]
    by_label = {label(p): p for p in proxies}
    assert set(board["proxy"]) == set(by_label)  # every proxy, in words
    assert board["spearman"].is_monotonic_decreasing
    for row in board.head(3).itertuples():
        assert row.spearman == pytest.approx(_spearman(values, by_label[row.proxy]), abs=1e-9)
    assert set(board["direction"]) <= {
        "higher = harder",
        "lower = harder",
        "lower = more memorized",
    }
    # the sample run records its costs: seconds, and the same over its training loop's
    from memdash.analysis.steps.proxies import scoreboard_of
    from memdash.analysis.store import Run

    run = Run.open(NOISE)
    costs = scoreboard_of(run, write=False)[0].set_index("proxy")
    assert costs.loc["curvature", "seconds"] > 0
    shown = board.set_index("proxy").loc[label("curvature")]
    assert shown["seconds"] == pytest.approx(costs.loc["curvature", "seconds"])
    train = run.meta["timing"]["train"]
    assert shown["cost_runs"] == pytest.approx(shown["seconds"] / train)
    # the best proxy is drawn by default, a trace per kind in the palette's colours
    best = by_label[board["proxy"].iloc[0]]
    assert at.selectbox(key="proxies_choice").value == best
    (scatter,) = _charts(at)
    colours = {t.name: t.marker.color for t in scatter.data}
    assert colours == {"clean": "#0072B2", "flipped": "#D55E00", "canary": "#CC79A7"}
    drawn = values.dropna(subset=[best, "mem_score"])
    assert sum(len(t.x) for t in scatter.data) == len(drawn)
    caption = next(c.value for c in at.caption if "trained examples drawn" in c.value)
    assert f"{len(drawn):,} trained examples drawn" in caption
    assert f"counted high: {_spearman(values, best):.3f}" in caption
    models = json.loads((NOISE / "derived" / "manifest.json").read_text())["heldout"]["params"]
    assert any(f"score of {models['models']} models" in c.value for c in at.caption)


def test_choosing_a_proxy_flagged_low_redraws_it_reversed_with_its_disagreements(monkeypatch):
    from memdash.dashboard.data.proxies import rank_gaps

    at = _open(_page, "proxies", monkeypatch, SAMPLES, run="digits_mlp_noise20")
    at.selectbox(key="proxies_choice").set_value("confidence").run()
    assert not at.exception
    (scatter,) = _charts(at)
    assert tuple(scatter.layout.yaxis.range) == (1.02, 0)
    assert "lower = harder, more atypical" in scatter.layout.yaxis.title.text
    values = _values(NOISE)
    caption = next(c.value for c in at.caption if "trained examples drawn" in c.value)
    assert f"counted high: {_spearman(values, 'confidence'):.3f}" in caption
    gaps = at.dataframe[1]
    expected = rank_gaps(values, "confidence", n=20)
    assert gaps.value["example_id"].tolist() == expected["example_id"].tolist()
    assert list(gaps.proto.selection_mode) == [0]  # a row, clicked, opens its example
    assert gaps.value["rank_gap"].abs().is_monotonic_decreasing


def test_page_refuses_a_text_run_in_one_sentence(monkeypatch):
    at = _open(_page, "proxies", monkeypatch, SAMPLES, run="text_gpt_canaries")
    assert len(at.info) == 1 and not at.dataframe and not at.get("plotly_chart")
    sentence = at.info[0].value
    assert sentence.startswith("This is a language model's run: ") and sentence.count(". ") == 0


@pytest.fixture
def scored(tiny_run, tmp_path):
    """The tiny run with its trace scores and no estimate."""
    from memdash.analysis.steps.pipeline import analyze

    shutil.copytree(tiny_run, tmp_path / "tiny")
    analyze(tmp_path / "tiny", only=["scores"])
    return tmp_path / "tiny"


def test_without_an_estimate_the_page_says_what_to_run_and_ranks_by_the_flips(scored, monkeypatch):
    at = _open(_page, "proxies", monkeypatch, scored.parent)
    assert "no held-out estimate" in at.info[0].value
    assert any(c.value.startswith("memdash estimate --like ") for c in at.code)
    board = at.dataframe[0].value
    assert "spearman" not in board.columns and "precision_top" not in board.columns
    assert board["auroc_flipped"].is_monotonic_decreasing
    assert any("ranked by the AUROC of the flipped labels" in c.value for c in at.caption)
    (histogram,) = _charts(at)  # the chosen proxy by kind, in place of the scatter
    assert {t.name for t in histogram.data} >= {"clean", "flipped"}
    assert not list((scored / "derived").glob("proxies*"))  # the dashboard wrote nothing


def test_without_trace_scores_the_page_offers_the_analysis(tiny_run, tmp_path, monkeypatch):
    shutil.copytree(tiny_run, tmp_path / "tiny")
    at = _open(_page, "proxies", monkeypatch, tmp_path)
    assert "Trace scores not computed" in at.info[0].value
    assert any("memdash analyze" in c.value for c in at.code)
    assert [b.key for b in at.button] == ["proxies_compute"]


# ---------------------------------------------------------------- the lesson


def test_lesson_quotes_the_scoreboard_it_draws(monkeypatch):
    from memdash.analysis.measures.proxy_scoreboard import orient
    from memdash.dashboard.labels import label

    at = _open(_lesson, "proxies", monkeypatch, SAMPLES)
    text = " ".join(m.value.replace("**", "") for m in at.markdown)
    values = _values(NOISE)
    board, scatter = _charts(at)
    names, rhos = list(board.data[0].y), list(board.data[0].x)
    assert rhos == sorted(rhos, reverse=True)
    best = at.selectbox(key="learn_proxies_choice").value
    assert names[0] == label(best)
    assert f"{label(best)}: Spearman {_spearman(values, best):.2f}" in text
    # precision: the share of the proxy's top 5% in the ensemble's top 5% (no ties here)
    both = values.dropna(subset=[best, "mem_score"])
    k = round(0.05 * len(both))
    flagged = pd.Series(orient(best, both[best].to_numpy()), index=both.index)
    top = set(flagged.nlargest(k).index) & set(both["mem_score"].nlargest(k).index)
    assert f"Of the {k} examples {label(best)} ranks in its top 5%" in text
    assert f"{len(top) / k:.0%} are also in the ensemble's top 5%" in text
    held = pd.read_parquet(NOISE / "derived" / "heldout.parquet").set_index("example_id")
    flipped_top = both.loc[flagged.nlargest(k).index]
    share = flipped_top["is_noisy"].mean()
    assert f"{share:.0%} of them are flipped examples" in text
    in_accuracy = held.loc[flipped_top["example_id"], "in_accuracy"].mean()
    assert f"get them right {in_accuracy:.0%} of the time" in text
    canaries = values[values["kind"] == "canary"]
    assert f"median memorization score of {canaries['mem_score'].median():.2f}" in text
    # the widths finding by its title (the registry's), never by its key
    widths = "Proxies fail to track how memorization changes with model width"
    assert f"finding “{widths}”" in text and "proxies_across_widths" not in text
    assert "Lukasik et al. 2023" in text
    # the control redraws the scatter, its caption from the points it draws
    at.selectbox(key="learn_proxies_choice").set_value("aum").run()
    assert not at.exception
    assert any(
        f"Spearman of these points: {_spearman(values, 'aum'):.2f}" in c.value for c in at.caption
    )
    assert "area under the margin" in _charts(at)[1].layout.yaxis.title.text


# ---------------------------------------------------------------- by hand


def test_rank_gaps_orient_the_proxy_and_put_the_largest_gap_first():
    from memdash.dashboard.data.proxies import rank_gaps

    table = pd.DataFrame(
        {
            "example_id": [0, 1, 2, 3, 4],
            "kind": ["clean", "flipped", "flipped", "clean", "canary"],
            "mem_score": [0.0, 0.1, 0.9, 0.5, np.nan],
            "confidence": [0.9, 0.1, 0.5, 0.3, 0.2],
        }
    )
    # confidence is flagged low: flagged ranks 1, 4, 2, 3 -> 25, 100, 50, 75; memorization
    # ranks 1, 2, 4, 3 -> 25, 50, 100, 75; example 4 has no score and is left out
    gaps = rank_gaps(table, "confidence", n=3)
    assert gaps["example_id"].tolist() == [1, 2, 0]
    assert gaps["proxy_percentile"].tolist() == [100.0, 50.0, 25.0]
    assert gaps["ensemble_percentile"].tolist() == [50.0, 100.0, 25.0]
    assert gaps["rank_gap"].tolist() == [50.0, -50.0, 0.0]
    with pytest.raises(ValueError, match="'mem_score' is not a proxy of this table; valid: "):
        rank_gaps(table, "mem_score", n=3)
    with pytest.raises(ValueError, match="n must be at least 1, got 0"):
        rank_gaps(table, "confidence", n=0)


def test_board_table_speaks_in_words_and_leaves_out_empty_columns():
    from memdash.dashboard.app_pages.proxies import board_table

    board = pd.DataFrame(
        {
            "proxy": ["knn_disagreement@fc1", "neurons_zeroed"],
            "direction": ["higher", "lower"],
            "n": [100, 40],
            "spearman": [0.61234, 0.5],
            "spearman_lo": [0.5, 0.3],
            "spearman_hi": [0.7, 0.6],
            "auroc_flipped": [0.9, 0.8],
            "auroc_canary": [np.nan, np.nan],
            "precision_top": [0.2, 0.0],
            "seconds": [1.5, np.nan],
            "cost_runs": [0.5, np.nan],
        }
    )
    shown = board_table(board)
    assert shown["proxy"].tolist() == ["k-NN disagreement at fc1", "units zeroed to flip"]
    assert shown["direction"].tolist() == ["higher = harder", "lower = more memorized"]
    assert shown["interval"].tolist() == ["0.50 to 0.70", "0.30 to 0.60"]
    assert "auroc_canary" not in shown.columns and "seconds" in shown.columns
