"""The dashboard on a language model's run (issue 24, helper D): the Exposure page's exact and
extrapolated exposure, their agreement and the extraction rates, the Learn lesson "The Secret
Sharer", and the Runs page's words for a text run, against a tiny text run trained and
analyzed here; every number a page writes is checked against the run's own tables."""

from __future__ import annotations

import base64
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from shown import runs_table
from streamlit.testing.v1 import AppTest

from memdash.analysis.record.config import (
    DataConfig,
    ModelConfig,
    RecordConfig,
    RunConfig,
    TrainConfig,
)

FORMAT = "my pin is {d}{d}{d}"  # 1,000 secrets: the exact ranking takes a moment
CONFIG = RunConfig(
    data=DataConfig(
        dataset="text",
        n_examples=60,
        canaries=2,
        canary_repeats=(1, 4),
        reference_canaries=20,
        duplicate_sequences=2,
        duplicate_counts=(1, 4),
        seq_len=32,
        prefix_len=16,
        suffix_len=8,
        canary_format=FORMAT,
    ),
    model=ModelConfig(name="gpt", width=16, n_layers=1, n_heads=2),
    train=TrainConfig(epochs=2, optimizer="adam", lr=3e-3),
    record=RecordConfig(checkpoint_epochs=(0, 1), embed_layers=("out",), embed_epochs=(2,)),
)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    """A tiny language model's run (gpt, width 16, 1 layer, 2 epochs, 60 sequences, 2
    canaries seen once and 2 seen 4 times a epoch, 20 references), analyzed."""
    from memdash.analysis.record.text.training import train_text
    from memdash.analysis.steps.pipeline import analyze

    out = tmp_path_factory.mktemp("text") / "text_tiny"
    train_text(CONFIG, out)
    analyze(out)
    return out


@pytest.fixture
def roots(text_run, tmp_path, monkeypatch) -> Path:
    shutil.copytree(text_run, tmp_path / "text_tiny")
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    return tmp_path / "text_tiny"


def _page(name):
    """A script that renders one page (AppTest runs a function's source as its script)."""
    import importlib

    importlib.import_module(f"memdash.dashboard.app_pages.{name}").render()


def _lesson(slug):
    from memdash.dashboard.app_pages import learn

    {lesson.slug: lesson for lesson in learn.LESSONS}[slug].render()


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _plain(text: str) -> str:
    return text.replace("**", "").replace("\\", "")


def _sentence(at: AppTest, start: str) -> str:
    found = [_plain(m.value) for m in at.markdown if _plain(m.value).startswith(start)]
    assert len(found) == 1, (start, [m.value for m in at.markdown])
    return found[0]


def _decoded(value):
    """A figure's array as plotly writes it into JSON (base64 `bdata`), or the value itself."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return value


def _figure(chart) -> dict:
    """A chart's figure, its traces' x and y decoded."""
    figure = json.loads(chart.proto.spec)
    for trace in figure["data"]:
        trace.update({k: _decoded(trace[k]) for k in ("x", "y") if k in trace})
    return figure


def _exposure(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path / "derived" / "exposure.parquet")


def _groups(table: pd.DataFrame) -> pd.Series:
    """Each secret's group as the pages name it, written out here by hand."""
    canaries = "canaries seen " + table["repeats"].astype(str) + "x"
    return canaries.where(table["kind"] == "canary", "references (never trained)")


def _levels(sentence: str) -> dict[str, tuple[float, float]]:
    """'canaries seen 4x 5.77 bits (5.71)' -> {'canaries seen 4x': (5.77, 5.71)}."""
    found = re.findall(
        r"(canaries seen \d+x|references \(never trained\)) ([\d.]+) bits \(([\d.]+)\)", sentence
    )
    return {g: (float(a), float(b)) for g, a, b in found}


# ---------------------------------------------------------------- the Exposure page


