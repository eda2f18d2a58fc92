"""The dashboard on a language model's run (issue 24, helper C): sequences drawn as text with
each token coloured by its loss (gallery, detail with its epoch slider, neighbours), the
text words of the trace scores, the Examples / Forgetting / Embeddings / Compare pages on a
text run, and the k-NN / Localization / Privacy pages saying why they do not apply; against
a tiny text run trained and analyzed here."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from plotly.colors import sample_colorscale
from streamlit.testing.v1 import AppTest

from memdash.analysis.record.config import (
    DataConfig,
    ModelConfig,
    RecordConfig,
    RunConfig,
    TrainConfig,
)
from memdash.analysis.store import Run

# a format with characters HTML acts on: the page must show them, escaped
FORMAT = "a <b> & pin {d}{d}{d}"
CONFIG = RunConfig(
    data=DataConfig(
        dataset="text",
        n_examples=60,
        canaries=2,
        canary_repeats=(1, 4),
        reference_canaries=4,
        duplicate_sequences=2,
        duplicate_counts=(1, 4),
        seq_len=32,
        prefix_len=16,
        suffix_len=8,
        canary_format=FORMAT,
    ),
    model=ModelConfig(name="gpt", width=16, n_layers=1, n_heads=2),
    train=TrainConfig(epochs=2, optimizer="adam", lr=3e-3),
    record=RecordConfig(checkpoint_epochs=(0, 1), embed_layers=("out",), embed_epochs=(0, 2)),
)
SPAN = re.compile(
    r'<span title="token (\d+): (.*?), loss ([\d.]+) nats" style="background:(rgb\([^)]*\))'
)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    """A tiny language model's run (gpt, width 16, 1 layer, 2 epochs, 60 sequences, 2+2
    canaries, 4 references, 2+2 duplicated sequences), with its scores and UMAP."""
    from memdash.analysis.record.text.training import train_text
    from memdash.analysis.steps.pipeline import analyze

    out = tmp_path_factory.mktemp("text") / "text_tiny"
    train_text(CONFIG, out)
    analyze(out, only=["scores", "umap"])
    return out


@pytest.fixture
def roots(text_run, tmp_path, monkeypatch) -> Path:
    """Two copies of the run (Compare needs two) under one root."""
    for name in ("text_tiny", "text_copy"):
        shutil.copytree(text_run, tmp_path / name)
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    return tmp_path / "text_tiny"


def _page(name):
    """A script that renders one page (AppTest runs a function's source as its script)."""
    import importlib

    importlib.import_module(f"memdash.dashboard.app_pages.{name}").render()


def _app(page: str, run: Path, example: int | None = None) -> AppTest:
    at = AppTest.from_function(_page, args=(page,), default_timeout=60)
    at.session_state["run"] = Run.open(run).name + f" ({run.name})"
    if example is not None:
        at.session_state["example"] = example
    return at


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _canary(run: Path, repeats: int) -> int:
    table = Run.open(run).examples()
    return int(table[(table["split"] == "train") & (table["canary_repeats"] == repeats)].index[0])


def _sequences(at: AppTest) -> list[str]:
    """The HTML bodies that draw a sequence (token spans)."""
    return [h.proto.body for h in at.get("html") if 'title="token 0:' in h.proto.body]


def _detail(at: AppTest) -> str:
    """The detail's sequence: the one drawn whole, without a cell's caption above it."""
    (body,) = [b for b in _sequences(at) if b.startswith('<div style="font-family')]
    return body


def _expected(run: Path, example_id: int, epoch: int) -> tuple[list[str], np.ndarray, list]:
    """A sequence's token texts, its losses at `epoch` and the colour each must have: the
    palette's sequential scale from 0 to ln V nats, computed here from the stored arrays."""
    from memdash.analysis.record.text.training import run_tokenizer
    from memdash.dashboard.palette import SEQUENTIAL

    r = Run.open(run)
    ids = [int(i) for i in r.inputs()[example_id] if i >= 0]
    losses = np.asarray(r.token_losses(epoch)[example_id][: len(ids)], np.float64)
    vmax = math.log(r.meta["text"]["vocab_size"])
    colors = sample_colorscale(SEQUENTIAL, np.clip(losses / vmax, 0, 1).tolist())
    return run_tokenizer(r).token_texts(ids), losses, colors


def _check_drawn(body: str, texts: list[str], losses: np.ndarray, colors: list) -> None:
    spans = SPAN.findall(body)
    assert [int(i) for i, *_ in spans] == list(range(len(texts)))
    for (_, shown, loss, color), text, value, expected in zip(
        spans, texts, losses, colors, strict=True
    ):
        assert html.unescape(shown) == repr(text)
        assert float(loss) == pytest.approx(value, abs=0.006)
        assert color == expected


# ---------------------------------------------------------------- the detail and its slider


def test_detail_draws_every_token_escaped_in_the_colour_of_its_loss(roots):
    canary = _canary(roots, 4)
    at = _run(_app("examples", roots, canary))
    body = _detail(at)
    assert "&lt;" in body and "&amp;" in body and "<b>" not in body  # the format, escaped
    texts, losses, colors = _expected(roots, canary, 2)  # the last epoch by default
    _check_drawn(body, texts, losses, colors)
    # the prefix (dashed) and the secret (solid) underlined, each opened by its tag
    row = Run.open(roots).examples().iloc[canary]
    assert body.count("2px dashed") == row["prefix_len"]
    assert body.count("3px solid") == row["suffix_len"]
    assert "secret ▸" in body and "prefix ▸" in body
    legends = [
        h.proto.body for h in at.get("html") if "Token loss at epoch 2 (nats)" in h.proto.body
    ]
    assert legends and f"ln {Run.open(roots).meta['text']['vocab_size']}" in legends[0]


def test_epoch_slider_recolours_the_tokens_and_the_facts_follow(roots):
    canary = _canary(roots, 4)
    at = _run(_app("examples", roots, canary))
    slider = at.select_slider(key="examples_token_epoch")
    assert list(slider.options) == ["0", "1", "2"] and slider.value == 2
    before = _detail(at)
    slider.set_value(0)
    _run(at)
    after = _detail(at)
    assert after != before
    texts, losses, colors = _expected(roots, canary, 0)
    _check_drawn(after, texts, losses, colors)
    facts = at.table[0].value.set_index("fact")["value"]
    assert float(facts["mean token loss (nats), epoch 0"]) == pytest.approx(
        np.mean(losses), abs=1e-3
    )
    row = Run.open(roots).examples().iloc[canary]
    secret = losses[row["prefix_len"] : row["prefix_len"] + row["suffix_len"]]
    assert len(secret) == 3  # the format's three digits
    assert float(facts["secret's mean token loss (nats), epoch 0"]) == pytest.approx(
        np.mean(secret), abs=1e-3
    )
    assert float(facts["log-perplexity (bits), epoch 0"]) == pytest.approx(
        np.sum(losses) / math.log(2), abs=0.06
    )
    trace = Run.open(roots).trace("eval")
    extractable = trace[(trace["epoch"] == 0) & (trace["example_id"] == canary)]["correct"]
    assert facts["extractable at epoch 0"] == ("yes" if bool(extractable.iloc[0]) else "no")
    assert facts["copies per epoch"] == "4"
    # the trajectory marks the epoch the tokens show
    spec = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert [s["x0"] for s in spec["layout"]["shapes"]] == [0]


def test_neighbours_are_the_nearest_training_sequences_drawn_as_text(roots):
    at = _run(_app("examples", roots, 0))
    r = Run.open(roots)
    points = np.asarray(r.embedding(2, "out"), np.float64)
    train = np.flatnonzero(r.examples()["split"] == "train")
    train = train[train != 0]
    distance = np.linalg.norm(points[train] - points[0], axis=1)
    nearest = train[np.argsort(distance, kind="stable")][:6]
    buttons = [b for b in at.button if b.key.startswith("examples_neighbour_")]
    shown = [int(b.key.rsplit("_", 1)[1]) for b in buttons]
    assert sorted(shown) == sorted(nearest.tolist())
    assert len(_sequences(at)) >= 1 + len(shown)  # the detail, then each neighbour as text
    buttons[0].click()
    _run(at)
    assert at.session_state["example"] == shown[0]


# ---------------------------------------------------------------- the pages on a text run


def test_examples_page_lists_texts_without_labels_and_filters_by_text(roots):
    at = _run(_app("examples", roots))
    table = at.dataframe[0].value
    assert {"text", "n_tokens", "duplicates"} <= set(table.columns)
    assert not {"label", "true_label", "is_noisy"} & set(table.columns)
    assert set(table["kind"]) == {"plain", "duplicate", "canary", "test", "reference"}
    examples = Run.open(roots).examples()
    assert (table["kind"] == "duplicate").sum() == (examples["corruption"] == "duplicate").sum()
    assert not [m for m in at.multiselect if m.key == "examples_labels"]
    at.text_input(key="examples_text").set_value("<B>")  # case-insensitive, literal
    _run(at)
    found = at.dataframe[0].value
    assert set(found["kind"]) <= {"canary", "reference"} and len(found) == 8
    # the gallery: cells of text with the score's text words, each with its open button
    gallery = at.selectbox(key="examples_gallery_score")
    assert gallery.format_func("correctness") == "extractability (share of epochs extractable)"
    cells = [b for b in at.button if b.key.startswith("examples_open_")]
    assert cells and len(_sequences(at)) >= len(cells)


def test_forgetting_page_speaks_of_extractable_sequences(roots):
    at = _run(_app("forgetting", roots, _canary(roots, 4)))
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert charts[0]["layout"]["title"]["text"] == (
        "forgetting events (extractable -> not extractable)"
    )
    text = json.dumps(charts)
    assert "given label" not in text and "flipped" not in text
    assert at.radio(key="forgetting_when").format_func("learned_epoch") == (
        "extractable for good (epoch)"
    )
    assert any(c.value.startswith("Never extractable: ") for c in at.caption)
    data_map = next(c for c in charts if "confidence against variability" in json.dumps(c))
    names = [t["name"] for t in data_map["data"]]
    assert names[: names.index("canary") + 1] == ["plain", "duplicate", "canary"]
    at.selectbox(key="forgetting_colour").set_value("duplicates")
    _run(at)
    at.radio(key="forgetting_when").set_value("learned_epoch")
    _run(at)


def test_embeddings_and_compare_work_on_text_runs(roots):
    at = _run(_app("embeddings", roots, 1))
    assert "canary repetitions per epoch" in at.selectbox(key="embeddings_colour").options
    assert any("Each point a sequence" in c.value for c in at.caption)
    at = _run(_app("compare", roots, 1))
    assert not at.warning  # two runs of the same sequences line up
    lists = [d.value for d in at.dataframe if "text" in d.value.columns]
    assert len(lists) == 2


@pytest.mark.parametrize("page", ["knn", "localization"])
def test_classifier_pages_say_in_one_sentence_why_they_do_not_apply(roots, page):
    """(Privacy applies to a text run since its estimate: tests/test_dashboard_privacy_text.py.)"""
    at = _run(_app(page, roots))
    assert len(at.info) == 1 and not at.button and not at.get("plotly_chart")
    sentence = at.info[0].value
    assert sentence.startswith("This is a language model's run: ") and sentence.count(". ") == 0
    assert {"knn": "predicted class", "localization": "flipped label"}[page] in sentence


# ---------------------------------------------------------------- words and charts alone


def test_text_labels_and_the_classifier_words_they_replace():
    from memdash.dashboard.charts import scatter
    from memdash.dashboard.charts.text import for_text_run
    from memdash.dashboard.labels import label

    assert label("correct", text=True) == "extractable"
    assert label("loss", text=True) == "mean token loss (nats)" and label("loss") == "loss (nats)"
    assert label("learned_epoch_train", text=True) == "extractable for good (epoch) (minibatches)"
    table = pd.DataFrame(
        {
            "example_id": [0, 1, 2],
            "kind": ["canary", "plain", "duplicate"],
            "variability": [0.1, 0.2, 0.3],
            "confidence": [0.5, 0.4, 0.3],
        }
    )
    figure = scatter(table, x="variability", y="confidence", color="kind")
    once = for_text_run(figure).to_plotly_json()
    twice = for_text_run(figure).to_plotly_json()
    assert once == twice  # relabelling twice changes nothing
    assert once["layout"]["yaxis"]["title"]["text"] == (
        "confidence (mean token probability over epochs)"
    )
    assert [t["name"] for t in once["data"]] == ["plain", "duplicate", "canary"]
    assert once["data"][0]["marker"]["color"] == "#0072B2"  # plain: the clean colour


def test_token_html_escapes_marks_and_cuts():
    from memdash.dashboard.charts.text import loss_colors, token_html

    body = token_html(
        ["<", "a", "\n", "&"],
        np.array([0.0, 1.0, np.nan, 9.0]),
        prefix_len=1,
        suffix_len=2,
        vmax=2.0,
    )
    assert "&lt;" in body and "&amp;" in body and "<br>" in body and "↵" in body
    assert body.count("2px dashed") == 1 and body.count("3px solid") == 2
    assert "loss no loss stored" in body and "background:#E6E6E6" in body
    colors = loss_colors(np.array([0.0, 2.0, 5.0]), 2.0)
    assert colors[1] == colors[2]  # a loss past the scale's end takes its end's colour
    assert colors[0][1] == "#FFFFFF" and colors[2][1] == "#000000"  # ink readable on both
    cut = token_html(["ab"] * 10, np.zeros(10), prefix_len=0, suffix_len=0, vmax=1, max_chars=5)
    assert cut.count('title="token') == 3 and cut.endswith("…</span></div>")


def test_runs_of_another_kind_do_not_line_up():
    from memdash.dashboard.app_pages.compare import mismatch

    a = pd.DataFrame({"text": ["x", "y"], "true_label": [0, 0]})
    assert "language model" in mismatch(a, a, text_a=True, text_b=False)
    assert mismatch(a, a, text_a=True, text_b=True) == ""
    b = a.assign(text=["x", "z"])
    assert "texts differ" in mismatch(a, b, text_a=True, text_b=True)
