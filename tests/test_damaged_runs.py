"""The damaged-run grid: copies of the tiny run whose run.json holds a wrong type or a value
out of range, whose derived tables no longer match the hashes of derived/manifest.json, or
whose folder holds files the store never wrote. In every case `memdash info` names the file
(and the key) in one message without a traceback, `memdash analyze` refuses the run or
recomputes the damaged step, and the dashboard lists the run as `error` or offers to compute
the table again while every other run keeps working."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tally
from shown import runs_table, unescaped
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.steps.pipeline import analyze
from memdash.analysis.store import Run, RunFormatError, RunWriter

AREA = "damaged files"
ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "app.py")


def _invoke(*args) -> tuple[int, str]:
    """A memdash command's exit code and its output with the console's line breaks undone;
    the command never ends in a traceback."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    out = " ".join(result.output.split())
    assert "Traceback" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, out


def _copy(source: Path, folder: Path, name: str = "run") -> Path:
    run = folder / name
    shutil.copytree(source, run)
    return run


# ------------------------------------------------------------------ 1. run.json's schema


def _set(dotted: str, value):
    """A change of run.json: the value at the dotted key set (created if absent)."""

    def change(meta: dict) -> None:
        *parents, leaf = dotted.split(".")
        for key in parents:
            meta = meta.setdefault(key, {})
        meta[leaf] = value

    return change


def _drop(dotted: str):
    def change(meta: dict) -> None:
        *parents, leaf = dotted.split(".")
        for key in parents:
            meta = meta[key]
        del meta[leaf]

    return change


