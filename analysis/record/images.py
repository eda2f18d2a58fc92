"""The user's own images: a Hugging Face dataset saved to disk (`load_hf_disk`), or a folder
with one subfolder per class (the layout of torchvision's
ImageFolder and of most image datasets unpacked to disk), read with Pillow.

    DIR/train/<class>/*.png|jpg|jpeg|bmp|gif|tif|webp
    DIR/test/<class>/...            (optional; without it a seeded stratified split)
or  DIR/<class>/...                 (split by the test fraction)

Classes are the subfolder names in sorted order (label i = the i-th name). Images become
float32 arrays in [0, 1] of shape (C, H, W): C = 1 when every image is greyscale, else 3
(RGB; an alpha channel is dropped, a palette expanded). All images must share one size
unless a size is asked for, when each is resized (bilinear) to it. Nothing is downloaded.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from memdash.analysis.record.dataset import Dataset, saved_split_table, split_arrays
from memdash.analysis.store.inputs import ExampleSources

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
SIXTEEN_BIT = ("I", "I;16", "I;16B", "I;16L", "I;16N")  # Pillow's 16-bit greyscale modes


def load_image_folder(
    path: str | Path | None,
    *,
    seed: int,
    test_fraction: float = 0.2,
    size: tuple[int, int] | None = None,
) -> Dataset:
    """Read a class-per-subfolder image folder into a `Dataset` (see the module docstring).

    Parameters
    ----------
    path : the folder
    seed : the split's seed, when the folder has no ``test/``
    size : (height, width) to resize every image to; None = keep (all must match)

    Raises
    ------
    ValueError
        Naming the folder or file at fault: no folder, no class subfolders, a class without
        images, an image Pillow cannot read, images of different sizes without `size`, a
        test class the training split lacks, fewer than two classes.
    """
    if not path:
        raise ValueError("dataset 'folder' needs --data-path DIR, a folder of class subfolders")
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{root}: no such folder (dataset 'folder' reads DIR/<class>/images)")
    train_dir, test_dir = root / "train", root / "test"
    split = train_dir.is_dir()
    classes = _classes(train_dir if split else root)
    files, labels = _files(train_dir if split else root, classes)
    if split and test_dir.is_dir():
        test_classes = _classes(test_dir, minimum=1)
        unknown = sorted(set(test_classes) - set(classes))
        if unknown:
            raise ValueError(
                f"{test_dir}: classes {unknown} have no training images in {train_dir}"
            )
        test_files, test_labels = _files(test_dir, test_classes, index=classes)
    else:
        test_files, test_labels = [], []
    images = read_images([*files, *test_files], size)
    x, x_test = images[: len(files)], images[len(files) :]
    y, y_test = np.asarray(labels, np.int64), np.asarray(test_labels, np.int64)
    name = f"folder {root.name}"
    relative = [f.relative_to(root).as_posix() for f in [*files, *test_files]]
    sources = ExampleSources(str(root.resolve()), "folder", np.array(relative, dtype=object))
    if len(test_files):
        return Dataset(x, y, x_test, y_test, len(classes), name, sources)
    few = [classes[c] for c in range(len(classes)) if (y == c).sum() < 2]
    if few:
        raise ValueError(
            f"{root}: classes {few} have fewer than 2 images, too few to split into train and "
            "test; add images or give a test/ folder"
        )
    return split_arrays(x, y, seed, test_fraction, name, n_classes=len(classes), sources=sources)


def _classes(folder: Path, minimum: int = 2) -> list[str]:
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if folder.name != "train" and {"train", "test"} & set(names):
        names = [n for n in names if n not in ("train", "test")]
    if len(names) < minimum:
        raise ValueError(
            f"{folder}: {len(names)} class subfolder(s) found; an image folder needs at least two "
            "(DIR/<class>/image.png, or DIR/train/<class>/ and DIR/test/<class>/)"
        )
    return names


def _files(
    folder: Path, classes: list[str], index: list[str] | None = None
) -> tuple[list[Path], list[int]]:
    """Every image file under each class subfolder (sorted), with its class's label."""
    index = index or classes
    files, labels = [], []
    for name in classes:
        found = sorted(p for p in (folder / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise ValueError(
                f"{folder / name}: no images ({', '.join(IMAGE_SUFFIXES)}) in this class folder"
            )
        files += found
        labels += [index.index(name)] * len(found)
    return files, labels


def read_images(
    sources: list, size: tuple[int, int] | None, names: list[str] | None = None
) -> np.ndarray:
    """float32 (N, C, H, W) in [0, 1]: C = 1 if every image is greyscale, else 3.

    `sources` are files (paths) or encoded images (bytes); `names` say which, in errors
    (default: the paths themselves)."""
    from PIL import Image, UnidentifiedImageError

    names = names or [str(source) for source in sources]
    pictures = []
    for source, name in zip(sources, names, strict=True):
        try:
            opened = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            with opened as image:
                image.load()
                pictures.append(_as_array(image, size))
        except (UnidentifiedImageError, OSError, ValueError) as err:
            raise ValueError(f"{name}: not an image Pillow can read ({err})") from None
    if not pictures:
        raise ValueError("no images to read")
    first = pictures[0].shape[:2]
    for name, picture in zip(names, pictures, strict=True):
        if picture.shape[:2] != first:
            raise ValueError(
                f"images of different sizes: {names[0]} is {first[0]}x{first[1]}, {name} is "
                f"{picture.shape[0]}x{picture.shape[1]}; resize them with --image-size HxW"
            )
    colour = any(p.shape[2] == 3 for p in pictures)
    stacked = np.stack([_channels(p, 3 if colour else 1) for p in pictures])
    return np.ascontiguousarray(stacked.transpose(0, 3, 1, 2))


def _as_array(image, size: tuple[int, int] | None) -> np.ndarray:
    """(H, W, 1 or 3) float32 in [0, 1] of one Pillow image: 8-bit greyscale and colour over
    255, 16-bit greyscale (Pillow's modes I and I;16) over 65535."""
    from PIL import Image

    if image.mode in SIXTEEN_BIT:
        image, scale = image.convert("I"), 65535.0
    elif image.mode in ("1", "L", "LA", "F"):
        image, scale = image.convert("L"), 255.0
    else:  # RGB, RGBA, P (palette), CMYK, ...
        image, scale = image.convert("RGB"), 255.0
    if size is not None:
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / scale
    return array[:, :, None] if array.ndim == 2 else array


def _channels(array: np.ndarray, channels: int) -> np.ndarray:
    """A greyscale (H, W, 1) repeated to RGB when other images are in colour."""
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 and channels == 3 else array


# ------------------------------------------------ a Hugging Face dataset saved to disk


def load_hf_disk(
    path: str | Path | None,
    *,
    seed: int,
    test_fraction: float = 0.2,
    size: tuple[int, int] | None = None,
    image_column: str = "image",
    label_column: str = "label",
) -> Dataset:
    """A Hugging Face dataset written by ``save_to_disk`` (a ``DatasetDict`` with ``train``
    and optionally ``test`` splits, or a single ``Dataset``), read from its Arrow files
    with pyarrow: the `datasets` library is not needed, and nothing is downloaded.

    The image column holds the ``Image`` feature's encoded files (PNG, JPEG, ...), decoded
    as `load_image_folder` decodes files; the label column integers (a ``ClassLabel``'s
    names give the number of classes). Without a ``test`` split, a seeded stratified split.
    """
    if not path:
        raise ValueError("dataset 'hf' needs --data-path DIR, a dataset saved with save_to_disk")
    root = Path(path)
    if (root / "dataset_dict.json").is_file():
        splits = json.loads((root / "dataset_dict.json").read_text()).get("splits", [])
        if "train" not in splits:
            raise ValueError(
                f"{root}: the saved DatasetDict has no 'train' split (it has {splits})"
            )
        train_dir = root / "train"
        test_dir = root / "test" if "test" in splits else None
    elif (root / "state.json").is_file():
        train_dir, test_dir = root, None
    else:
        raise ValueError(
            f"{root}: not a dataset saved with save_to_disk (no dataset_dict.json or state.json)"
        )
    x, y, n_classes = _hf_split(train_dir, size, image_column, label_column)
    name = f"hf {root.name}"
    rows = _rows(root, train_dir, len(y))
    if test_dir is None:
        sources = ExampleSources(str(root.resolve()), "hf", rows, image_column)
        return split_arrays(x, y, seed, test_fraction, name, n_classes=n_classes, sources=sources)
    x_test, y_test, _ = _hf_split(test_dir, size, image_column, label_column)
    if x_test.shape[1:] != x.shape[1:]:
        raise ValueError(f"{test_dir}: images of shape {x_test.shape[1:]}, train {x.shape[1:]}")
    if len(y_test) and y_test.max() >= n_classes:
        raise ValueError(f"{test_dir}: label {y_test.max()} outside the {n_classes} classes")
    rows = np.concatenate([rows, _rows(root, test_dir, len(y_test))])
    sources = ExampleSources(str(root.resolve()), "hf", rows, image_column)
    return Dataset(x, y, x_test, y_test, n_classes, name, sources)


def _rows(root: Path, folder: Path, n: int) -> np.ndarray:
    """``SPLIT#ROW`` of each row of a saved split (SPLIT its folder under `root`, "" for
    `root` itself), the path `--store-inputs path` stores."""
    split = "" if folder == root else folder.relative_to(root).as_posix()
    return np.array([f"{split}#{i}" for i in range(n)], dtype=object)


def _hf_split(
    folder: Path, size: tuple[int, int] | None, image_column: str, label_column: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """One saved split: images (N, C, H, W), labels (N,), and the number of classes."""
    table = saved_split_table(folder)
    missing = [c for c in (image_column, label_column) if c not in table.column_names]
    if missing:
        raise ValueError(
            f"{folder}: no column {missing[0]!r}; its columns are {table.column_names} (name "
            "them with --image-column and --label-column)"
        )
    cells = table.column(image_column).to_pylist()
    sources, names = [], []
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or not (cell.get("bytes") or cell.get("path")):
            raise ValueError(
                f"{folder}: row {i} of {image_column!r} is not an encoded image (the Image "
                "feature's bytes or path)"
            )
        sources.append(cell["bytes"] or Path(cell["path"]))
        names.append(f"{folder} row {i}")
    labels = np.asarray(table.column(label_column).to_pylist())
    if labels.dtype.kind not in "iu" or (labels < 0).any():
        raise ValueError(f"{folder}: {label_column!r} must hold integer class ids >= 0")
    feature = _features(folder).get(label_column, {})
    n_classes = len(feature["names"]) if "names" in feature else int(labels.max()) + 1
    if labels.max() >= n_classes:
        raise ValueError(f"{folder}: label {labels.max()} outside the {n_classes} classes")
    return read_images(sources, size, names), labels.astype(np.int64), n_classes


def _features(folder: Path) -> dict:
    try:
        return json.loads((folder / "dataset_info.json").read_text()).get("features", {})
    except (OSError, ValueError):
        return {}


# ------------------------------------------------ an example's source, read back


def read_source(root: str | Path, kind: str, path: str, *, column: str = "image") -> np.ndarray:
    """One example's input read from where `--store-inputs path` says it came from: float32
    (C, H, W) in [0, 1] as training read it (before any --image-size resize).

    Parameters
    ----------
    root : the dataset's folder (run.json's ``inputs.root``)
    kind : ``folder`` (`path` an image file under `root`) or ``hf`` (``SPLIT#ROW``)
    column : hf: the column of images

    Raises
    ------
    ValueError
        One line naming what is missing: the file, the saved split or its row, a path leading
        out of `root`, an image Pillow cannot read, an unknown `kind`.
    """
    base = Path(root).resolve()
    if kind == "folder":
        file = (base / path).resolve()
        if not file.is_relative_to(base):
            raise ValueError(f"{path}: leads out of the dataset folder {base}")
        if not file.is_file():
            raise ValueError(f"{file}: missing (the image this example was trained on)")
        return read_images([file], None)[0]
    if kind != "hf":
        raise ValueError(f"unknown source kind {kind!r}; valid: folder, hf")
    split, _, row = path.rpartition("#")
    folder = (base / split).resolve()
    if not folder.is_relative_to(base) or not row.isdigit():
        raise ValueError(f"{path}: not SPLIT#ROW of the saved dataset {base}")
    if not folder.is_dir():
        raise ValueError(f"{folder}: missing (the saved split this example came from)")
    table = saved_split_table(folder)
    if int(row) >= table.num_rows or column not in table.column_names:
        raise ValueError(f"{folder}: no row {row} of column {column!r} (the dataset changed)")
    cell = table.column(column)[int(row)].as_py()
    if not isinstance(cell, dict) or not (cell.get("bytes") or cell.get("path")):
        raise ValueError(f"{folder} row {row}: not an encoded image")
    return read_images([cell["bytes"] or Path(cell["path"])], None, [f"{folder} row {row}"])[0]