def test_text_exposure_page_writes_the_medians_its_lines_draw(roots):
    at = _run(AppTest.from_function(_page, args=("exposure",), default_timeout=60))
    table = _exposure(roots)
    last = int(table["epoch"].max())
    charts = at.get("plotly_chart")
    assert len(charts) == 4  # over epochs, exact vs extrapolated, extraction twice
    assert not [r for r in at.radio if r.key == "exposure_method"]  # the classifier's control
    groups = _groups(table)
    medians = (
        table.assign(group=groups)
        .groupby(["group", "epoch"])[["exposure_exact", "exposure_extrapolation"]]
        .median()
    )
    sentence = _sentence(at, f"At epoch {last}, median exact exposure")
    levels = _levels(sentence)
    assert set(levels) == {"canaries seen 1x", "canaries seen 4x", "references (never trained)"}
    for group, (exact, extrapolated) in levels.items():
        assert exact == pytest.approx(medians.loc[(group, last), "exposure_exact"], abs=0.005)
        assert extrapolated == pytest.approx(
            medians.loc[(group, last), "exposure_extrapolation"], abs=0.005
        )
    # the lines are those medians, a solid (exact) and a dashed (extrapolated) line a group
    figure = _figure(charts[0])
    lines = [t for t in figure["data"] if t.get("x") and t["x"][0] is not None]
    assert len(lines) == 6
    solid = {t["name"]: t["y"] for t in lines if t["line"]["dash"] == "solid"}
    for group, ys in solid.items():
        assert np.allclose(ys, medians.loc[group, "exposure_exact"].to_numpy())
    names = {t["name"] for t in figure["data"]}
    assert "exact (rank among all secrets)" in names  # each method named in the legend
    assert "extrapolated (skew-normal fit to log-perplexities)" in names
    ceiling = float(table["ceiling"].iloc[0])
    assert np.log2(1000) == pytest.approx(ceiling)
    notes = [a["text"] for a in figure["layout"]["annotations"]]
    assert f"ceiling log2|R| = {ceiling:.2f}" in notes and "chance: log2(e) = 1.44" in notes


def test_text_exposure_controls_change_what_the_sentence_says(roots):
    at = _run(AppTest.from_function(_page, args=("exposure",), default_timeout=60))
    table = _exposure(roots).assign(group=lambda t: _groups(t))
    at.select_slider(key="epoch").set_value(0)
    at.radio(key="exposure_statistic").set_value("mean")
    at.radio(key="exposure_text_extrapolation").set_value("exposure_extrapolation_log")
    _run(at)
    means = (
        table[table["epoch"] == 0]
        .groupby("group")[["exposure_exact", "exposure_extrapolation_log"]]
        .mean()
    )
    levels = _levels(_sentence(at, "At epoch 0, mean exact exposure"))
    for group, (exact, extrapolated) in levels.items():
        assert exact == pytest.approx(means.loc[group, "exposure_exact"], abs=0.005)
        assert extrapolated == pytest.approx(
            means.loc[group, "exposure_extrapolation_log"], abs=0.005
        )
    fits = pd.read_parquet(roots / "derived" / "exposure_fits.parquet")
    fit = fits[(fits["epoch"] == 0) & (fits["space"] == "log_loss")].iloc[0]
    note = next(c.value for c in at.caption if c.value.startswith("Epoch 0: skew-normal"))
    assert "logarithms of the log-perplexities" in note and f"shape {fit['shape']:.3g}" in note


def test_exact_against_extrapolated_counts_the_secrets_in_the_band(roots):
    at = _run(AppTest.from_function(_page, args=("exposure",), default_timeout=60))
    table = _exposure(roots)
    rows = table[table["epoch"] == table["epoch"].max()]
    ceiling = float(rows["ceiling"].iloc[0])
    below = rows[rows["exposure_exact"] < ceiling - 1]
    agree = int(((below["exposure_extrapolation"] - below["exposure_exact"]).abs() <= 1).sum())
    sentence = _sentence(at, "Below log2|R| - 1")
    assert f"= {ceiling - 1:.2f} bits, {agree} of {len(below)} secrets lie within 1 bit" in sentence
    figure = _figure(at.get("plotly_chart")[1])
    shapes = {s.get("name"): s for s in figure["layout"]["shapes"]}
    edge = ceiling - 1
    assert shapes["y = x"]["x0"] == 0 and shapes["y = x"]["y1"] == shapes["y = x"]["x1"]
    band = shapes["within 1 bit, below log2|R| - 1"]["path"]
    assert band == f"M 0,-1 L {edge},{edge - 1} L {edge},{edge + 1} L 0,1 Z"
    points = [t for t in figure["data"] if t.get("mode") == "markers"]
    assert sum(len(t["x"]) for t in points) == len(rows)  # every canary and reference
    assert points[0]["name"] == "references (never trained)"  # drawn underneath


def test_extraction_by_copies_pools_the_runs_table(roots):
    at = _run(AppTest.from_function(_page, args=("exposure",), default_timeout=60))
    extraction = pd.read_parquet(roots / "derived" / "extraction.parquet")
    last = extraction[extraction["epoch"] == extraction["epoch"].max()]
    sentences = [_plain(m.value) for m in at.markdown if "by copies per epoch" in m.value]
    assert len(sentences) == 2
    for sentence, kinds, untrained in (
        (sentences[0], ["train", "duplicate"], "test"),
        (sentences[1], ["canary"], "reference"),
    ):
        pooled = last[last["kind"].isin(kinds)].groupby("copies")[["extracted", "n"]].sum()
        for copies, row in pooled.iterrows():
            assert f"{copies}x: {row['extracted']:,} of {row['n']:,}" in sentence
        share = last.loc[last["kind"] == untrained, "extracted_share"].iloc[0]
        assert sentence.endswith(f"(never trained): {share:.0%}.")
    for chart in at.get("plotly_chart")[2:]:
        layout = _figure(chart)["layout"]
        assert layout["xaxis"]["type"] == "log" and "log2" in layout["xaxis"]["title"]["text"]