# case -> (the change, the key the message names, what it says)
RUN_JSON = {
    # the issue's two
    "last_epoch a list": (_set("last_epoch", [0.5]), "last_epoch", "must be object, got [0.5]"),
    "config.data a string": (_set("config.data", "digits"), "config.data", "must be object"),
    # every key of its own type
    "schema_version a string": (_set("schema_version", "1"), "schema_version", "must be int"),
    "name a number": (_set("name", 5), "name", "must be string, got 5"),
    "name empty": (_set("name", ""), "name", "must not be empty"),
    "status a number": (_set("status", 3), "status", "must be string"),
    "status unknown": (_set("status", "done"), "status", "unknown status 'done'"),
    "epochs_completed a float": (_set("epochs_completed", 2.5), "epochs_completed", "must be int"),
    "epochs_completed a bool": (_set("epochs_completed", True), "epochs_completed", "must be int"),
    "epochs_completed negative": (
        _set("epochs_completed", -1),
        "epochs_completed",
        "must lie in [0, 1000000], got -1",
    ),
    "epochs_completed huge": (
        _set("epochs_completed", 10**12),
        "epochs_completed",
        "must lie in [0, 1000000], got 1000000000000",
    ),
    "epochs_planned a string": (_set("epochs_planned", "4"), "epochs_planned", "must be int"),
    "epochs_planned negative": (_set("epochs_planned", -4), "epochs_planned", "[0, 1000000]"),
    "n_classes zero": (_set("n_classes", 0), "n_classes", "must be >= 1"),
    "n_classes a list": (_set("n_classes", [4]), "n_classes", "must be int"),
    "layers a string": (_set("layers", "fc1"), "layers", "must be list"),
    "a layer a number": (_set("layers", ["fc1", 2]), "layers[1]", "must be string"),
    "config a list": (_set("config", []), "config", "must be object"),
    "config.model a list": (_set("config.model", []), "config.model", "must be object"),
    "config.train a number": (_set("config.train", 5), "config.train", "must be object"),
    "config.record a string": (_set("config.record", "all"), "config.record", "must be object"),
    "config.seed a string": (_set("config.seed", "0"), "config.seed", "must be int"),
    "config.seed negative": (_set("config.seed", -1), "config.seed", "must be >= 0"),
    "config.command a number": (_set("config.command", 5), "config.command", "must be string"),
    "data.dataset a number": (_set("config.data.dataset", 3), "config.data.dataset", "string"),
    "data.noise above 1": (_set("config.data.noise", 1.5), "config.data.noise", "[0, 1]"),
    "data.noise a string": (_set("config.data.noise", "0.2"), "config.data.noise", "number"),
    "data.shape a negative size": (
        _set("config.data.shape", [8, -1]),
        "config.data.shape[1]",
        "must be >= 1",
    ),
    "data.canaries negative": (_set("config.data.canaries", -2), "config.data.canaries", ">= 0"),
    "data.test_fraction 1": (
        _set("config.data.test_fraction", 1.0),
        "config.data.test_fraction",
        "(0, 1)",
    ),
    "model.hidden a string": (_set("config.model.hidden", "16,8"), "config.model.hidden", "list"),
    "model.dropout 1": (_set("config.model.dropout", 1.0), "config.model.dropout", "[0, 1)"),
    "model.example_tied_dropout a string": (
        _set("config.model.example_tied_dropout", "no"),
        "config.model.example_tied_dropout",
        "must be bool",
    ),
    "train.lr zero": (_set("config.train.lr", 0), "config.train.lr", "must be > 0"),
    "train.lr nan": (_set("config.train.lr", math.nan), "config.train.lr", "finite"),
    "train.lr infinite": (_set("config.train.lr", math.inf), "config.train.lr", "finite"),
    "train.batch_size zero": (
        _set("config.train.batch_size", 0),
        "config.train.batch_size",
        ">= 1",
    ),
    "train.epochs negative": (
        _set("config.train.epochs", -3),
        "config.train.epochs",
        "must lie in [0, 1000000]",
    ),
    "train.reinit a string": (_set("config.train.reinit", "out"), "config.train.reinit", "list"),
    "record.embed_epochs a string epoch": (
        _set("config.record.embed_epochs", [0, "4"]),
        "config.record.embed_epochs[1]",
        "must be int",
    ),
    "record.embed_layers leaving the run": (
        _set("config.record.embed_layers", ["../../etc/passwd"]),
        "config.record.embed_layers[0]",
        "plain file name",
    ),
    "record.checkpoint_epochs an object": (
        _set("config.record.checkpoint_epochs", {"0": 1}),
        "config.record.checkpoint_epochs",
        "must be list",
    ),
    "record.record_train a string": (
        _set("config.record.record_train", "yes"),
        "config.record.record_train",
        "must be bool",
    ),
    "record.embed_dtype unknown": (
        _set("config.record.embed_dtype", "float8"),
        "config.record.embed_dtype",
        "unknown embed_dtype 'float8'",
    ),
    "created_at not a time": (_set("created_at", "yesterday"), "created_at", "ISO 8601"),
    "updated_at a number": (_set("updated_at", 5), "updated_at", "must be string"),
    "memdash_version a number": (_set("memdash_version", 1), "memdash_version", "string"),
    "error a list": (_set("error", ["x"]), "error", "must be string"),
    "estimate_only a string": (_set("estimate_only", "yes"), "estimate_only", "must be bool"),
    "last_epoch an accuracy a string": (
        _set("last_epoch.train_acc", "high"),
        "last_epoch.train_acc",
        "must be number",
    ),
    "last_epoch an accuracy above 1": (
        _set("last_epoch.test_acc", 1.5),
        "last_epoch.test_acc",
        "[0, 1]",
    ),
    "last_epoch a negative epoch": (_set("last_epoch.epoch", -1), "last_epoch.epoch", "[0, "),
    "last_epoch another value a string": (
        _set("last_epoch.canary_acc", "x"),
        "last_epoch.canary_acc",
        "must be number",
    ),
    "init_from a string": (_set("init_from", "elsewhere"), "init_from", "must be object"),
    "init_from without its run": (
        _set("init_from", {"epoch": 3, "reinit": []}),
        "init_from.run",
        "missing key",
    ),
    "init_from a negative epoch": (
        _set("init_from", {"run": "x", "epoch": -1}),
        "init_from.epoch",
        "[0, 1000000]",
    ),
    "example_tied_dropout a list": (
        _set("example_tied_dropout", []),
        "example_tied_dropout",
        "must be object",
    ),
    "example_tied_dropout an accuracy above 1": (
        _set("example_tied_dropout", {"keep": {"test_acc": 2}}),
        "example_tied_dropout.keep.test_acc",
        "[0, 1]",
    ),
    "a required key missing": (_drop("created_at"), "created_at", "missing key"),
}


def _damage_run_json(run: Path, change) -> None:
    meta = json.loads((run / "run.json").read_text())
    change(meta)
    (run / "run.json").write_text(json.dumps(meta))  # NaN and Infinity as Python writes them


