"""Built-in datasets and the user's own .npz files, as float32 arrays.

Every loader returns a `Dataset` whose inputs keep their natural shape:
images as (N, C, H, W), 1-D signals as (N, 1, L), plain vectors as (N, D).
Nothing is downloaded: digits ships with scikit-learn, mnist1d is generated
locally by the mnist1d package, synthetic data is drawn from a seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memdash.analysis.record.dataset import Dataset, split_arrays

SYNTHETIC_DEFAULT_N = 2000
MNIST1D_DEFAULT_N = 5000


def load_dataset(
    name: str,
    *,
    seed: int,
    test_fraction: float = 0.2,
    path: str | None = None,
    n_examples: int | None = None,
    shape: tuple[int, ...] = (64,),
    n_classes: int = 10,
    image_size: tuple[int, int] | None = None,
    image_column: str = "image",
    label_column: str = "label",
) -> Dataset:
    """Load a dataset by name: ``digits``, ``mnist1d``, ``synthetic``, ``npz``, ``folder``
    (an image folder) or ``hf`` (a Hugging Face dataset saved to disk); the last two in
    `memdash.analysis.record.images`, their images resized to `image_size` when given.

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones.
    """
    loaders = {
        "digits": lambda: _digits(seed, test_fraction),
        "mnist1d": lambda: _mnist1d(seed, n_examples or MNIST1D_DEFAULT_N, test_fraction),
        "synthetic": lambda: synthetic(
            n_examples=n_examples or SYNTHETIC_DEFAULT_N,
            shape=shape,
            n_classes=n_classes,
            seed=seed,
            test_fraction=test_fraction,
        ),
        "npz": lambda: load_npz(path, seed=seed, test_fraction=test_fraction),
        "folder": lambda: _images("load_image_folder")(
            path, seed=seed, test_fraction=test_fraction, size=image_size
        ),
        "hf": lambda: _images("load_hf_disk")(
            path,
            seed=seed,
            test_fraction=test_fraction,
            size=image_size,
            image_column=image_column,
            label_column=label_column,
        ),
    }
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(loaders)}")
    return loaders[name]()


def _images(loader: str):
    """A loader of `memdash.analysis.record.images` (Pillow imported only when used)."""
    from memdash.analysis.record import images

    return getattr(images, loader)


def _digits(seed: int, test_fraction: float) -> Dataset:
    """sklearn's 8x8 digits, scaled to [0, 1], as (N, 1, 8, 8) images."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = (raw.images / 16.0).reshape(-1, 1, 8, 8)
    return split_arrays(x, raw.target, seed, test_fraction, "digits")


