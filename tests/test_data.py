import numpy as np
import pytest

from memdash.analysis.record.data import load_dataset, synthetic


def test_digits_is_a_stratified_image_split():
    d = load_dataset("digits", seed=0)
    assert d.x_train.shape == (1437, 1, 8, 8) and d.x_test.shape == (360, 1, 8, 8)
    assert d.x_train.dtype == np.float32 and d.x_train.min() >= 0.0 and d.x_train.max() <= 1.0
    assert d.n_classes == 10
    assert np.all(np.abs(np.bincount(d.y_test) - 36) <= 1)


def test_mnist1d_is_generated_locally_without_touching_global_rng():
    np.random.seed(123)  # noqa: NPY002 (the legacy global state is what is checked)
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    d = load_dataset("mnist1d", seed=0, n_examples=500)
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002
    assert d.x_train.shape == (400, 1, 40) and d.n_classes == 10


def test_synthetic_is_seeded_and_shaped():
    a = synthetic(n_examples=60, shape=(1, 8, 8), n_classes=3, seed=1)
    b = synthetic(n_examples=60, shape=(1, 8, 8), n_classes=3, seed=1)
    assert a.x_train.shape == (48, 1, 8, 8)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    with pytest.raises(ValueError, match="n_examples >= 2 \\* n_classes"):
        synthetic(n_examples=5, shape=(4,), n_classes=3, seed=0)


def test_npz_with_and_without_test_split(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 3)), np.arange(50) % 2
    np.savez(tmp_path / "own.npz", X=x, y=y)
    d = load_dataset("npz", seed=0, path=str(tmp_path / "own.npz"))
    assert len(d.y_train) == 40 and len(d.y_test) == 10 and d.name == "own"
    np.savez(tmp_path / "split.npz", X=x, y=y, X_test=x[:7], y_test=y[:7])
    d = load_dataset("npz", seed=0, path=str(tmp_path / "split.npz"))
    assert len(d.y_train) == 50 and len(d.y_test) == 7


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"X": np.zeros((4, 2))}, r"missing arrays \['y'\]"),
        ({"X": np.zeros((4, 2)), "y": np.zeros(3, int)}, "must be \\(N, ...\\)"),
        ({"X": np.zeros((4, 2)), "y": np.array([0.5, 1, 0, 1])}, "integer labels"),
        ({"X": np.full((4, 2), np.nan), "y": np.array([0, 1, 0, 1])}, "NaN"),
    ],
)
def test_npz_errors_name_the_problem(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        load_dataset("npz", seed=0, path=str(tmp_path / "bad.npz"))


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'; valid: digits, mnist1d"):
        load_dataset("cifar", seed=0)


def test_npz_must_exist(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_dataset("npz", seed=0, path=str(tmp_path / "absent.npz"))
