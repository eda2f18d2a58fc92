"""The Learn lessons against the sample suite: every sentence that states a number or a
comparison says what the chart beside it draws (checked against values computed here by hand
from the runs' own files), every chart's legend names what it shows, and every lesson cites
its paper."""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_runs"
NOISE = SAMPLES / "digits_mlp_noise20"
TIED = SAMPLES / "digits_mlp_noise20_tied"
RANDOM = SAMPLES / "digits_mlp_random_labels"
TRUE_GROUP = [SAMPLES / "groups" / "digits_true" / f"seed_{s}" for s in range(3)]
RANDOM_GROUP = [SAMPLES / "groups" / "digits_random" / f"seed_{s}" for s in range(3)]
PRETRAINED = SAMPLES / "pretraining" / "digits_from_random_labels"
SCRATCH = SAMPLES / "pretraining" / "digits_from_scratch"


def _lesson(slug):
    """A script that renders one Learn lesson (AppTest runs a function's source)."""
    from memdash.dashboard.app_pages import learn

    {lesson.slug: lesson for lesson in learn.LESSONS}[slug].render()


def _slugs() -> list[str]:
    from memdash.dashboard.app_pages import learn

    return [lesson.slug for lesson in learn.LESSONS]


@pytest.fixture
def open_lesson(monkeypatch):
    monkeypatch.setenv("MEMDASH_ROOTS", str(SAMPLES))

    def run(slug: str) -> AppTest:
        at = AppTest.from_function(_lesson, args=(slug,), default_timeout=90).run()
        assert not at.exception
        return at

    return run


def _plain(text: str) -> str:
    """Markdown as it reads: bold marks and escapes removed."""
    return text.replace("**", "").replace("\\", "")


def _sentences(at: AppTest) -> str:
    return " ".join(_plain(m.value) for m in at.markdown)


def _sentence(at: AppTest, words: str) -> str:
    """The one markdown block that contains `words`."""
    found = [_plain(m.value) for m in at.markdown if words in _plain(m.value)]
    assert len(found) == 1, (words, [_plain(m.value) for m in at.markdown])
    return found[0]


def _decoded(value):
    import base64

    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = [int(n) for n in str(value.get("shape", len(array))).split(",")]
        return array.reshape(shape)
    return value


def _figure(chart) -> tuple[list, dict]:
    """A chart's traces (SimpleNamespaces, arrays decoded) and its layout."""
    spec = json.loads(chart.proto.spec)
    traces = [
        SimpleNamespace(**{k: _decoded(v) for k, v in t.items()} | {"name": t.get("name")})
        for t in spec["data"]
    ]
    return traces, spec["layout"]


def _title(layout: dict, key: str = "title") -> str:
    title = layout.get(key) or {}
    return title.get("text", "") if isinstance(title, dict) else str(title)


def _eval_trace(path: Path) -> pd.DataFrame:
    """The run's end-of-epoch eval pass, read with pandas (the trace's default source)."""
    trace = pd.read_parquet(path / "trace.parquet")
    return trace[trace["source"] == "eval"]


def _pct(share: float) -> str:
    return f"{share:.0%}"


# ---------------------------------------------------------------- every lesson


AUTHOR_YEAR = re.compile(r"\b[A-Z][A-Za-z-]+(?: et al\.)? (?:19|20)\d\d\b")
NEURON = re.compile(r"\bneurons?\b", re.IGNORECASE)


@pytest.mark.parametrize("slug", _slugs())
def test_every_lesson_cites_its_papers_by_authors_and_year_and_says_units(slug, open_lesson):
    at = open_lesson(slug)
    (reference,) = [c.value for c in at.caption if c.value.startswith("Reference: ")]
    for part in reference.removeprefix("Reference: ").split(";"):
        assert AUTHOR_YEAR.search(part), f"{slug}: no authors and year in {part!r}"
    # one word for a network's hidden units on the Learn page: "units", never "neurons"
    words = [m.value for m in (*at.markdown, *at.info, *at.caption, *at.title)]
    words += [o for r in at.radio for o in (r.label, *r.options)]
    for chart in at.get("plotly_chart"):
        traces, layout = _figure(chart)
        words += [t.name or "" for t in traces]
        words += [_title(layout), _title(layout.get("xaxis", {})), _title(layout.get("yaxis", {}))]
    assert [w for w in words if NEURON.search(w.replace("neurons_zeroed", ""))] == []


