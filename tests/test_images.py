"""The user's image folders (`memdash train --dataset folder`) and the ResNet-9 on them: pixel
values read back exactly, the folder's errors, and a run of generated PNGs trained with each
model, analyzed, localized, estimated and opened in the dashboard."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.record.images import load_image_folder
from memdash.analysis.store import Run


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_a_train_and_test_folder_reads_labels_and_pixels_exactly(tmp_path):
    grey = np.full((4, 6), 51, np.uint8)  # 51 / 255 = 0.2
    red = np.zeros((4, 6, 3), np.uint8)
    red[..., 0], red[..., 2] = 255, 102  # (1, 0, 0.4)
    _save(tmp_path / "train" / "zebra" / "a.png", grey)
    _save(tmp_path / "train" / "apple" / "b.png", red)
    _save(tmp_path / "train" / "apple" / "c.jpg", np.zeros((4, 6, 3), np.uint8))
    _save(tmp_path / "test" / "zebra" / "d.png", np.full((4, 6), 255, np.uint8))
    data = load_image_folder(tmp_path, seed=0)
    # classes in sorted order: apple = 0, zebra = 1; files sorted within a class
    assert data.y_train.tolist() == [0, 0, 1] and data.y_test.tolist() == [1]
    assert data.n_classes == 2 and data.x_train.shape == (3, 3, 4, 6)  # colour: 3 channels
    np.testing.assert_allclose(data.x_train[0, :, 0, 0], [1.0, 0.0, 0.4], atol=1e-6)
    np.testing.assert_allclose(data.x_train[2], 0.2, atol=1e-6)  # the grey image, repeated
    np.testing.assert_allclose(data.x_test, 1.0)
    assert data.x_train.dtype == np.float32


def test_greyscale_and_16_bit_images_keep_one_channel(tmp_path):
    deep = np.full((8, 8), 65535, np.uint16)
    deep[0, 0] = 13107  # 0.2 of 65535
    for c in ("a", "b"):
        for i in range(3):
            _save(tmp_path / c / f"{i}.png", deep if c == "a" else np.zeros((8, 8), np.uint8))
    data = load_image_folder(tmp_path, seed=1, test_fraction=0.3)
    assert data.x_train.shape[1:] == (1, 8, 8)
    assert len(data.y_train) == 4 and sorted(data.y_test.tolist()) == [0, 1]  # stratified
    a = np.concatenate([data.x_train[data.y_train == 0], data.x_test[data.y_test == 0]])
    np.testing.assert_allclose(a[:, 0, 0, 0], 0.2, atol=1e-6)
    np.testing.assert_allclose(a[:, 0, 1, 1], 1.0)
    # the same seed, the same split
    again = load_image_folder(tmp_path, seed=1, test_fraction=0.3)
    np.testing.assert_array_equal(again.x_train, data.x_train)


def test_sizes_must_match_unless_resized(tmp_path):
    for c, shape in (("a", (10, 20)), ("b", (5, 5))):
        for i in range(2):
            _save(tmp_path / c / f"{i}.png", np.full(shape, 255, np.uint8))
    with pytest.raises(ValueError, match=r"a/0.png is 10x20, .*b/0.png is 5x5; resize them"):
        load_image_folder(tmp_path, seed=0)
    data = load_image_folder(tmp_path, seed=0, test_fraction=0.5, size=(6, 4))
    assert data.x_train.shape == (2, 1, 6, 4)
    np.testing.assert_allclose(data.x_train, 1.0, atol=1e-6)  # a constant image stays constant


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: None, "no such folder"),
        (lambda d: _save(d / "only" / "x.png", np.zeros((8, 8), np.uint8)), "1 class subfolder"),
        (
            lambda d: (
                (d / "a").mkdir(parents=True),
                _save(d / "b" / "x.png", np.zeros((8, 8), np.uint8)),
            ),
            "a: no images",
        ),
        (
            lambda d: (
                _save(d / "a" / "x.png", np.zeros((8, 8), np.uint8)),
                _save(d / "a" / "y.png", np.zeros((8, 8), np.uint8)),
                (d / "b").mkdir(),
                (d / "b" / "bad.png").write_bytes(b"not a png"),
            ),
            "bad.png: not an image Pillow can read",
        ),
        (
            lambda d: (
                _save(d / "train" / "a" / "x.png", np.zeros((8, 8), np.uint8)),
                _save(d / "train" / "b" / "x.png", np.zeros((8, 8), np.uint8)),
                _save(d / "test" / "c" / "x.png", np.zeros((8, 8), np.uint8)),
            ),
            r"classes \['c'\] have no training images",
        ),
        (
            lambda d: (
                _save(d / "a" / "x.png", np.zeros((8, 8), np.uint8)),
                _save(d / "b" / "x.png", np.zeros((8, 8), np.uint8)),
                _save(d / "b" / "y.png", np.zeros((8, 8), np.uint8)),
            ),
            r"classes \['a'\] have fewer than 2 images",
        ),
    ],
)
def test_a_bad_folder_gets_one_message_naming_it(tmp_path, make, message):
    root = tmp_path / "images"
    make(root)
    with pytest.raises(ValueError, match=message):
        load_image_folder(root, seed=0)


def _shapes(root: Path, n_per_class: int, size: int) -> None:
    """Generated PNGs of 4 classes a small network can tell apart: a bright square in one
    of the four quadrants (one per class), in a random colour, on noise."""
    rng = np.random.default_rng(0)
    half = size // 2
    for c in range(4):
        for i in range(n_per_class):
            image = rng.integers(0, 60, size=(size, size, 3)).astype(np.uint8)
            top, left = (c // 2) * half, (c % 2) * half
            image[top : top + half, left : left + half] = rng.integers(150, 256, size=3)
            split = "test" if i % 5 == 0 else "train"
            _save(root / split / f"class_{c}" / f"{i:03d}.png", image)


TRAIN = ["train", "--dataset", "folder", "--epochs", "2", "--noise", "0.2", "--lr", "0.02"]


@pytest.fixture(scope="module")
def image_runs(tmp_path_factory):
    """Runs of 300 generated 16x16 RGB PNGs: an MLP, a 2-D CNN and a ResNet-9 (width 4)."""
    root = tmp_path_factory.mktemp("images")
    _shapes(root / "pngs", 75, 16)
    runs = {}
    models = {
        "mlp": ["--model", "mlp", "--hidden", "32"],
        "cnn": ["--model", "cnn", "--channels", "4,8", "--hidden", "16"],
        "resnet": ["--model", "resnet", "--width", "4"],
    }
    for name, options in models.items():
        out = root / name
        args = [*TRAIN, "--data-path", str(root / "pngs"), *options, "--out", str(out)]
        layers = {"mlp": "fc1,out", "cnn": "conv2,out", "resnet": "layer3,out"}[name]
        args += ["--embed-layers", layers]
        args += ["--embed-epochs", "2", "--checkpoint-epochs", "0,1,2"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        runs[name] = out
    return runs


def test_a_folder_run_holds_the_images_and_validates(image_runs):
    for name, path in image_runs.items():
        run = Run.open(path)
        assert run.inputs().shape == (300, 3, 16, 16), name
        examples = run.examples()
        assert (examples["split"] == "test").sum() == 60
        assert run.config["data"]["dataset"] == "folder"
        result = CliRunner().invoke(app, ["info", str(path)])
        assert result.exit_code == 0 and "valid" in result.output, result.output
        result = CliRunner().invoke(app, ["analyze", str(path), "--only", "scores,knn"])
        assert result.exit_code == 0, result.output
        assert run.read_derived("knn.parquet")["layer"].nunique() == 2


def test_the_resnet_works_with_localization_and_estimates(image_runs, tmp_path):
    path = tmp_path / "resnet"
    shutil.copytree(image_runs["resnet"], path)
    local = ["localize", str(path), "--flip-examples", "8", "--flip-max-units", "20"]
    result = CliRunner().invoke(app, [*local, "--retrain-epochs", "1", "--flip-others", "16"])
    assert result.exit_code == 0, result.output
    run = Run.open(path)
    flips = run.read_derived("localization.parquet")
    assert len(flips) == 16 and (flips["neurons_zeroed"] >= 1).all()
    assert set(run.read_derived("rewinding.parquet")["layer"]) >= {"prep", "layer1", "layer3"}
    estimate = ["estimate", "--like", str(path), "--models", "4", "--workers", "1"]
    result = CliRunner().invoke(app, estimate)
    assert result.exit_code == 0, result.output
    held = run.read_derived("heldout.parquet")
    scores = held["mem_score"].dropna()
    assert len(scores) > 100 and scores.between(-1, 1).all()


def test_the_resnet_trains_with_example_tied_dropout_and_capacity_measures(tmp_path):
    _shapes(tmp_path / "pngs", 20, 8)
    args = [*TRAIN, "--data-path", str(tmp_path / "pngs"), "--model", "resnet", "--width", "2"]
    args += ["--example-tied-dropout", "--record-loss-sensitivity", "--critical-examples", "10"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    run = Run.open(tmp_path / "run")
    trace = run.trace("eval", epochs=[2], columns=["loss_sensitivity", "critical"])
    assert trace["loss_sensitivity"].notna().all() and trace["critical"].notna().sum() == 10
    tied = run.meta["example_tied_dropout"]
    assert set(tied) >= {"keep", "drop"}


def _examples_page():
    from memdash.dashboard.app_pages import examples

    examples.render()


def test_the_dashboard_draws_colour_images(image_runs, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MEMDASH_ROOTS", str(image_runs["resnet"].parent))
    at = AppTest.from_function(_examples_page, default_timeout=60)
    at.session_state["run"] = "resnet"
    at.session_state["example"] = 7
    at.run()
    assert not at.exception
    images = at.get("image")
    assert images, "the gallery draws thumbnails"
    (detail,) = [c for c in at.get("plotly_chart") if '"type":"image"' in c.proto.spec]
    assert json.loads(detail.proto.spec)["data"][0]["type"] == "image"


# ------------------------------------------------ a Hugging Face dataset saved to disk


def _hf_images(n: int, seed: int) -> tuple[list, list[int], np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = rng.integers(0, 256, size=(n, 8, 8, 3)).astype(np.uint8)
    return [Image.fromarray(a) for a in arrays], [i % 3 for i in range(n)], arrays


def test_a_saved_dataset_dict_reads_back_its_pixels_and_labels(tmp_path):
    import datasets

    from memdash.analysis.record.images import load_hf_disk

    features = datasets.Features(
        {"img": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c", "d"])}
    )
    train, labels, arrays = _hf_images(9, 0)
    test, test_labels, test_arrays = _hf_images(3, 1)
    saved = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"img": train, "label": labels}, features=features),
            "test": datasets.Dataset.from_dict(
                {"img": test, "label": test_labels}, features=features
            ),
        }
    )
    saved.save_to_disk(str(tmp_path / "dd"))
    data = load_hf_disk(tmp_path / "dd", seed=0, image_column="img")
    np.testing.assert_allclose(data.x_train, arrays.transpose(0, 3, 1, 2) / 255.0, atol=1e-6)
    np.testing.assert_allclose(data.x_test, test_arrays.transpose(0, 3, 1, 2) / 255.0, atol=1e-6)
    assert data.y_train.tolist() == labels and data.y_test.tolist() == test_labels
    assert data.n_classes == 4  # the ClassLabel's names, though class d has no image
    with pytest.raises(ValueError, match=r"no column 'image'; its columns are \['img', 'label'\]"):
        load_hf_disk(tmp_path / "dd", seed=0)


def test_a_saved_dataset_trains_a_run(tmp_path):
    import datasets

    images, labels, arrays = _hf_images(30, 2)
    saved = datasets.Dataset.from_dict(
        {"image": images, "label": labels},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")}),
    )
    saved.save_to_disk(str(tmp_path / "one"))
    args = ["train", "--dataset", "hf", "--data-path", str(tmp_path / "one"), "--epochs", "1"]
    result = CliRunner().invoke(app, [*args, "--image-size", "4x4", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    run = Run.open(tmp_path / "run")
    assert run.inputs().shape == (30, 3, 4, 4) and run.n_classes == 3
    assert (run.examples()["split"] == "test").sum() == 6  # a seeded 20% split
    bad = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x"), "--label-column", "y"])
    assert bad.exit_code == 1 and "no column 'y'" in " ".join(bad.output.split())
    missing = [
        "train",
        "--dataset",
        "hf",
        "--data-path",
        str(tmp_path),
        "--out",
        str(tmp_path / "z"),
    ]
    result = CliRunner().invoke(app, missing)
    shown = " ".join(result.output.split())
    assert result.exit_code == 1 and "not a dataset saved with save_to_disk" in shown
