"""The inputs a run stores (`memdash train --store-inputs full|thumbnail|path`, store/inputs.py):
thumbnails' shapes, area averages and uint8 bounds; thumbnails and paths written and read back;
`auto`; `path` refused without files; the dashboard's input charts drawing each form."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.record import input_forms
from memdash.analysis.record.config import DataConfig, RecordConfig, RunConfig, validate
from memdash.analysis.record.images import load_hf_disk, load_image_folder, read_source
from memdash.analysis.store import Run, RunFormatError, RunWriter
from memdash.analysis.store import inputs as forms
from memdash.analysis.tables.inputs import PathRows, ThumbnailRows, drawable_inputs
from memdash.dashboard.charts.inputs import example_input, note_of, thumbnail


def _examples(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "example_id": np.arange(n, dtype=np.int64),
            "split": ["train"] * (n - 1) + ["test"],
            "label": np.arange(n, dtype=np.int64) % 2,
            "true_label": np.arange(n, dtype=np.int64) % 2,
            "is_noisy": np.zeros(n, bool),
            "is_canary": np.zeros(n, bool),
        }
    )


def _create(path: Path, inputs: np.ndarray, **options) -> Run:
    """A run of `inputs` with epoch 0's eval trace (every example right)."""
    n = len(inputs)
    writer = RunWriter.create(
        path, config={}, examples=_examples(n), inputs=inputs, n_classes=2, **options
    )
    ones = np.ones(n, np.float32)
    trace = {"source": "eval", "epoch": 0, "example_id": np.arange(n), "loss": ones}
    trace |= {"prob_label": ones, "margin": ones, "pred": np.zeros(n, int), "correct": True}
    writer.write_trace("eval", 0, pd.DataFrame(trace))
    writer.commit_epoch(0)
    return Run.open(path)


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


# ------------------------------------------------------------------ thumbnails, by hand


def test_area_averaging_weights_partly_covered_cells_by_their_overlap():
    x = np.arange(6, dtype=np.float64)[None, :]  # cells [i, i + 1) of value i
    np.testing.assert_allclose(forms.area_resample(x, 1, 3), [[0.5, 2.5, 4.5]])
    # 4 cells of width 1.5: (0 + 0.5 * 1) / 1.5, (0.5 * 1 + 2) / 1.5, (3 + 0.5 * 4) / 1.5, ...
    np.testing.assert_allclose(forms.area_resample(x, 1, 4), [[1 / 3, 5 / 3, 10 / 3, 14 / 3]])
    np.testing.assert_allclose(forms.area_resample(x, 1, 6), x)


def test_the_matrix_and_the_running_sum_average_alike_on_every_axis(monkeypatch):
    x = np.random.default_rng(3).random((2, 5, 9, 7))
    dense = [forms.area_resample(x, axis, 4) for axis in (1, 2, 3)]
    monkeypatch.setattr(forms, "_DENSE_WEIGHTS", 0)  # every axis by its running sum
    for axis, expected in zip((1, 2, 3), dense, strict=True):
        np.testing.assert_allclose(forms.area_resample(x, axis, 4), expected, atol=1e-12)
    np.testing.assert_allclose(dense[2].sum(-1), x.sum(-1) * 4 / 7)  # each cell a mean


@pytest.mark.parametrize(
    ("shape", "small"),
    [
        ((3, 224, 224), (3, 64, 64)),
        ((3, 256, 128), (3, 64, 32)),  # the aspect ratio kept
        ((1, 8, 8), (1, 8, 8)),  # already small: kept
        ((64,), (64,)),  # digits' 64 features as a vector: kept
        ((1, 10_000), (1, 4096)),  # a long signal: 64 * 64 values
    ],
)
def test_thumbnail_shapes_are_at_most_64_by_64(shape, small):
    assert forms.thumbnail_shape(shape) == small