@pytest.mark.parametrize("case", list(RUN_JSON))
def test_a_run_json_of_the_wrong_shape_is_named_with_its_key(case, tiny_run, tmp_path):
    from memdash.dashboard import data

    change, key, says = RUN_JSON[case]
    run = _copy(tiny_run, tmp_path)
    _damage_run_json(run, change)
    with pytest.raises(RunFormatError) as raised:
        Run.open(run)
    assert raised.value.file == "run.json"
    assert f"'{key}'" in raised.value.problem and says in raised.value.problem, raised.value
    for command in (["info", run], ["analyze", run, "--only", "scores"]):
        code, out = _invoke(*command)
        assert code == 1, out
        assert "run.json" in out and f"'{key}'" in out and says in out, out
    assert not (run / "derived").exists()  # analyze refused it before any work
    # the data layer lists it as an error naming run.json and the key
    row = data.run_summaries((str(tmp_path),)).set_index("path").loc[str(run.resolve())]
    assert row["status"] == "error" and "run.json" in row["error"] and f"'{key}'" in row["error"]
    tally.case(AREA, 4)  # the reader, info, analyze, the data layer


def test_the_writer_never_makes_a_run_json_of_the_wrong_shape(tmp_path):
    """A config whose memdash sections have the wrong type (a user's own loop passing
    ``config={"data": "mnist"}``) is refused before anything is written."""
    examples = pd.DataFrame(
        {
            "example_id": np.arange(2),
            "split": ["train", "test"],
            "label": np.zeros(2, dtype=np.int64),
            "true_label": np.zeros(2, dtype=np.int64),
            "is_noisy": [False, False],
            "is_canary": [False, False],
        }
    )
    for config, key in (({"data": "mnist"}, "config.data"), ({"seed": "3"}, "config.seed")):
        with pytest.raises(ValueError, match=f"run.json: key '{key}' must be"):
            RunWriter.create(
                tmp_path / "own",
                config=config,
                examples=examples,
                inputs=np.zeros((2, 3)),
                n_classes=2,
            )
        assert not (tmp_path / "own").exists()
        tally.case(AREA)


def test_a_folder_with_a_damaged_run_json_names_it_and_lists_the_others(tiny_run, tmp_path):
    _copy(tiny_run, tmp_path, "good")
    bad = _copy(tiny_run, tmp_path, "bad")
    _damage_run_json(bad, _set("last_epoch", [0.5]))
    code, out = _invoke("info", tmp_path)
    assert code == 0, out
    assert "good" in out and "cannot read" in out and "'last_epoch'" in out, out
    tally.case(AREA)


# the issue's examples and a few more, in one root beside a healthy run
PAGE_CASES = (
    "last_epoch a list",
    "config.data a string",
    "config.model a list",
    "epochs_completed negative",
    "status unknown",
    "record.embed_epochs a string epoch",
)
PAGES = (
    *("runs", "examples", "forgetting", "embeddings", "knn", "localization", "exposure"),
    *("privacy", "proxies", "compare", "similarity", "sensitivity", "findings"),
)


def _page(name):
    """A script that renders one page (AppTest runs a function's source as its script)."""
    import importlib

    importlib.import_module(f"memdash.dashboard.app_pages.{name}").render()


def test_damaged_run_jsons_leave_every_page_of_the_other_runs_working(
    tiny_run, tmp_path, monkeypatch
):
    _copy(tiny_run, tmp_path, "healthy")
    for i, case in enumerate(PAGE_CASES):
        _damage_run_json(_copy(tiny_run, tmp_path, f"damaged_{i}"), RUN_JSON[case][0])
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    status = runs_table(at).set_index("run")["status"]
    assert status["tiny"] == "complete"  # the healthy copy keeps its run name
    errors = [unescaped(e.value) for e in at.error]  # markdown escapes undone
    for i, case in enumerate(PAGE_CASES):
        key = RUN_JSON[case][1]
        assert status[f"damaged_{i}"] == "error", case
        assert any(f"damaged_{i}" in e and f"run.json: key '{key}'" in e for e in errors), errors
    # the run chooser offers only the healthy run
    assert at.sidebar.selectbox(key="run").options == ["tiny"]
    for name in PAGES:
        page = AppTest.from_function(_page, args=(name,), default_timeout=60).run()
        assert not page.exception, (name, page.exception)
        assert "Traceback" not in str(page) and "AttributeError" not in str(page), name
    tally.case(AREA, len(PAGE_CASES) + len(PAGES))


