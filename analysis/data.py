"""Built-in datasets and the user's own .npz files, as float32 arrays.

Every loader returns a `Dataset` whose inputs keep their natural shape:
images as (N, C, H, W), 1-D signals as (N, 1, L), plain vectors as (N, D).
Nothing is downloaded: digits ships with scikit-learn, mnist1d is generated
locally by the mnist1d package, synthetic data is drawn from a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SYNTHETIC_DEFAULT_N = 2000
MNIST1D_DEFAULT_N = 5000


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays of one dataset.

    Attributes
    ----------
    x_train, x_test : float32 arrays, shape (N_train, *input_shape), (N_test, *input_shape)
    y_train, y_test : int64 arrays, shape (N_train,), (N_test,)
    n_classes : number of classes; labels lie in 0..n_classes-1
    name : the dataset's name, for display
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def load_dataset(
    name: str,
    *,
    seed: int,
    test_fraction: float = 0.2,
    path: str | None = None,
    n_examples: int | None = None,
    shape: tuple[int, ...] = (64,),
    n_classes: int = 10,
) -> Dataset:
    """Load a dataset by name: ``digits``, ``mnist1d``, ``synthetic`` or ``npz``.

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
    }
    if name not in loaders:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(loaders)}")
    return loaders[name]()


def _split(x: np.ndarray, y: np.ndarray, seed: int, test_fraction: float, name: str) -> Dataset:
    """A seeded stratified train/test split."""
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return Dataset(
        x_tr.astype(np.float32),
        y_tr.astype(np.int64),
        x_te.astype(np.float32),
        y_te.astype(np.int64),
        int(y.max()) + 1,
        name,
    )


def _digits(seed: int, test_fraction: float) -> Dataset:
    """sklearn's 8x8 digits, scaled to [0, 1], as (N, 1, 8, 8) images."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = (raw.images / 16.0).reshape(-1, 1, 8, 8)
    return _split(x, raw.target, seed, test_fraction, "digits")


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
    return _split(x, y, seed, test_fraction, "mnist1d")


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
    return _split(x, y, seed, test_fraction, "synthetic")


def load_npz(path: str | None, *, seed: int, test_fraction: float = 0.2) -> Dataset:
    """The user's own data: an .npz with ``X``, ``y`` and optionally ``X_test``, ``y_test``.

    Without a test split, a seeded stratified split of ``test_fraction`` is made.
    Labels must be integers 0..C-1.
    """
    if not path:
        raise ValueError("dataset 'npz' needs --data-path pointing at an .npz file")
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"npz dataset {file}: no such file")
    with np.load(file, allow_pickle=False) as raw:
        missing = {"X", "y"} - set(raw.files)
        if missing:
            raise ValueError(
                f"npz dataset {file}: missing arrays {sorted(missing)}; has {raw.files}"
            )
        arrays = {k: raw[k] for k in raw.files}
    x, y = arrays["X"], arrays["y"]
    _check_xy(file, "X", "y", x, y)
    if "X_test" in arrays and "y_test" in arrays:
        _check_xy(file, "X_test", "y_test", arrays["X_test"], arrays["y_test"])
        n_classes = int(max(y.max(), arrays["y_test"].max())) + 1
        return Dataset(
            x.astype(np.float32),
            y.astype(np.int64),
            arrays["X_test"].astype(np.float32),
            arrays["y_test"].astype(np.int64),
            n_classes,
            file.stem,
        )
    return _split(x, y, seed, test_fraction, file.stem)


def _check_xy(file: Path, xname: str, yname: str, x: np.ndarray, y: np.ndarray) -> None:
    if y.ndim != 1 or x.ndim < 2 or len(x) != len(y):
        raise ValueError(
            f"npz dataset {file}: {xname} must be (N, ...) and {yname} (N,), "
            f"got {x.shape} and {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError(f"npz dataset {file}: {yname} must hold integer labels 0..C-1")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"npz dataset {file}: {xname} contains NaN or infinite values")