def test_thumbnails_are_uint8_block_means_and_8_bit_pixels_come_back_exactly():
    pixels = np.array([[0, 255, 51, 51], [255, 0, 51, 51]], np.float32) / 255  # in [0, 1]
    big = np.kron(pixels, np.ones((32, 32), np.float32))[None, None]  # (1, 1, 64, 128)
    small, scale, offset = forms.make_thumbnails(np.concatenate([big, big]))
    assert small.dtype == np.uint8 and small.shape == (2, 1, 32, 64)
    assert (scale, offset) == (1 / 255, 0.0)  # [0, 1]: the 255 steps of an 8-bit image
    expected = np.kron(np.array([[0, 255, 51, 51], [255, 0, 51, 51]]), np.ones((16, 16)))
    np.testing.assert_array_equal(small[0, 0], expected)
    # another range: its own minimum and maximum over 255 steps
    values = np.array([[-2.0, 0.0, 3.1]], np.float32)  # (N=1, D=3), kept as is
    small, scale, offset = forms.make_thumbnails(values)
    assert (scale, offset) == pytest.approx((5.1 / 255, -2.0))
    np.testing.assert_array_equal(small, [[0, 100, 255]])
    with pytest.raises(ValueError, match="NaN or infinite"):
        forms.make_thumbnails(np.array([[np.nan, 1.0]]))


def test_auto_is_full_up_to_2_gib_and_thumbnails_above():
    assert forms.resolve_form("auto", forms.AUTO_FULL_BYTES) == "full"
    assert forms.resolve_form("auto", forms.AUTO_FULL_BYTES + 1) == "thumbnail"
    assert forms.resolve_form("path", 10) == "path"
    with pytest.raises(ValueError, match="valid: auto, full, thumbnail, path"):
        forms.resolve_form("jpeg", 10)
    assert ("auto", *forms.FORMS) == input_forms.STORE_INPUTS  # the option's and the store's


# ------------------------------------------------------------------ written and read back