# ------------------------------------------------------------------ 2. derived tables' hashes


@pytest.fixture(scope="module")
def analyzed(tiny_run, tmp_path_factory) -> Path:
    """The tiny run with every step of `memdash analyze`."""
    run = _copy(tiny_run, tmp_path_factory.mktemp("analyzed"))
    analyze(run)
    return run


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garble_same_size(path: Path) -> None:
    path.write_bytes(np.random.default_rng(1).bytes(path.stat().st_size))


def _garble(path: Path) -> None:
    path.write_bytes(np.random.default_rng(2).bytes(100))


def _flip_a_byte(path: Path) -> None:
    """One byte in the middle of the file changed: the same size, another content."""
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def _swap_for_scores(path: Path) -> None:
    """A valid Parquet table, but another step's."""
    shutil.copy(path.parent / "scores.parquet", path)


# case -> (derived file, the damage, its step, what info says)
DERIVED = {
    "scores truncated": (
        "scores.parquet",
        _truncate,
        "scores",
        "bytes where derived/manifest.json recorded",
    ),
    "knn garbage of the same size": ("knn.parquet", _garble_same_size, "knn", "SHA-256"),
    "knn garbage": ("knn.parquet", _garble, "knn", "bytes where derived/manifest.json recorded"),
    "knn_examples one byte changed": ("knn_examples.parquet", _flip_a_byte, "knn", "SHA-256"),
    "neighbors deleted": ("neighbors.parquet", lambda p: p.unlink(), "knn", "missing"),
    "umap layer truncated": ("umap/fc1.parquet", _truncate, "umap", "bytes"),
    "exposure replaced by the scores": ("exposure.parquet", _swap_for_scores, "exposure", "bytes"),
    "exposure_fits one byte changed": ("exposure_fits.parquet", _flip_a_byte, "exposure", "SHA"),
}


@pytest.mark.parametrize("case", list(DERIVED))
def test_a_derived_table_that_does_not_match_its_hash_is_named_and_recomputed(
    case, analyzed, tmp_path
):
    from memdash.dashboard import data

    name, damage, step, says = DERIVED[case]
    run = _copy(analyzed, tmp_path)
    damage(run / "derived" / name)
    code, out = _invoke("info", run)
    assert code == 1, out
    assert f"derived/{name}" in out and says in out and "valid:" not in out, out
    # what the pages and findings read: the step counts as not computed, the table as missing
    assert step not in Run.open(run).derived_manifest()
    assert step not in data.manifest(run) and data.derived(run, name) is None
    code, out = _invoke("analyze", run, "--only", step)
    assert code == 0 and f"{step}: computed" in out, out
    code, out = _invoke("info", run)
    assert code == 0 and "valid:" in out, out
    assert data.derived(run, name) is not None
    tally.case(AREA, 4)  # info, the reader, the data layer, analyze


def _edit_manifest(run: Path, change) -> None:
    file = run / "derived" / "manifest.json"
    manifest = json.loads(file.read_text())
    change(manifest)
    file.write_text(json.dumps(manifest))


def _bad_hash(manifest: dict) -> None:
    manifest["scores"]["hashes"]["scores.parquet"]["sha256"] = "xyz"


def _entry_a_string(manifest: dict) -> None:
    manifest["scores"] = "b9b2"


def _hashes_a_list(manifest: dict) -> None:
    manifest["scores"]["hashes"] = ["scores.parquet"]


# case -> (the damage of derived/manifest.json, what info says)
MANIFESTS = {
    "not JSON": (lambda run: (run / "derived" / "manifest.json").write_text("{not json"), "JSON"),
    "a list": (lambda run: (run / "derived" / "manifest.json").write_text("[1, 2]"), "object"),
    "a hash not a SHA-256": (lambda run: _edit_manifest(run, _bad_hash), "scores.parquet"),
    "an entry a string": (lambda run: _edit_manifest(run, _entry_a_string), "'scores'"),
    "hashes a list": (lambda run: _edit_manifest(run, _hashes_a_list), "'scores'"),
}


