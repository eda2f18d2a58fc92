"""AppTest of every dashboard page against a small run, with interactions."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from shown import runs_table, unescaped
from streamlit.testing.v1 import AppTest

from memdash.analysis.store import Run
from memdash.dashboard.labels import md_text

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
    table = runs_table(at)
    assert set(table["run"]) == {"tiny", "broken"}
    assert table.set_index("run").loc["tiny", "status"] == "complete"
    # the broken run gets its own message; the good one still works
    assert any("broken" in e.value and "not valid JSON" in e.value for e in at.error)
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    assert '"train (flipped)"' in charts[0].proto.spec


def test_runs_page_interactions(roots):
    at = AppTest.from_file(APP, default_timeout=60).run()
    # the trace control sits in the sidebar (shared by every page, kept in the URL)
    assert at.sidebar.radio(key="source").options == ["eval", "train"]
    assert any("end-of-epoch eval pass" in c.value for c in at.caption)
    at.radio(key="runs_metric").set_value("loss").run()
    assert not at.exception
    assert '"loss"' in at.get("plotly_chart")[0].proto.spec
    at.sidebar.radio(key="source").set_value("train").run()
    assert not at.exception and len(at.get("plotly_chart")) == 1
    assert any("training minibatches" in c.value for c in at.caption)
    # test accuracy still comes from the eval pass, the only one that sees the test set
    assert '"test"' in at.get("plotly_chart")[0].proto.spec
    at.multiselect(key="runs_chosen").set_value([]).run()
    assert not at.get("plotly_chart")
    assert any("Choose at least one run" in i.value for i in at.info)


def test_empty_root_explains_how_to_make_a_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "memdash train" in at.info[0].value


@pytest.fixture
def analyzed(tiny_run, tmp_path, monkeypatch):
    """The tiny run with scores, k-NN and a small held-out estimate."""
    from memdash.analysis.ensemble.estimate import EstimateSpec, estimate
    from memdash.analysis.steps.pipeline import analyze

    shutil.copytree(tiny_run, tmp_path / "tiny")
    analyze(tmp_path / "tiny", only=["scores", "knn"])
    estimate(tmp_path / "tiny", EstimateSpec(models=4, models_per_batch=4), workers=1)
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    return tmp_path / "tiny"


def _page(name):
    """A script that renders one page (AppTest runs a function's source as its script)."""
    import importlib

    importlib.import_module(f"memdash.dashboard.app_pages.{name}").render()


def page_test(name: str) -> AppTest:
    return AppTest.from_function(_page, args=(name,), default_timeout=60)


def test_examples_page_filters_opens_and_shows_mem_score(analyzed):
    at = page_test("examples").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 200 and {"mem_score", "confidence", "forgetting_events"} <= set(
        table.columns
    )
    # filter to flipped examples only
    at.multiselect(key="examples_kinds").set_value(["flipped"]).run()
    flipped = at.dataframe[0].value
    assert set(flipped["kind"]) == {"flipped"} and 0 < len(flipped) < 200
    # the gallery by mem_score opens an example in the detail
    at.selectbox(key="examples_gallery_score").set_value("mem_score").run()
    opener = next(b for b in at.button if b.key.startswith("examples_open_"))
    opener.click().run()
    assert not at.exception
    opened = int(opener.key.rsplit("_", 1)[1])
    assert at.session_state["example"] == opened  # the shared example (sidebar and URL)
    assert len(at.get("plotly_chart")) == 2  # the input and its trajectory
    assert any("k-NN against the network" in m.value for m in at.markdown)
    # the gallery ranks only trained examples unless asked: no test example among them
    assert at.toggle(key="examples_untrained").value is False
    # a nearest neighbour opens in turn
    neighbour = next(b for b in at.button if b.key.startswith("examples_neighbour_"))
    neighbour.click().run()
    assert not at.exception
    assert at.session_state["example"] == int(neighbour.key.rsplit("_", 1)[1]) != opened


def test_knn_page_heatmaps_follow_the_chosen_examples(analyzed):
    at = page_test("knn").run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 4  # P_SAME, MA, MD heatmaps and accuracy per layer
    assert any("leave-one-out" in c.value for c in at.caption)
    at.selectbox(key="knn_subset").set_value("flipped").run()
    assert not at.exception and len(at.get("plotly_chart")) == 4
    assert '"MD (' in at.get("plotly_chart")[2].proto.spec  # the MD heatmap, titled in words


def test_localization_page_shows_the_four_experiments(analyzed):
    from memdash.analysis.record.config import LocalizeConfig
    from memdash.analysis.steps.pipeline import LOCALIZE_STEPS, analyze

    config = LocalizeConfig(retrain_epochs=1, flip_examples=5, flip_others=16)
    analyze(analyzed, config=config, steps=LOCALIZE_STEPS)
    at = page_test("localization").run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 7
    at.radio(key="localization_group").set_value("clean_acc").run()
    assert not at.exception and len(at.get("plotly_chart")) == 7
    # units zeroed per layer: one box trace per kind, layers in forward order
    spec = at.get("plotly_chart")[-1].proto.spec
    assert '"boxmode":"group"' in spec.replace(" ", "") and '"fc1","fc2"' in spec.replace(" ", "")


def test_pages_say_which_command_computes_what_is_missing(roots):
    for name, command in (("knn", "memdash analyze"), ("exposure", "memdash analyze")):
        at = page_test(name).run()
        assert not at.exception
        assert any(command in i.value for i in at.info), name
    at = page_test("localization").run()
    assert not at.exception and any("memdash localize" in i.value for i in at.info)


def test_exposure_page_against_repetitions_and_epochs(canary_run, tmp_path, monkeypatch):
    from memdash.analysis.steps.pipeline import analyze

    shutil.copytree(canary_run, tmp_path / "c")
    analyze(tmp_path / "c", only=["exposure"])
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    at = page_test("exposure").run()
    assert not at.exception and len(at.get("plotly_chart")) == 2
    assert "ceiling log2(#refs) = 5.32" in at.get("plotly_chart")[0].proto.spec
    at.radio(key="exposure_method").set_value("exposure_extrapolation").run()
    at.select_slider(key="epoch").set_value(0).run()
    assert not at.exception
    assert "exposure at epoch 0" in at.get("plotly_chart")[0].proto.spec


def test_forgetting_page_lists_a_selection_of_the_data_map(analyzed):
    at = page_test("forgetting").run()
    assert not at.exception and len(at.get("plotly_chart")) == 3
    at.selectbox(key="forgetting_colour").set_value("correctness").run()
    at.radio(key="forgetting_when").set_value("learned_epoch").run()
    assert not at.exception
    at.session_state["forgetting_map"] = {
        "selection": {"points": [{"customdata": 3}, {"customdata": 7}]}
    }
    at.run()
    assert not at.exception
    assert any("2 selected examples" in m.value for m in at.markdown)
    assert at.dataframe[0].value["example_id"].tolist() == [3, 7]
    assert any("flipped examples' median confidence" in c.value for c in at.caption)


def test_embeddings_page_scrubs_epochs_and_opens_a_selected_point(analyzed):
    from memdash.analysis.steps.pipeline import analyze

    analyze(analyzed, only=["umap"])
    at = page_test("embeddings").run()
    assert not at.exception and len(at.get("plotly_chart")) == 1
    at.select_slider(key="epoch").set_value(0).run()
    at.selectbox(key="embeddings_colour").set_value("mem_score").run()
    assert not at.exception and "at epoch 0" in at.get("plotly_chart")[0].proto.spec
    at.session_state["embeddings_map"] = {"selection": {"points": [{"customdata": 11}]}}
    at.run()
    assert not at.exception
    assert at.dataframe[0].value["example_id"].tolist() == [11]  # the selection, openable
    assert len(at.get("plotly_chart")) == 1
    at.session_state["example"] = 11  # what clicking its row (or the point) does
    at.run()
    assert len(at.get("plotly_chart")) == 3  # the map, the example's input and trajectory


def test_compare_page_pairs_two_runs_of_the_same_examples(analyzed, tmp_path):
    from memdash.analysis.steps.pipeline import analyze

    shutil.copytree(analyzed, tmp_path / "twin")
    analyze(tmp_path / "twin", only=["scores"], force=True)
    at = page_test("compare").run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 2  # the paired scatter and the overlaid curves
    at.selectbox(key="compare_score").set_value("confidence").run()
    assert not at.exception
    # confidence is no memorization score: its lists are worded "low", not "memorized"
    assert any("Low in A only: 0" in m.value for m in at.markdown)  # a run and its copy


def test_findings_page_shows_each_finding_with_its_figure(monkeypatch):
    samples = Path(APP).parents[1] / "sample_runs"
    monkeypatch.setenv("MEMDASH_ROOTS", str(samples))
    at = page_test("findings").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 27 and set(table["verdict"]) <= {
        "holds",
        "does not hold",
        "not enough data",
    }
    at.selectbox(key="findings_choice").set_value(
        "Flipped examples are hard to learn: 1 - confidence finds them (AUROC >= 0.9)"
    ).run()
    assert not at.exception and len(at.get("plotly_chart")) == 1
    assert any("AUROC" in m.value and "holds" in m.value for m in at.markdown)
    # the language model's findings draw from the text run
    for title in (
        "A language model's exposure of a secret rises with its insertions",
        "The more often a sequence is duplicated, the more often it is extractable",
        "Extrapolated exposure agrees with the exact ranking below the ceiling",
    ):
        at.selectbox(key="findings_choice").set_value(title).run()
        assert not at.exception and len(at.get("plotly_chart")) == 1, title
        assert any("a language model with canaries" in c.value for c in at.caption), title


def _lesson(index):
    """A script that renders one Learn page."""
    from memdash.dashboard.app_pages import learn

    learn.LESSONS[index][2]()


LESSON_CONTROLS = [
    ("radio", "learn_mem_noise", "all labels shuffled", "test"),
    ("toggle", "learn_order_dropout", True, "epoch"),
    ("slider", "learn_forget_rank", 3, "forgotten"),
    ("slider", "learn_map_threshold", 0.5, "flagged"),
    ("slider", "learn_mem_threshold", 0.8, "Above 0.80"),
    ("select_slider", "learn_membership_fpr", 0.001, "With 0.1% false positives"),
    ("selectbox", "learn_proxies_choice", "curvature", None),
    ("select_slider", "learn_exposure_epoch", 0, None),
    ("select_slider", "learn_secret_sharer_epoch", 8, "After epoch 8, among the 1,000,000"),
    ("radio", "learn_knn_subset", "clean", None),
    ("radio", "learn_loc_view", "example-tied dropout", None),
    ("select_slider", "learn_oneway_epoch", 1, "after epoch 1, two seeds agree"),
    ("slider", "learn_arpit_epoch", 5, "After epoch 5"),
    ("radio", "learn_pretrain_split", "train (clean)", "from scratch"),
]


# charts per lesson where it is not one: a flipped and a clean example side by side; two
# heatmaps and their diagonals; easiness and the curves of a capacity measure
LESSON_CHARTS = {"membership": 2, "proxies": 2, "one-way-to-learn": 3, "arpit-measures": 2}


@pytest.mark.parametrize("index", range(len(LESSON_CONTROLS)))
def test_every_learn_page_explains_draws_and_reacts(index, monkeypatch):
    from memdash.dashboard.app_pages import learn

    assert len(learn.LESSONS) == len(LESSON_CONTROLS)
    monkeypatch.setenv("MEMDASH_ROOTS", str(Path(APP).parents[1] / "sample_runs"))
    at = AppTest.from_function(_lesson, args=(index,), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == learn.LESSONS[index][1]
    assert "The question" in at.info[0].value and "Reference" in at.caption[0].value
    charts = LESSON_CHARTS.get(learn.LESSONS[index][0], 1)
    assert len(at.get("plotly_chart")) == charts
    kind, key, value, text = LESSON_CONTROLS[index]
    getattr(at, kind)(key=key).set_value(value).run()
    assert not at.exception and len(at.get("plotly_chart")) == charts
    if text:
        assert any(text in m.value for m in at.markdown)


def test_a_page_computes_its_missing_results_on_request(roots):
    at = page_test("forgetting").run()
    assert any("memdash analyze" in i.value for i in at.info)
    at.button(key="forgetting_compute").click().run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 3  # the scores now exist: histograms and data map
    assert (roots / "tiny" / "derived" / "scores.parquet").is_file()


def test_forgetting_page_reads_the_chosen_trace(analyzed):
    from memdash.analysis.store import Run

    scores = Run.open(analyzed).read_derived("scores.parquet")
    picked = {"selection": {"points": [{"customdata": 3}, {"customdata": 7}]}}
    at = page_test("forgetting")
    at.session_state["forgetting_map"] = picked
    at.run()
    assert any("end-of-epoch eval pass" in c.value for c in at.caption)
    shown = at.dataframe[0].value.set_index("example_id")["forgetting_events"]
    assert shown.tolist() == scores["forgetting_events"][[3, 7]].tolist()
    # the sidebar's trace (shared state) switches every trace score to the minibatch columns
    at.session_state["source"] = "train"
    at.run()
    assert not at.exception
    assert any("training minibatches" in c.value for c in at.caption)
    shown = at.dataframe[0].value.set_index("example_id")["forgetting_events"]
    assert shown.tolist() == scores["forgetting_events_train"][[3, 7]].tolist()


def test_exposure_page_marks_fits_on_the_loss_floor(monkeypatch):
    """On the sample suite the last epoch's loss-space fit sits on the floor: the page warns
    and shades such epochs; the log-loss model has no floor and no warning."""
    samples = Path(APP).parents[1] / "sample_runs"
    monkeypatch.setenv("MEMDASH_ROOTS", str(samples))
    at = page_test("exposure")
    at.session_state["run"] = "digits_mlp_noise20"  # the shared run (sidebar and URL)
    at.run()
    assert any("digits_mlp_noise20" in unescaped(c.value) for c in at.caption)
    at.radio(key="exposure_method").set_value("exposure_extrapolation").run()
    assert not at.exception
    assert any("sits on the references' loss floor" in w.value for w in at.warning)
    charts = at.get("plotly_chart")
    assert "skew-normal fit on the references' loss floor" in charts[0].proto.spec
    assert "fit on the references' loss floor" in charts[1].proto.spec
    assert '"type":"log"' in charts[1].proto.spec.replace(" ", "")
    at.radio(key="exposure_method").set_value("exposure_extrapolation_log").run()
    assert not at.exception and not at.warning
    assert any("log-losses" in c.value for c in at.caption)


def test_opening_from_a_table_row_or_a_clicked_point_sets_the_current_example():
    """The on_select callbacks of tables and charts (AppTest cannot fire them)."""
    import streamlit as st

    from memdash.dashboard import state

    st.session_state.clear()
    st.session_state["table"] = {"selection": {"rows": [2], "columns": []}}
    state.open_selected("table", [10, 11, 12, 13])
    assert st.session_state["example"] == 12
    st.session_state["chart"] = {"selection": {"points": [{"customdata": {"0": 41.0}}]}}
    state.open_selected("chart", [])
    assert st.session_state["example"] == 41
    # a lasso of several points lists them and opens none
    st.session_state["chart"] = {
        "selection": {"points": [{"customdata": [5, "clean"]}, {"customdata": [6, "clean"]}]}
    }
    state.open_selected("chart", [])
    assert st.session_state["example"] == 41
    assert state.current_example(30) is None and state.current_example(50) == 41
    st.session_state.clear()


PAGES = (
    *("runs", "examples", "forgetting", "embeddings", "knn", "localization", "exposure"),
    *("privacy", "proxies", "similarity", "sensitivity"),
)


def test_a_run_with_a_truncated_trace_part_never_shows_a_traceback(tmp_path, monkeypatch):
    """Copies of two sample runs, one with a truncated trace part: every page still draws the
    healthy run, the Runs page lists the damaged one as `error` naming the file."""
    samples = Path(APP).parents[1] / "sample_runs"
    shutil.copytree(samples / "digits_mlp_noise20_tied", tmp_path / "healthy")
    damaged = tmp_path / "damaged"
    shutil.copytree(samples / "digits_mlp_clean", damaged)
    part = damaged / "trace.parquet" / "eval-epoch_007.parquet"
    part.write_bytes(part.read_bytes()[:100])
    # and a run stopped before epoch 0 was stored (a full disk): listed, never shown
    created = tmp_path / "created"
    created.mkdir()
    meta = json.loads((samples / "digits_mlp_clean" / "run.json").read_text())
    (created / "run.json").write_text(json.dumps(meta | {"name": "created", "status": "created"}))
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    for name in PAGES:
        at = page_test(name).run()
        assert not at.exception, name
        assert "Traceback" not in str(at), name
    at = page_test("runs").run()
    status = runs_table(at).set_index("run")["status"]
    assert status["digits_mlp_clean"] == "error" and status["digits_mlp_noise20_tied"] == "complete"
    assert any("eval-epoch_007.parquet" in unescaped(e.value) for e in at.error)
    assert status["created"] == "created"
    assert any("nothing recorded yet" in c.value for c in at.caption)
    # the shared run cannot point at the damaged one: pages show the healthy run
    at = page_test("examples")
    at.session_state["run"] = "digits_mlp_clean"
    at.run()
    assert any("digits_mlp_noise20_tied" in unescaped(c.value) for c in at.caption)


def _guarded_page(name):
    import importlib

    from memdash.dashboard.app_pages.common import guarded

    guarded(importlib.import_module(f"memdash.dashboard.app_pages.{name}").render)()


def test_a_page_that_hits_a_damaged_file_says_which_instead_of_failing(tmp_path, monkeypatch):
    """Damage the cheap check cannot see (the inputs array): the page's guard turns the read
    error into a message naming the run and the file."""
    samples = Path(APP).parents[1] / "sample_runs"
    shutil.copytree(samples / "digits_mlp_noise20_tied", tmp_path / "run")
    (tmp_path / "run" / "inputs.npy").write_bytes(b"garbage")
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    at = AppTest.from_function(_guarded_page, args=("examples",), default_timeout=60)
    at.session_state["run"] = "digits_mlp_noise20_tied"
    at.session_state["example"] = 3
    at.run()
    assert not at.exception
    assert any(
        "inputs.npy" in unescaped(e.value) and "digits_mlp_noise20_tied" in unescaped(e.value)
        for e in at.error
    )


def test_the_default_run_is_the_most_informative_and_an_unknown_name_says_so(monkeypatch):
    """No run in the URL: digits_mlp_noise20 (every analysis), not the alphabetically first
    digits_mlp_clean; a name from the URL that no run has is refused, not joined into a path."""
    samples = Path(APP).parents[1] / "sample_runs"
    monkeypatch.setenv("MEMDASH_ROOTS", str(samples))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.sidebar.selectbox(key="run").value == "digits_mlp_noise20"
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = "../../etc/passwd"
    at.run()
    assert not at.exception
    assert at.sidebar.selectbox(key="run").value == "digits_mlp_noise20"
    assert any("No run named" in w.value and "passwd" in w.value for w in at.sidebar.warning)


def test_run_names_with_html_or_markdown_show_as_text(tmp_path, monkeypatch):
    """A run named like a script tag and a link, with config strings (dataset, model) the
    same: every place that writes them into markdown escapes them, so they show as written
    and nothing is rendered."""
    import json

    samples = Path(APP).parents[1] / "sample_runs"
    run = tmp_path / "hostile"
    shutil.copytree(samples / "digits_mlp_noise20_tied", run)
    meta = json.loads((run / "run.json").read_text())
    hostile = "<script>alert(1)</script> [click](http://example.com) :red[x] R&amp;D"
    meta["name"] = hostile
    meta["config"]["data"]["dataset"] = meta["config"]["model"]["name"] = hostile
    (run / "run.json").write_text(json.dumps(meta))
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    at = page_test("examples")
    at.session_state["run"] = hostile
    at.run()
    assert not at.exception
    caption = next(c.value for c in at.caption if c.value.startswith("Run "))
    assert r"\<script\>" in caption and r"\[click\]\(http\://example\.com\)" in caption
    assert r"R\&amp;D" in caption  # an entity shown as written, not as "&"
    assert "<script>" not in caption and "](http" not in caption
    at = page_test("runs").run()
    assert not at.exception
    row = runs_table(at).set_index("run").loc[hostile]  # table cells read as written
    assert row["dataset"] == hostile and row["model"].startswith(hostile)
    cells = at.table[0].value.to_numpy().ravel().tolist()  # the markdown each cell is
    assert md_text(hostile) in cells and not any("<script>" in str(c) for c in cells)
    shown = [m.value for m in (*at.markdown, *at.caption, *at.error, *at.warning, *at.info)]
    assert not any("<script>" in text or "](http" in text for text in shown)


def test_privacy_page_draws_the_attacks_beside_memorization(monkeypatch):
    """The sample suite's 256-model estimate: the three ROCs on log-log axes, their AUC and
    TPR at low FPR, vulnerability against mem_score by kind, and the most exposed examples,
    which open in the detail."""
    from memdash.analysis.store import Run

    samples = Path(APP).parents[1] / "sample_runs"
    monkeypatch.setenv("MEMDASH_ROOTS", str(samples))
    at = page_test("privacy")
    at.session_state["run"] = "digits_mlp_noise20"
    at.run()
    assert not at.exception
    # by key: the audit's charts (budget, Gaussian check) lie between the ROC and the scatter
    drawn = {c.proto.id.rsplit("-", 1)[-1]: c for c in at.get("plotly_chart")}
    roc, scatter = drawn["privacy_roc"], drawn["privacy_scatter"]
    assert '"type":"log"' in roc.proto.spec.replace(" ", "")
    assert all(f'"{name}' in roc.proto.spec for name in ("online LiRA", "offline LiRA", "global"))
    assert '"flipped"' in scatter.proto.spec and '"clean"' in scatter.proto.spec
    summary = at.dataframe[0].value.set_index("attack")
    stored = Run.open(samples / "digits_mlp_noise20").derived_manifest()["heldout"]["membership"]
    assert summary.loc["online LiRA", "AUC"] == stored["online"]["auc"]
    # TPRs drawn in percent
    low = summary.loc["offline LiRA", "TPR at 0.1% FPR"]
    assert low == pytest.approx(100 * stored["offline"]["tpr_at_0.1%"])
    assert any("Spearman correlation with the memorization score" in c.value for c in at.caption)
    opened = [b for b in at.button if b.key and b.key.startswith("privacy_open_")]
    assert len(opened) == 16
    opened[0].click().run()
    assert not at.exception
    assert at.session_state["example"] == int(opened[0].key.rsplit("_", 1)[1])


def test_privacy_page_without_an_estimate_says_which_command(roots):
    at = page_test("privacy").run()
    assert not at.exception
    assert any("memdash estimate --like" in i.value for i in at.info)


# ------------------------------------------------------- studies of several runs

SAMPLES = Path(APP).parents[1] / "sample_runs"
TRUE_GROUP = [SAMPLES / "groups" / "digits_true" / f"seed_{s}" for s in range(3)]
RANDOM_GROUP = [SAMPLES / "groups" / "digits_random" / f"seed_{s}" for s in range(3)]


@pytest.fixture
def suite(monkeypatch):
    monkeypatch.setenv("MEMDASH_ROOTS", str(SAMPLES))


def _decoded(value):
    """A plotly JSON value with its typed arrays ({"dtype", "bdata", "shape"}) as numpy."""
    import base64

    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = [int(n) for n in str(value.get("shape", len(array))).split(",")]
        return array.reshape(shape)
    return value


def _traces(chart) -> list:
    """A chart's plotly traces as SimpleNamespaces, arrays decoded."""
    from types import SimpleNamespace

    return [
        SimpleNamespace(**{k: _decoded(v) for k, v in trace.items()} | {"name": trace.get("name")})
        for trace in json.loads(chart.proto.spec)["data"]
    ]


def _heatmap_cells(chart) -> dict[tuple[str, str], float]:
    """(row layer, column layer) -> value of a heatmap chart."""
    (trace,) = _traces(chart)
    return {
        (row, column): float(trace.z[i][j])
        for i, row in enumerate(trace.y)
        for j, column in enumerate(trace.x)
    }


def test_similarity_page_puts_two_groups_side_by_side(suite):
    from memdash.analysis.measures.similarity import linear_cka

    at = page_test("similarity").run()
    assert not at.exception
    assert at.selectbox(key="similarity_group_a").value == "digits_true"
    assert at.selectbox(key="similarity_group_b").value == "digits_random"
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # two heatmaps and the same layer across seeds
    runs = [Run.open(p) for p in RANDOM_GROUP]
    fc2 = [r.embedding(30, "fc2") for r in runs]
    out = [r.embedding(30, "out") for r in runs]
    pairs = [(0, 1), (0, 2), (1, 2)]
    # each cell: the mean over the three pairs of seeds, both ways round off the diagonal
    same = np.mean([linear_cka(out[i], out[j]) for i, j in pairs])
    across = np.mean(
        [linear_cka(fc2[i], out[j]) for i, j in pairs]
        + [linear_cka(out[i], fc2[j]) for i, j in pairs]
    )
    cells = _heatmap_cells(charts[1])
    assert cells[("out", "out")] == pytest.approx(same, abs=1e-6)
    assert cells[("fc2", "out")] == pytest.approx(across, abs=1e-6) == cells[("out", "fc2")]
    assert _heatmap_cells(charts[0])[("out", "out")] > 0.9 > same
    at.radio(key="similarity_measure").set_value("svcca").run()
    assert not at.exception and len(at.get("plotly_chart")) == 3
    at.select_slider(key="similarity_epoch").set_value(1).run()
    assert not at.exception and "epoch 1" in at.get("plotly_chart")[0].proto.spec


def test_similarity_page_compares_two_runs_and_refuses_other_examples(suite):
    from memdash.analysis.measures.similarity import linear_cka

    at = page_test("similarity")
    at.session_state["run"] = "seed_0 (digits_true)"
    at.run()
    at.radio(key="similarity_mode").set_value("two runs").run()
    assert not at.exception
    # the sidebar's run first, then another seed of its group
    assert at.selectbox(key="similarity_run_a").value == "seed_0 (digits_true)"
    assert at.selectbox(key="similarity_run_b").value == "seed_1 (digits_true)"
    a, b = (Run.open(p) for p in TRUE_GROUP[:2])
    cells = _heatmap_cells(at.get("plotly_chart")[0])
    expected = linear_cka(a.embedding(30, "fc2"), b.embedding(30, "out"))
    assert cells[("fc2", "out")] == pytest.approx(expected, abs=1e-6)  # rows: the first run
    at.selectbox(key="similarity_run_b").set_value("digits_mlp_noise20").run()
    assert not at.exception and not at.get("plotly_chart")
    assert any("different examples" in w.value for w in at.warning)


def test_sensitivity_page_draws_each_kind_and_each_group(suite):
    at = page_test("sensitivity")
    at.session_state["run"] = "seed_0 (digits_random)"
    at.run()
    assert not at.exception
    by_kind, by_group = at.get("plotly_chart")
    run = Run.open(RANDOM_GROUP[0])
    trace = run.trace("eval", epochs=[30], columns=["example_id", "loss_sensitivity"])
    flipped = run.examples()["is_noisy"].to_numpy()
    expected = trace["loss_sensitivity"].to_numpy()[flipped].mean()
    lines = {t.name: t for t in _traces(by_kind)}
    assert set(lines) == {"clean", "flipped", "test"}
    assert lines["flipped"].y[-1] == pytest.approx(expected, rel=1e-5)
    groups = {t.name: t.y[-1] for t in _traces(by_group)}
    assert groups["digits random"] > 10 * groups["digits true"]
    at.radio(key="sensitivity_measure").set_value("critical").run()
    assert not at.exception and len(at.get("plotly_chart")) == 2
    # a run that recorded neither says how to, and still shows the groups
    at.session_state["run"] = "digits_mlp_noise20"
    at.run()
    assert any("--critical-examples" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) == 1


def test_examples_page_shows_easiness_across_the_seeds_of_the_group(suite):
    at = page_test("examples")
    at.session_state["run"] = "seed_1 (digits_true)"
    at.run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("example_id")
    right = [
        Run.open(p).trace("eval", epochs=[1], columns=["correct"])["correct"].to_numpy()
        for p in TRUE_GROUP
    ]
    expected = np.mean(right, axis=0)
    train = table["split"] == "train"
    shown = table.loc[train, "easiness"]
    assert np.allclose(shown.to_numpy(), expected[shown.index.to_numpy()])
    assert table.loc[~train, "easiness"].isna().all()  # test examples: not trained on
    at.slider(key="examples_easiness_epoch").set_value(0).run()
    assert not at.exception
    assert any("after epoch 0" in c.value for c in at.caption)
    # a run in no group says how to make one
    at.session_state["run"] = "digits_mlp_noise20"
    at.run()
    assert any("--seeds 0-2" in c.value for c in at.caption)


def test_runs_page_names_the_seed_group_of_each_run(suite):
    at = AppTest.from_file(APP, default_timeout=60).run()
    table = runs_table(at).set_index("run")
    assert table.loc["seed_0 (digits_random)", "corruption"] == "random labels"  # in words
    assert table.loc["digits_mlp_noise20", "corruption"] == "symmetric"
    table = table["seed group"]
    assert table["seed_2 (digits_true)"] == "digits_true"
    assert table["seed_0 (digits_random)"] == "digits_random"
    assert table["digits_mlp_noise20"] == ""


STUDY_FINDINGS = {
    "one_way_to_learn": "True-label networks learn alike (later layers), random-label ones differ",
    "random_label_pretraining": "Pre-training on random labels speeds up or improves training "
    "on true labels",
    "easiness_across_seeds": "Real examples are learned alike across initializations, "
    "random-label ones are not",
    "loss_sensitivity": "Memorizing makes the loss sensitive to the input: higher with random "
    "labels",
    "critical_sample_ratio": "The critical sample ratio rises with label noise",
}


def test_findings_page_draws_each_study_finding(suite):
    at = page_test("findings").run()
    for key, title in STUDY_FINDINGS.items():
        at.selectbox(key="findings_choice").set_value(title).run()
        assert not at.exception, key
        (chart,) = at.get("plotly_chart")
        names = {t.name for t in _traces(chart)}
        if key == "random_label_pretraining":
            assert names == {"from random-label weights", "from scratch"}
            assert any("digits_from_scratch" in unescaped(c.value) for c in at.caption)
        else:
            assert {"true labels", "random labels"} <= names, key
            assert any("group **digits_true**" in unescaped(c.value) for c in at.caption), key


def test_runs_of_one_name_are_told_apart_by_their_folder_or_the_one_above():
    from memdash.dashboard.data import unique_names

    names = ["tiny", "tiny", "seed_0", "seed_0", "alone"]
    paths = ["/r/tiny", "/r/damaged", "/g/true/seed_0", "/g/random/seed_0", "/r/alone"]
    assert unique_names(names, paths) == [
        "tiny (tiny)",
        "tiny (damaged)",
        "seed_0 (true)",
        "seed_0 (random)",
        "alone",
    ]
    assert unique_names(["a", "a"], ["/x/a", "/x/a"]) == ["a (x)", "a (x) #2"]


def _dp_runs_caption():
    import pandas as pd

    from memdash.dashboard.app_pages.runs import dp_caption

    dp_caption(
        pd.DataFrame(
            {
                "run": ["plain", "private", "clipped"],
                "dp_epsilon": [None, 3.998, None],
                "dp_delta": [None, 1e-5, 1e-5],
            }
        )
    )


def test_runs_page_names_the_dp_runs_and_their_epsilon_under_the_table():
    # the table's ε column is its last, often past the page's right edge
    at = AppTest.from_function(_dp_runs_caption, default_timeout=30).run()
    assert not at.exception
    said = at.caption[0].value
    assert "private (ε = 4.00, δ = 1e-05)" in said and "clipped (ε = ∞, δ = 1e-05)" in said
    assert "plain" not in said