def test_a_thumbnail_run_round_trips_and_refuses_a_read_of_the_full_inputs(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((4, 3, 96, 96)).astype(np.float32)
    run = _create(tmp_path / "run", x, input_form="thumbnail")
    assert run.input_form == "thumbnail" and not (run.path / "inputs.npy").exists()
    info = run.input_info
    assert info["shape"] == [3, 96, 96] and info["thumbnail_shape"] == [3, 64, 64]
    stored = run.stored_inputs()
    assert stored.dtype == np.uint8 and stored.shape == (4, 3, 64, 64)
    rows = drawable_inputs(run)
    assert isinstance(rows, ThumbnailRows) and rows[2].dtype == np.float32
    expected = forms.area_resample(forms.area_resample(x[2:3], 2, 64), 3, 64)[0]
    np.testing.assert_allclose(rows[2], expected, atol=0.5 / 255 + 1e-6)  # half a step
    with pytest.raises(RunFormatError, match="keeps thumbnails .*--store-inputs full") as err:
        run.inputs()
    assert "\n" not in str(err.value)
    run.validate()
    assert run.survey() == ([], [])  # inputs_thumbnail.npy is a file the store writes


def test_auto_stores_small_inputs_in_full_and_large_ones_as_thumbnails(tmp_path, monkeypatch):
    x = np.zeros((3, 2), np.float32)
    run = _create(tmp_path / "small", x, input_form="auto")
    assert run.input_form == "full" and "inputs" not in run.meta  # as every older run
    np.testing.assert_array_equal(run.inputs(), x)
    monkeypatch.setattr(forms, "AUTO_FULL_BYTES", 8)  # 24 bytes of inputs: above it
    assert _create(tmp_path / "large", x, input_form="auto").input_form == "thumbnail"


def test_path_needs_sources_and_nothing_is_written_without(tmp_path):
    with pytest.raises(ValueError, match="needs a dataset of files"):
        _create(tmp_path / "run", np.zeros((3, 2), np.float32), input_form="path")
    assert not (tmp_path / "run").exists()


def test_a_thumbnail_run_json_without_its_scale_is_refused(tmp_path):
    run = _create(tmp_path / "run", np.zeros((3, 2), np.float32), input_form="thumbnail")
    meta = json.loads((run.path / "run.json").read_text())
    del meta["inputs"]["scale"]
    (run.path / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunFormatError, match=r"'inputs' of form 'thumbnail' lacks \['scale'\]"):
        Run.open(run.path)
    meta["inputs"]["scale"] = 1.0
    (run.path / "run.json").write_text(json.dumps(meta))
    np.save(run.path / "inputs_thumbnail.npy", np.zeros((3, 2), np.float32))
    with pytest.raises(RunFormatError, match="dtype float32, expected uint8"):
        Run.open(run.path).validate()


def _folder(root: Path) -> dict[str, np.ndarray]:
    """Two classes of three 4x4 greyscale PNGs each; the pixels by relative path."""
    made = {}
    for c, name in enumerate(("cat", "dog")):
        for i in range(3):
            array = np.full((4, 4), 40 * i + 100 * c, np.uint8)
            array[0, 0] = 255
            rel = f"{name}/{i}.png"
            _png(root / rel, array)
            made[rel] = array
    return made


def test_a_folder_run_stores_each_examples_file_and_reads_it_back(tmp_path):
    made = _folder(tmp_path / "pics")
    out = tmp_path / "run"
    args = ["train", "--dataset", "folder", "--data-path", str(tmp_path / "pics")]
    args += ["--test-fraction", "0.34", "--epochs", "1", "--store-inputs", "path"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    run = Run.open(out)
    assert run.input_form == "path" and not (out / "inputs.npy").exists()
    assert run.input_info["root"] == str((tmp_path / "pics").resolve())
    table = pd.read_parquet(out / "inputs_path.parquet")  # readable without memdash
    assert table["example_id"].tolist() == list(range(6))
    assert sorted(table["path"]) == sorted(made)  # relative to the dataset's folder
    data = load_image_folder(tmp_path / "pics", seed=0, test_fraction=0.34)
    trained = np.concatenate([data.x_train, data.x_test])  # the run's example order
    rows = drawable_inputs(run)
    for i, rel in enumerate(table["path"]):
        np.testing.assert_allclose(rows[i][0], made[rel] / 255, atol=1e-6)
        np.testing.assert_allclose(rows[i], trained[i], atol=1e-6)
    run.validate()
    assert run.survey() == ([], [])
    # a file gone: one line naming it, in place of the input
    (tmp_path / "pics" / table["path"][0]).unlink()
    note = drawable_inputs(run)[0]
    assert isinstance(note, str) and "missing" in note and "\n" not in note


def test_canaries_and_noise_inputs_have_no_source(tmp_path):
    from memdash.analysis.record.corruption import prepare

    _folder(tmp_path / "pics")
    data = load_image_folder(tmp_path / "pics", seed=0, test_fraction=0.34)
    kw = {"noise": 0.5, "canaries": 1, "canary_repeats": (1,), "reference_canaries": 2}
    prepared = prepare(data, corruption="random_inputs", **kw)
    paths = prepared.sources.paths
    kinds = prepared.examples["corruption"].to_numpy()
    assert len(paths) == len(prepared.inputs) == 4 + 1 + 2 + 2  # train, canary, test, refs
    assert [p is None for p in paths] == [k != "none" for k in kinds]
    assert paths[5:7].tolist() == data.sources.paths[4:].tolist()  # the test examples


def test_a_saved_hf_dataset_stores_split_and_row(tmp_path):
    import datasets

    arrays = np.random.default_rng(1).integers(0, 256, size=(6, 4, 4, 3)).astype(np.uint8)
    saved = datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict(
                {"img": [Image.fromarray(a) for a in part], "label": [0, 1, 0]}
            )
            for split, part in (("train", arrays[:3]), ("test", arrays[3:]))
        }
    )
    saved.save_to_disk(str(tmp_path / "dd"))
    data = load_hf_disk(tmp_path / "dd", seed=0, image_column="img")
    assert data.sources.paths.tolist() == [f"{s}#{i}" for s in ("train", "test") for i in range(3)]
    back = read_source(data.sources.root, "hf", "test#1", column="img")
    np.testing.assert_allclose(back, arrays[4].transpose(2, 0, 1) / 255, atol=1e-6)
    with pytest.raises(ValueError, match="no row 9"):
        read_source(data.sources.root, "hf", "test#9", column="img")
    with pytest.raises(ValueError, match="leads out of the dataset folder"):
        read_source(data.sources.root, "folder", "../elsewhere.png")