@pytest.mark.parametrize("case", list(MANIFESTS))
def test_a_damaged_manifest_is_named_and_its_steps_recomputed(case, analyzed, tmp_path):
    damage, says = MANIFESTS[case]
    run = _copy(analyzed, tmp_path)
    damage(run)
    code, out = _invoke("info", run)
    assert code == 1, out
    assert "derived/manifest.json" in out and says in out and "valid:" not in out, out
    assert "scores" not in Run.open(run).derived_manifest()
    code, out = _invoke("analyze", run, "--only", "scores")
    assert code == 0 and "scores: computed" in out, out
    tally.case(AREA, 2)


def _without_hashes(run: Path) -> None:
    """derived/manifest.json as memdash wrote it before it recorded hashes (the sample suite's)."""
    _edit_manifest(run, lambda m: [entry.pop("hashes", None) for entry in m.values()])


def test_an_old_manifest_without_hashes_is_not_verifiable_but_trusted(analyzed, tmp_path):
    from memdash.dashboard import data

    run = _copy(analyzed, tmp_path)
    _without_hashes(run)
    code, out = _invoke("info", run)
    assert code == 0 and "valid:" in out, out
    assert "not verifiable" in out and "8 derived files" in out, out
    code, out = _invoke("analyze", run, "--only", "scores,knn")
    assert code == 0 and "scores: up to date" in out and "knn: up to date" in out, out
    assert data.derived(run, "knn.parquet") is not None and "knn" in data.manifest(run)
    # a table that no longer reads is still found (its Parquet footer), and recomputed
    _truncate(run / "derived" / "scores.parquet")
    code, out = _invoke("info", run)
    assert code == 1 and "derived/scores.parquet" in out and "Parquet" in out, out
    code, out = _invoke("analyze", run, "--only", "scores")
    assert code == 0 and "scores: computed" in out, out
    tally.case(AREA, 3)


def test_analyze_records_a_hash_and_size_of_every_file_it_writes(analyzed):
    import hashlib

    manifest = json.loads((analyzed / "derived" / "manifest.json").read_text())
    for step, entry in manifest.items():
        assert sorted(entry["hashes"]) == sorted(entry["files"]), step
        for name, recorded in entry["hashes"].items():
            raw = (analyzed / "derived" / name).read_bytes()
            assert recorded == {"sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}
    tally.case(AREA)


def test_the_sample_suite_records_a_hash_of_every_derived_file():
    """The committed suite's manifests hold the hash of every derived file (the held-out
    estimate's, its attack budget, SSFT and the proxies' scoreboard included): info verifies all
    20 of the fullest run and
    passes."""
    code, out = _invoke("info", ROOT / "sample_runs" / "digits_mlp_noise20")
    out = " ".join(out.split())
    assert code == 0 and "valid:" in out and "not verifiable" not in out, out
    assert "20 derived files match their SHA-256 and size" in out, out
    tally.case(AREA)


# case -> (derived file, the damage, the page, the key of its compute button)
PAGE_DAMAGES = {
    "knn garbage of the same size": ("knn.parquet", _garble_same_size, "knn", "knn_compute"),
    "scores truncated": ("scores.parquet", _truncate, "forgetting", "forgetting_compute"),
    "umap layer garbage": ("umap/out.parquet", _garble, "embeddings", "embeddings_compute"),
    "exposure one byte changed": ("exposure.parquet", _flip_a_byte, "exposure", "exposure_compute"),
}


@pytest.mark.parametrize("case", list(PAGE_DAMAGES))
def test_a_page_offers_to_compute_a_damaged_table_again(case, analyzed, tmp_path, monkeypatch):
    name, damage, page, button = PAGE_DAMAGES[case]
    run = _copy(analyzed, tmp_path)
    damage(run / "derived" / name)
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    at = AppTest.from_function(_page, args=(page,), default_timeout=60)
    at.session_state["run"] = "tiny"
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any(b.key == button for b in at.button), [b.key for b in at.button]
    tally.case(AREA)


# ------------------------------------------------------------------ 3. files the store never wrote


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(300))


def _later_trace_part(path: Path) -> None:
    """An intact trace part of epoch 5, which the run never committed (a killed process)."""
    part = pd.read_parquet(path.parent / "eval-epoch_004.parquet")
    part.assign(epoch=np.int32(5)).to_parquet(path)


def _later_checkpoint(path: Path) -> None:
    shutil.copy(path.parent / "epoch_004.safetensors", path)


def _text(path: Path) -> None:
    path.write_text("my notes")


def _table(path: Path) -> None:
    pd.DataFrame({"x": [1, 2]}).to_parquet(path)