def _mnist1d(seed: int, n_examples: int, test_fraction: float) -> Dataset:
    """MNIST-1D (Greydanus 2020) generated locally, as (N, 1, 40) signals.

    The generator draws from numpy's global random state; it is saved and
    restored around the call so that loading has no side effect.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = n_examples
    args.seed = seed
    state = np.random.get_state()  # noqa: NPY002 (the generator uses the legacy global state)
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    x = np.concatenate([data["x"], data["x_test"]])[:, None, :]
    y = np.concatenate([data["y"], data["y_test"]])
    return split_arrays(x, y, seed, test_fraction, "mnist1d")


def synthetic(
    *,
    n_examples: int,
    shape: tuple[int, ...],
    n_classes: int,
    seed: int,
    test_fraction: float = 0.2,
) -> Dataset:
    """A seeded class-structured set: a smooth prototype per class plus noise.

    Each class has a prototype (Gaussian noise smoothed along every spatial
    axis, so that convolutions find structure); an example is its class's
    prototype times a random gain in [0.5, 1.5] plus unit Gaussian noise.

    Parameters
    ----------
    n_examples : examples in all (train + test), at least 2 per class
    shape : one input's shape: (D,) for vectors, (C, L) or (C, H, W) for signals and images
    """
    if n_examples < 2 * n_classes or n_classes < 2:
        raise ValueError(
            f"synthetic data needs n_classes >= 2 and n_examples >= 2 * n_classes, "
            f"got {n_examples} examples for {n_classes} classes"
        )
    rng = np.random.default_rng(seed)
    protos = rng.standard_normal((n_classes, *shape)).astype(np.float32)
    for axis in range(2, protos.ndim):  # smooth spatial axes (not the class or channel axis)
        protos = (protos + np.roll(protos, 1, axis) + np.roll(protos, -1, axis)) / 3
    protos *= 2.0 / protos.std()
    y = np.arange(n_examples) % n_classes
    rng.shuffle(y)
    gain = rng.uniform(0.5, 1.5, size=(n_examples,) + (1,) * len(shape)).astype(np.float32)
    x = protos[y] * gain + rng.standard_normal((n_examples, *shape), dtype=np.float32)
    return split_arrays(x, y, seed, test_fraction, "synthetic")


def load_npz(path: str | None, *, seed: int, test_fraction: float = 0.2) -> Dataset:
    """The user's own data: an .npz with ``X``, ``y`` and optionally ``X_test``, ``y_test``.

    ``X`` is numeric, (N, ...) with N >= 1 and at least one feature per example,
    finite in float32; ``y`` holds N integer labels 0..C-1 with 2 <= C <= N
    (whole-valued floats are accepted). A test split, when given, has the same
    per-example shape and no label outside 0..C-1. Without one, a seeded
    stratified split of ``test_fraction`` is made.

    Raises
    ------
    ValueError
        Naming the file and what is wrong with it; the file is only read.
    """
    if not path:
        raise ValueError("dataset 'npz' needs --data-path pointing at an .npz file")
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"npz dataset {file}: no such file")
    arrays = _read_npz(file)
    missing = {"X", "y"} - set(arrays)
    if missing:
        raise ValueError(
            f"npz dataset {file}: missing arrays {sorted(missing)}; has {sorted(arrays)} "
            "(expected X, y and optionally X_test, y_test)"
        )
    x, y = _check_xy(file, "X", "y", arrays["X"], arrays["y"])
    n_classes = int(y.max()) + 1
    if n_classes < 2 or n_classes > len(y):
        raise ValueError(
            f"npz dataset {file}: y must hold labels 0..C-1 with 2 <= C <= N = {len(y)}; "
            f"its largest label is {n_classes - 1}"
        )
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise ValueError(f"npz dataset {file}: X_test and y_test come together; one is missing")
    if "X_test" not in arrays:
        try:
            return split_arrays(x, y, seed, test_fraction, file.stem)
        except ValueError as err:
            raise ValueError(
                f"npz dataset {file}: cannot make a stratified {test_fraction:.0%} test split "
                f"({err}); add more examples per class or give X_test and y_test"
            ) from None
    x_test, y_test = _check_xy(file, "X_test", "y_test", arrays["X_test"], arrays["y_test"])
    if x_test.shape[1:] != x.shape[1:]:
        raise ValueError(
            f"npz dataset {file}: X_test's examples are {x_test.shape[1:]}, X's {x.shape[1:]}"
        )
    if y_test.max() >= n_classes:
        raise ValueError(
            f"npz dataset {file}: y_test has label {int(y_test.max())}, "
            f"outside y's 0..{n_classes - 1}"
        )
    return Dataset(x, y, x_test, y_test, n_classes, file.stem)


def _read_npz(file: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz archive, never unpickling; a clear error for anything else."""
    import zipfile
    import zlib

    try:
        raw = np.load(file, allow_pickle=False)
        if not isinstance(raw, np.lib.npyio.NpzFile):
            raise ValueError(
                f"npz dataset {file}: this is a single .npy array, not an .npz archive of X and "
                "y (write one with numpy.savez(path, X=..., y=...))"
            )
        with raw:
            arrays = {k: raw[k] for k in raw.files}
        odd = sorted(k for k, v in arrays.items() if not isinstance(v, np.ndarray))
        if odd:
            raise ValueError(f"npz dataset {file}: the members {odd} are not .npy arrays")
        return arrays
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        if str(err).startswith("npz dataset"):
            raise
        raise ValueError(
            f"npz dataset {file}: not a readable .npz archive of arrays ({err}); "
            "write one with numpy.savez(path, X=..., y=...)"
        ) from None


def _check_xy(
    file: Path, xname: str, yname: str, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs as finite float32 and labels as int64, or a ValueError naming what is wrong."""
    if y.ndim != 1 or x.ndim < 2 or len(x) != len(y):
        raise ValueError(
            f"npz dataset {file}: {xname} must be (N, ...) and {yname} (N,), "
            f"got {x.shape} and {y.shape}"
        )
    if len(x) == 0 or x[0].size == 0:
        raise ValueError(f"npz dataset {file}: {xname} {x.shape} holds no examples or no features")
    if x.dtype.kind not in "biuf":
        raise ValueError(f"npz dataset {file}: {xname} must be numeric, got dtype {x.dtype}")
    whole = y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))
    if not (y.dtype.kind in "iu" or whole) or y.min() < 0:
        seen = f" from {y.min()} to {y.max()}" if y.dtype.kind in "iuf" else ""
        raise ValueError(
            f"npz dataset {file}: {yname} must hold integer labels 0..C-1, "
            f"got dtype {y.dtype}{seen}"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        x32 = x.astype(np.float32)
    if not np.all(np.isfinite(x32)):
        raise ValueError(
            f"npz dataset {file}: {xname} contains NaN, infinite or float32-overflowing values"
        )
    return x32, y.astype(np.int64)