# ---------------------------------------------------------------- one way to learn


def _linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al.'s linear CKA in its feature-space form, by hand."""
    x = x.astype(np.float64) - x.mean(0)
    y = y.astype(np.float64) - y.mean(0)
    cross = np.linalg.norm(y.T @ x) ** 2
    return float(cross / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def _last_layer_cka(group: list[Path], epoch: int) -> tuple[str, float]:
    """The last embedded layer and its linear CKA between seeds, mean over the 3 pairs."""
    from memdash.analysis.store import Run

    runs = [Run.open(p) for p in group]
    stored = runs[0].embedding_index()[epoch]
    layer = [name for name in runs[0].layers if name in stored][-1]
    reps = [run.embedding(epoch, layer) for run in runs]
    pairs = [(0, 1), (0, 2), (1, 2)]
    return layer, float(np.mean([_linear_cka(reps[i], reps[j]) for i, j in pairs]))


def test_one_way_to_learn_says_what_its_chart_shows_at_each_epoch(open_lesson):
    from memdash.analysis.store import Run

    at = open_lesson("one-way-to-learn")
    epochs = sorted(Run.open(TRUE_GROUP[0]).embedding_index())
    first, last = epochs[0], epochs[-1]
    gaps = {}
    for epoch in epochs:
        layer, true = _last_layer_cka(TRUE_GROUP, epoch)
        _, random = _last_layer_cka(RANDOM_GROUP, epoch)
        gaps[epoch] = true - random
    # the sample suite: at epoch 1 0.96 against 0.58, at epoch 30 0.99 against 0.58, so the
    # gap hardly moves (0.37 then 0.40): the groups do not "look more alike" at epoch 1
    assert abs(gaps[last] - gaps[first]) < 0.05
    for epoch in (last, first):
        at.select_slider(key="learn_oneway_epoch").set_value(epoch).run()
        assert not at.exception
        layer, true = _last_layer_cka(TRUE_GROUP, epoch)
        _, random = _last_layer_cka(RANDOM_GROUP, epoch)
        text = _sentence(at, "two seeds agree")
        assert f"after epoch {epoch}, two seeds agree at {true:.2f} with true labels" in text
        assert f"at {random:.2f} with random labels" in text and f"({layer})" in text
        assert f"{gaps[first]:.2f} after epoch {first}" in text
        assert f"{gaps[last]:.2f} after epoch {last}" in text
        assert "more alike" not in text and "already" in text
        # and those are the values the line chart draws at its last layer
        traces, _ = _figure(at.get("plotly_chart")[2])
        drawn = {t.name: (list(t.x)[-1], float(np.asarray(t.y)[-1])) for t in traces}
        assert drawn["true labels"][0] == layer
        assert f"{drawn['true labels'][1]:.2f}" == f"{true:.2f}"
        assert f"{drawn['random labels'][1]:.2f}" == f"{random:.2f}"


# ---------------------------------------------------------------- k-NN


def test_knn_lesson_draws_the_network_once_and_names_every_line(open_lesson):
    from memdash.dashboard.labels import label

    knn = pd.read_parquet(NOISE / "derived" / "knn.parquet")
    at = open_lesson("knn")
    for subset in ("flipped", "clean"):
        at.radio(key="learn_knn_subset").set_value(subset).run()
        assert not at.exception
        traces, _ = _figure(at.get("plotly_chart")[0])
        rows = knn[(knn["split"] == "train") & (knn["subset"] == subset)]
        layers = list(dict.fromkeys(rows["layer"]))
        # one line for the network (it does not depend on the layer) and one k-NN per layer
        assert len(traces) == 1 + len(layers) == 4  # fc1, fc2, out
        names = [t.name for t in traces]
        # a legend entry per line
        assert all(getattr(t, "showlegend", None) is not False for t in traces)
        assert len(set(names)) == len(names)
        drawn = {tuple(np.round(np.asarray(t.y, float), 6)) for t in traces}
        assert len(drawn) == len(traces)  # no line hides another
        assert [n for n in names if re.search(r"_|\bdnn\b|\bknn\b", n)] == []
        assert sum(n.startswith(label("dnn_accuracy")) for n in names) == 1
        assert all(any(n.endswith(f"at {layer}") for n in names) for layer in layers)
        # the sentence: the last epoch's values of those lines
        end = rows[rows["epoch"] == rows["epoch"].max()].set_index("layer")
        text = _sentence(at, "nearest neighbours vote")
        assert f"After epoch {int(rows['epoch'].max())}" in text
        assert f"given label on {_pct(end['dnn_accuracy'].iloc[0])}" in text
        for layer in layers:
            assert f"{_pct(end.loc[layer, 'knn_true_accuracy'])} at {layer}" in text
        assert "30 nearest" in text  # k of the analysis, from the manifest


# ---------------------------------------------------------------- localization


def test_localization_tied_view_draws_bars_and_says_what_they_show(open_lesson):
    result = json.loads((TIED / "run.json").read_text())["example_tied_dropout"]
    at = open_lesson("localization")
    at.radio(key="learn_loc_view").set_value("example-tied dropout").run()
    assert not at.exception
    traces, layout = _figure(at.get("plotly_chart")[0])
    assert {t.type for t in traces} == {"bar"}  # not a line through two categories
    assert _title(layout)
    bars = {t.name: dict(zip(t.x, np.asarray(t.y, float), strict=True)) for t in traces}
    assert bars["flipped"] == pytest.approx(
        {"kept": result["keep"]["noisy_acc"], "dropped": result["drop"]["noisy_acc"]}
    )
    text = _sentence(at, "memorization units")
    for kind, key in (("flipped", "noisy_acc"), ("clean", "clean_acc"), ("test", "test_acc")):
        keep, drop = _pct(result["keep"][key]), _pct(result["drop"][key])
        assert f"{kind} examples from {keep} to {drop}" in text or (
            kind == "test" and f"test accuracy from {keep} to {drop}" in text
        )
    # by hand: flipped 100% -> 2%, test 75% -> 93% in the sample suite
    assert "from 100% to 2%" in text and "from 75% to 93%" in text


# ---------------------------------------------------------------- Arpit et al.


def _mean_at_last_epoch(group: list[Path], column: str) -> tuple[int, float]:
    """The group's mean of `column` over training examples at the last epoch, by hand."""
    values = []
    for path in group:
        trace = _eval_trace(path)
        examples = pd.read_parquet(path / "examples.parquet")
        train = set(examples.loc[examples["split"] == "train", "example_id"])
        last = int(trace["epoch"].max())
        rows = trace[(trace["epoch"] == last) & trace["example_id"].isin(train)]
        values.append(float(rows[column].mean()))
    return last, float(np.mean(values))


def test_arpit_lesson_titles_its_histogram_sets_bars_apart_and_orders_legends_alike(
    open_lesson,
):
    at = open_lesson("arpit-measures")
    for epoch in (1, 5):
        at.slider(key="learn_arpit_epoch").set_value(epoch).run()
        assert not at.exception
        easiness, curves = at.get("plotly_chart")
        bars, layout = _figure(easiness)
        lines, _ = _figure(curves)
        assert f"after epoch {epoch}" in _title(layout) and "3 seeds" in _title(layout)
        assert layout.get("barmode") == "group"  # side by side: no bar hides another
        assert [t.name for t in bars] == [t.name for t in lines] == ["true labels", "random labels"]
    for measure in ("loss_sensitivity", "critical"):
        at.radio(key="learn_arpit_measure").set_value(measure).run()
        last, true = _mean_at_last_epoch(TRUE_GROUP, measure)
        _, random = _mean_at_last_epoch(RANDOM_GROUP, measure)
        text = _sentence(at, "averaged over the seeds")
        assert f"After epoch {last}" in text
        assert f"{random:.2f} with random labels against {true:.2f} with true labels" in text


# ---------------------------------------------------------------- random-label pre-training


def _accuracy_curve(path: Path, split: str) -> pd.Series:
    """Accuracy by epoch of the eval trace on the test set, the clean or the flipped
    training examples (canaries left out)."""
    trace = _eval_trace(path)
    examples = pd.read_parquet(path / "examples.parquet")
    train = (examples["split"] == "train") & ~examples["is_canary"]
    chosen = {
        "test": examples["split"] == "test",
        "train (clean)": train & ~examples["is_noisy"],
        "train (flipped)": train & examples["is_noisy"],
    }[split]
    rows = trace[trace["example_id"].isin(set(examples.loc[chosen, "example_id"]))]
    return rows.groupby("epoch")["correct"].mean()


def _first(curve: pd.Series, level: float) -> int:
    return int(curve.index[curve.to_numpy() >= level][0])


WORDS = {"test": "test accuracy", "train (clean)": "training accuracy"}


def test_pretraining_lesson_zooms_its_axis_and_reads_its_numbers_off_the_curves(open_lesson):
    at = open_lesson("random-label-pretraining")
    for split in ("test", "train (clean)"):
        at.radio(key="learn_pretrain_split").set_value(split).run()
        assert not at.exception
        pre, scratch = _accuracy_curve(PRETRAINED, split), _accuracy_curve(SCRATCH, split)
        target = 0.98 * scratch.iloc[-1]
        traces, layout = _figure(at.get("plotly_chart")[0])
        low, high = layout["yaxis"]["range"]
        # zoomed: the head start of a few epochs is not squashed onto 0..1, and the axis
        # title says where it starts
        assert 0.5 <= low < min(pre.loc[1:].min(), scratch.loc[1:].min()) and high <= 1.02
        assert f"from {low:.0%}" in _title(layout.get("yaxis", {}))
        assert any(abs(s["y0"] - target) < 1e-9 for s in layout.get("shapes", []))
        text = _sentence(at, "from scratch, and ends at")
        assert f"reaches {target:.1%} {WORDS[split]}" in text
        assert f"at epoch {_first(pre, target)} against {_first(scratch, target)}" in text
        assert f"ends at {pre.iloc[-1]:.1%} against {scratch.iloc[-1]:.1%}" in text
        (below,) = [c.value for c in at.caption if "below the zoomed axis" in c.value]
        assert f"{pre.loc[0]:.0%}" in below and f"{scratch.loc[0]:.0%}" in below


# ---------------------------------------------------------------- the other lessons


def _kinds(path: Path) -> pd.DataFrame:
    """Training examples with their kind (flipped or clean; canaries left out) and scores."""
    examples = pd.read_parquet(path / "examples.parquet")
    scores = pd.read_parquet(path / "derived" / "scores.parquet")
    train = examples[(examples["split"] == "train") & ~examples["is_canary"]]
    train = train.assign(kind=np.where(train["is_noisy"], "flipped", "clean"))
    return train.merge(scores, on="example_id")


def test_memorization_lesson_compares_test_accuracy_with_chance_from_the_data(open_lesson):
    at = open_lesson("what-is-memorization")
    at.radio(key="learn_mem_noise").set_value("all labels shuffled").run()
    test = _accuracy_curve(RANDOM, "test")
    chance = 1 / json.loads((RANDOM / "run.json").read_text())["n_classes"]
    text = _sentence(at, "After the last epoch")
    assert f"test {test.iloc[-1]:.0%}" in text
    assert f"near chance ({chance:.0%} with 10 classes)" in text
    at.radio(key="learn_mem_noise").set_value("no noise").run()
    text = _sentence(at, "After the last epoch")
    assert "chance" not in text and "shuffled" not in text  # the clean run is not at chance


def test_data_map_lesson_says_where_the_flipped_examples_sit_from_the_data(open_lesson):
    train = _kinds(NOISE)
    median = train.groupby("kind")["variability"].median()
    at = open_lesson("data-maps")
    text = _sentence(at, "median variability")
    assert f"{median['flipped']:.2f} for the flipped examples" in text
    assert f"{median['clean']:.2f} for the clean ones" in text


def _unforgettable(path: Path) -> pd.Series:
    """Per training example, by hand from the eval trace (epochs 1..E, epoch 0 is the
    untrained model): learned at some epoch and never right-then-wrong afterwards."""
    trace = _eval_trace(path)
    trace = trace[trace["epoch"] >= 1]
    grid = trace.pivot(index="epoch", columns="example_id", values="correct")
    correct = grid.sort_index().to_numpy(bool)
    forgotten = (correct[:-1] & ~correct[1:]).any(axis=0)
    return pd.Series(correct.any(axis=0) & ~forgotten, index=grid.columns)


def test_forgetting_lesson_states_the_never_forgotten_shares_of_the_data(open_lesson):
    train = _kinds(NOISE)
    kept = _unforgettable(NOISE).reindex(train["example_id"]).to_numpy()
    share = pd.Series(kept).groupby(train["kind"].to_numpy()).mean()
    at = open_lesson("forgetting")
    text = _sentence(at, "learned and never forgotten")
    assert f"{share['clean']:.0%} of the clean examples" in text  # 60% in the sample suite
    # 1 of the 287 flipped examples: shown as 0.3%, not rounded away to 0%
    assert 0 < share["flipped"] < 0.01
    assert f"{share['flipped']:.1%} of the flipped ones are learned and never forgotten" in text


def test_order_of_fitting_says_when_each_kind_is_fitted_from_the_curves(open_lesson):
    at = open_lesson("order-of-fitting")
    clean = _accuracy_curve(NOISE, "train (clean)")
    flipped = _accuracy_curve(NOISE, "train (flipped)")
    text = _sentence(at, "The clean examples reach 90%")
    assert f"reach 90% at epoch {_first(clean, 0.9)}; the flipped ones at epoch " in text
    assert f"the flipped ones at epoch {_first(flipped, 0.9)}." in text
    test = _accuracy_curve(NOISE, "test")
    assert f"highest at epoch {int(test.idxmax())} ({test.max():.0%})" in text
    at.toggle(key="learn_order_dropout").set_value(True).run()
    dropout = _accuracy_curve(SAMPLES / "digits_mlp_noise20_dropout", "train (flipped)")
    assert dropout.max() < 0.9  # by hand: dropout keeps the flipped labels from being fitted
    assert "the flipped ones never do" in _sentence(at, "The clean examples reach 90%")


def test_heldout_lesson_says_how_many_networks_on_what_share_from_the_manifest(open_lesson):
    params = json.loads((NOISE / "derived" / "manifest.json").read_text())["heldout"]["params"]
    heldout = pd.read_parquet(NOISE / "derived" / "heldout.parquet")
    train = _kinds(NOISE).merge(heldout[["example_id", "mem_score"]], on="example_id")
    share = (train["mem_score"] > 0.5).groupby(train["kind"]).mean()
    at = open_lesson("heldout-score")
    text = _sentence(at, "Above 0.50")
    assert f"{share['flipped']:.0%} of flipped examples and {share['clean']:.0%} of clean" in text
    ratio = f"{params['ratios'][0]:.0%}"  # 256 networks on 70% in the sample suite
    assert f"from {params['models']} networks, each trained on a random {ratio}" in text
    assert "70%" not in " ".join(m.value for m in at.markdown[:1])  # not a constant in the text


# ---------------------------------------------------------------- the charts they use


def test_a_zoomed_share_axis_says_where_it_starts_and_an_unzoomed_one_runs_from_0_to_1():
    from memdash.dashboard import charts

    frame = pd.DataFrame(
        {"start": ["a", "a", "b", "b"], "epoch": [1, 2, 1, 2], "accuracy": [0.9, 0.95, 0.85, 0.97]}
    )
    zoomed = charts.lines(frame, x="epoch", y="accuracy", color="start", y_range=(0.8, 1.01))
    assert list(zoomed.layout.yaxis.range) == [0.8, 1.01]
    assert zoomed.layout.yaxis.title.text == "accuracy (axis zoomed: from 80%)"
    assert zoomed.layout.yaxis.tickformat == ".0%"
    plain = charts.lines(frame, x="epoch", y="accuracy", color="start")
    assert (
        list(plain.layout.yaxis.range) == [0, 1.02] and plain.layout.yaxis.title.text == "accuracy"
    )


def test_bars_put_each_series_side_by_side_at_each_category():
    from memdash.dashboard import charts

    frame = pd.DataFrame(
        {
            "units": ["kept", "dropped", "kept", "dropped"],
            "examples": ["flipped", "flipped", "test", "test"],
            "accuracy": [1.0, 0.02, 0.75, 0.93],
        }
    )
    figure = charts.bars(frame, x="units", y="accuracy", color="examples", x_title="units")
    assert figure.layout.barmode == "group"
    assert [t.name for t in figure.data] == ["flipped", "test"]
    assert list(figure.data[0].x) == ["kept", "dropped"]
    assert list(figure.data[1].y) == [0.75, 0.93]
    assert figure.data[0].marker.color == "#D55E00"  # the palette's flipped colour
    assert figure.data[0].texttemplate == "%{y:.0%}" and figure.layout.xaxis.title.text == "units"