# case -> (file, how it is written, whether info fails, what info says of it)
STRAYS = {
    # the issue's: random bytes at a part of an epoch the run never committed
    "random bytes at an uncommitted trace part": (
        "trace.parquet/eval-epoch_005.parquet",
        _random_bytes,
        True,
        "never committed",
    ),
    "random bytes at an uncommitted layer-gradient part": (
        "layer_grads.parquet/epoch_007.parquet",
        _random_bytes,
        True,
        "never committed",
    ),
    "a text file among the trace parts": (
        "trace.parquet/notes.txt",
        _text,
        True,
        "not a file memdash writes",
    ),
    "a file beside run.json": ("notes.txt", _text, True, "not a file memdash writes"),
    "a folder of the user's": ("plots/loss.txt", _text, True, "not a file memdash writes"),
    "a copy of an embedding": (
        "embeddings/epoch_004/fc1.npy.bak",
        _text,
        True,
        "not a file memdash writes",
    ),
    "an embedding folder misnamed": (
        "embeddings/epoch_4/fc1.npy",
        _text,
        True,
        "not a file memdash writes",
    ),
    "a checkpoint in another format": (
        "checkpoints/epoch_004.pt",
        _text,
        True,
        "not a file memdash writes",
    ),
    "a file in heldout": ("heldout/notes.json", _text, True, "not a file memdash writes"),
    "a text file in derived": ("derived/notes.txt", _text, True, "not a file memdash writes"),
    # what the store leaves behind when it is killed: named, and the run still valid
    "an intact part of an uncommitted epoch": (
        "trace.parquet/eval-epoch_005.parquet",
        _later_trace_part,
        False,
        "after epochs_completed 4",
    ),
    "an uncommitted checkpoint": (
        "checkpoints/epoch_005.safetensors",
        _later_checkpoint,
        False,
        "after epochs_completed 4",
    ),
    "a temporary file of an interrupted write": (
        "trace.parquet/.eval-epoch_002.parquet.0123456789abcdef0123456789abcdef.tmp",
        _random_bytes,
        False,
        "interrupted write",
    ),
    "a derived table no step lists": (
        "derived/old.parquet",
        _table,
        False,
        "not listed in derived/manifest.json",
    ),
}


@pytest.mark.parametrize("case", list(STRAYS))
def test_info_names_every_file_the_store_did_not_write(case, tiny_run, tmp_path):
    rel, write, fails, says = STRAYS[case]
    run = _copy(tiny_run, tmp_path)
    (run / rel).parent.mkdir(parents=True, exist_ok=True)
    write(run / rel)
    code, out = _invoke("info", run)
    assert code == (1 if fails else 0), out
    assert rel in out and says in out, out
    assert ("valid:" in out) is not fails, out
    tally.case(AREA)


def test_the_issues_stray_part_breaks_readers_without_memdash(tiny_run, tmp_path):
    """Why the stray part matters: pandas reads every file of trace.parquet/."""
    run = _copy(tiny_run, tmp_path)
    assert len(pd.read_parquet(run / "trace.parquet")) > 0
    _random_bytes(run / "trace.parquet" / "eval-epoch_005.parquet")
    with pytest.raises(Exception, match="(?i)parquet"):
        pd.read_parquet(run / "trace.parquet")
    tally.case(AREA)


def test_intact_runs_pass_info_with_nothing_to_name(tiny_run, analyzed):
    for run in (tiny_run, analyzed):
        code, out = _invoke("info", run)
        assert code == 0 and "valid:" in out, out
        assert "not a file memdash writes" not in out and "never committed" not in out, out
    code, out = _invoke("info", analyzed)
    assert "8 derived files match their SHA-256" in out, out
    tally.case(AREA, 2)


def test_a_table_rewritten_through_the_store_keeps_its_step_trusted(analyzed, tmp_path):
    """`Run.write_derived` records the new file's hash: the step stays computed."""
    run = _copy(analyzed, tmp_path)
    scores = Run.open(run).read_derived("scores.parquet")
    Run.open(run).write_derived("scores.parquet", scores.iloc[:10])
    assert "scores" in Run.open(run).derived_manifest()
    assert len(Run.open(run).read_derived("scores.parquet")) == 10
    code, out = _invoke("info", run)
    assert code == 0 and "valid:" in out, out
    tally.case(AREA)