def test_without_the_exact_ranking_only_the_extrapolation_is_drawn(roots):
    """A format too large to rank (or a tokenizer that merges digits): the exposure step
    writes only the extrapolation, and the page and lesson say so instead of drawing a rank."""
    from memdash.analysis.store import Run

    table = _exposure(roots)
    table = table.assign(exact_available=False, exposure_exact=np.nan, rank=0)
    Run.open(roots).write_derived("exposure.parquet", table)
    at = _run(AppTest.from_function(_page, args=("exposure",), default_timeout=60))
    assert len(at.get("plotly_chart")) == 3  # no exact against extrapolated
    assert any("No exact exposure" in i.value for i in at.info)
    sentence = _sentence(at, f"At epoch {int(table['epoch'].max())}, median extrapolated")
    assert "exact" not in sentence
    names = {t["name"] for t in _figure(at.get("plotly_chart")[0])["data"]}
    assert "exact (rank among all secrets)" not in names
    at = _run(AppTest.from_function(_lesson, args=("secret-sharer",), default_timeout=60))
    assert any("no exact exposure" in i.value for i in at.info) and not at.get("plotly_chart")


def test_the_classifier_exposure_page_keeps_its_controls(canary_run, tmp_path, monkeypatch):
    from memdash.analysis.steps.pipeline import analyze

    shutil.copytree(canary_run, tmp_path / "canaries")
    analyze(tmp_path / "canaries", only=["exposure"])
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    at = _run(AppTest.from_function(_page, args=("exposure",), default_timeout=60))
    assert at.radio(key="exposure_method").value == "exposure_interpolation"
    assert len(at.get("plotly_chart")) == 2  # the boxes at an epoch and the lines over epochs
    assert not [m for m in at.markdown if "exact exposure" in m.value]


# ---------------------------------------------------------------- the lesson


def test_the_secret_sharer_is_a_lesson(roots):
    from memdash.dashboard.app_pages import learn

    lesson = {x.slug: x for x in learn.LESSONS}["secret-sharer"]
    assert lesson.title == "The Secret Sharer"


def test_the_lesson_says_what_its_chart_shows_and_follows_its_epoch(roots):
    at = _run(AppTest.from_function(_lesson, args=("secret-sharer",), default_timeout=60))
    (reference,) = [c.value for c in at.caption if c.value.startswith("Reference: ")]
    assert "Carlini et al. 2019" in reference and "Carlini et al. 2023" in reference
    table = _exposure(roots).assign(group=lambda t: _groups(t))
    said = {}
    for epoch in (2, 0):
        if epoch != 2:
            at.select_slider(key="learn_secret_sharer_epoch").set_value(epoch)
            _run(at)
        sentence = _sentence(at, f"After epoch {epoch}, among the 1,000 secrets")
        rows = table[table["epoch"] == epoch]
        for group, g in rows.groupby("group"):
            words = f"{len(g)} {group}: {g['exposure_exact'].median():.1f} bits (rank "
            assert words + f"{g['rank'].median():,.0f})" in sentence
        said[epoch] = sentence
        # the chart's points are the secrets' exact exposures at that epoch
        figure = _figure(at.get("plotly_chart")[0])
        xs = sorted(x for t in figure["data"] if t.get("mode") == "markers" for x in t["x"])
        assert np.allclose(xs, sorted(rows["exposure_exact"]))
        assert figure["layout"]["title"]["text"].endswith(f"epoch {epoch}")
        extraction = _sentence(at, "Prompted with “my pin is”")
        for repeats in (4, 1):
            g = rows[(rows["kind"] == "canary") & (rows["repeats"] == repeats)]
            assert f"{int(g['extracted'].sum())} of {len(g)} canaries seen {repeats}x" in extraction
    assert said[0] != said[2]
    ticks = figure["layout"]["xaxis2"]["ticktext"]
    assert ticks == ["1", "10", "100", "1,000"]  # the ranks among the 10^3 secrets