# ------------------------------------------------------------------ refused in one line


def test_path_is_refused_for_datasets_without_files(tmp_path):
    config = RunConfig(data=DataConfig(dataset="digits"), record=RecordConfig(store_inputs="path"))
    with pytest.raises(ValueError, match="needs a dataset of files .*digits has none"):
        validate(config)
    out = tmp_path / "run"
    args = ["train", "--dataset", "digits", "--store-inputs", "path", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "--dataset folder or hf" in " ".join(result.output.split())
    assert not out.exists()
    bad = CliRunner().invoke(app, ["train", "--store-inputs", "jpeg", "--out", str(out)])
    assert bad.exit_code == 2 and "one of auto, full, thumbnail, path" in bad.output


# ------------------------------------------------------------------ the dashboard's charts


def test_the_input_charts_draw_a_thumbnail_run(tmp_path):
    x = np.random.default_rng(2).random((3, 3, 80, 80)).astype(np.float32)
    rows = drawable_inputs(_create(tmp_path / "run", x, input_form="thumbnail"))
    figure = example_input(np.asarray(rows[1]), title="example 1", photo=True)
    assert figure.data[0].type == "image" and np.asarray(figure.data[0].z).shape == (64, 64, 3)
    image = thumbnail(np.asarray(rows[1]), photo=True, width=128)
    assert image.shape == (128, 128, 3) and image.min() >= 0 and image.max() <= 1


def test_the_input_charts_draw_a_path_run_and_say_when_a_file_is_missing(tmp_path):
    grey = np.full((5, 7), 0.5, np.float32)[None]
    rows = PathRows(
        np.array(["a.png", None], dtype=object),
        {"root": str(tmp_path), "source": "folder"},
        reader=lambda root, kind, path, column: grey,
    )
    drawn = example_input(np.asarray(rows[0]), photo=True)
    assert drawn.data[0].type == "heatmap" and np.asarray(drawn.data[0].z).shape == (5, 7)
    missing = PathRows(
        np.array(["gone.png"], dtype=object), {"root": str(tmp_path), "source": "folder"}
    )
    note = np.asarray(missing[0])  # as the pages pass a row
    assert (
        note_of(note) == f"{tmp_path / 'gone.png'}: missing (the image this example was trained on)"
    )
    figure = example_input(note, title="example 0")
    assert not figure.data and figure.layout.annotations[0].text == note_of(note)
    placeholder = thumbnail(note, height=8, width=16)
    assert placeholder.shape == (16, 16) and placeholder.min() < placeholder.max() <= 1
    assert "canary or noise" in note_of(rows[1])


def _examples_page():
    from memdash.dashboard.app_pages import examples

    examples.render()


@pytest.mark.parametrize("form", ["thumbnail", "path"])
def test_the_examples_page_draws_a_thumbnail_or_path_run(tmp_path, monkeypatch, form):
    from dataclasses import replace

    from streamlit.testing.v1 import AppTest

    from memdash.analysis.record.training import train
    from tests.conftest import tiny_config

    _folder(tmp_path / "pics")
    config = tiny_config()
    config = replace(
        config,
        data=DataConfig(dataset="folder", path=str(tmp_path / "pics"), test_fraction=0.34),
        train=replace(config.train, epochs=1),
        record=RecordConfig(store_inputs=form),
    )
    train(config, tmp_path / "runs" / "pics")
    if form == "path":  # example 0's file gone: the page says so instead of failing
        stored = pd.read_parquet(tmp_path / "runs" / "pics" / "inputs_path.parquet")
        (tmp_path / "pics" / stored["path"][0]).unlink()
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path / "runs"))
    at = AppTest.from_function(_examples_page, default_timeout=60)
    at.session_state["run"] = "pics"
    at.session_state["example"] = 0
    at.run()
    assert not at.exception
    spec = at.get("plotly_chart")[0].proto.spec  # the example's input
    assert ("missing" in spec) == (form == "path")