def test_the_lesson_says_which_command_makes_a_text_run(tiny_run, tmp_path, monkeypatch):
    shutil.copytree(tiny_run, tmp_path / "tiny")  # a classifier's run only
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    at = _run(AppTest.from_function(_lesson, args=("secret-sharer",), default_timeout=60))
    assert any("make sample-runs" in w.value for w in at.warning)
    (code,) = [c.value for c in at.code]
    assert code.startswith("memdash train --dataset text") and "--canaries" in code
    assert "memdash analyze" in code and not at.get("plotly_chart")


def test_the_lesson_asks_for_the_analysis_of_an_unanalyzed_text_run(
    text_run, tmp_path, monkeypatch
):
    run = tmp_path / "text_tiny"
    shutil.copytree(text_run, run)
    shutil.rmtree(run / "derived")
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    at = _run(AppTest.from_function(_lesson, args=("secret-sharer",), default_timeout=60))
    assert [c.value for c in at.code] == ["memdash analyze text_tiny"]


# ---------------------------------------------------------------- the Runs page


def test_the_runs_page_names_a_text_runs_kind(roots):
    at = _run(AppTest.from_function(_page, args=("runs",), default_timeout=60))
    row = runs_table(at).iloc[0]
    n = len(pd.read_parquet(roots / "examples.parquet"))
    assert row["model"] == "language model: gpt" and row["noise"] == "n/a"
    assert row["corruption"] == "canaries, duplicated sequences"
    assert row["dataset"] == f"text: synthetic, {n} sequences, byte tokenizer"
    assert not {"modality", "canaries", "path"} & set(runs_table(at).columns)
    assert at.radio(key="runs_metric").options == ["share extractable", "mean token loss"]
    captions = " ".join(c.value for c in at.caption)
    assert "extractable" in captions and "flipped examples" not in captions
    (chosen,) = at.multiselect(key="runs_chosen").options
    assert chosen.startswith("text_tiny (language model: gpt; text: synthetic")


def test_text_runs_lists_language_models_with_canaries_first(text_run, tiny_run, tmp_path):
    from memdash.analysis.record.text.training import train_text
    from memdash.dashboard.data.roots import text_runs

    shutil.copytree(text_run, tmp_path / "b_canaries")
    shutil.copytree(tiny_run, tmp_path / "classifier")
    plain = replace(
        CONFIG,
        data=replace(CONFIG.data, canaries=0),
        train=replace(CONFIG.train, epochs=1),
        record=replace(CONFIG.record, checkpoint_epochs=(0,), embed_epochs=(1,)),
    )
    train_text(plain, tmp_path / "a_plain")
    assert [p.name for p in text_runs((str(tmp_path),))] == ["b_canaries", "a_plain"]


# ---------------------------------------------------------------- the charts alone


def test_an_extrapolation_past_twice_the_ceiling_turns_the_axis_logarithmic():
    from memdash.dashboard.charts.exposure import text_exposure_over_epochs, text_exposure_summary

    table = pd.DataFrame(
        {
            "epoch": [0, 0, 1, 1],
            "example_id": [0, 1, 0, 1],
            "kind": ["canary", "reference"] * 2,
            "repeats": [4, 0] * 2,
            "exposure_exact": [2.0, 1.0, 9.9, 1.2],
            "exposure_extrapolation": [2.1, 1.1, 80.0, 1.3],
        }
    )
    methods = ["exposure_exact", "exposure_extrapolation"]
    summary = text_exposure_summary(table, methods=methods)
    assert (
        summary["group"].tolist() == ["canaries seen 4x"] * 2 + ["references (never trained)"] * 2
    )
    kwargs = {"methods": methods, "ceiling": np.log2(1000), "epoch": 1, "statistic": "median"}
    figure = text_exposure_over_epochs(summary, **kwargs)
    assert figure.layout.yaxis.type == "log" and "log scale" in figure.layout.yaxis.title.text
    calm = summary.assign(exposure_extrapolation=summary["exposure_exact"])
    assert text_exposure_over_epochs(calm, **kwargs).layout.yaxis.type == "linear"


def test_extraction_shares_pool_one_copy_of_a_duplicate_with_the_plain_sequences():
    from memdash.dashboard.charts.exposure import extraction_shares

    extraction = pd.DataFrame(
        {
            "epoch": [3, 3, 3, 3, 2],
            "kind": ["train", "duplicate", "duplicate", "test", "train"],
            "copies": [1, 1, 8, 0, 1],
            "n": [100, 2, 2, 50, 100],
            "extracted": [1, 0, 2, 0, 0],
        }
    )
    shares = extraction_shares(extraction, epoch=3, kinds=["train", "duplicate"])
    assert shares["copies"].tolist() == [1, 8]
    assert shares["n"].tolist() == [102, 2] and shares["extracted"].tolist() == [1, 2]
    assert shares["extracted_share"].tolist() == pytest.approx([1 / 102, 1.0])
