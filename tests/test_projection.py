from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.manifold import trustworthiness

from memdash.analysis.measures.projection import (
    aligned_projections,
    exact_distances,
    procrustes_align,
    umap_2d,
)
from memdash.analysis.store import Run

SAMPLE_RUNS = Path(__file__).resolve().parents[1] / "sample_runs"


def _rotation(degrees: float) -> np.ndarray:
    t = np.deg2rad(degrees)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


@pytest.mark.parametrize("reflect", [False, True])
def test_procrustes_undoes_a_rotation_scale_shift_and_reflection(reflect):
    target = np.random.default_rng(0).normal(size=(30, 2))
    moved = 2.5 * target @ _rotation(30) + np.array([4.0, -1.0])
    if reflect:
        moved[:, 0] *= -1
    np.testing.assert_allclose(procrustes_align(moved, target), target, atol=1e-5)
    with pytest.raises(ValueError, match="shapes differ"):
        procrustes_align(moved[:3], target)


@pytest.mark.slow
def test_umap_of_digits_is_trustworthy():
    X = load_digits().data.astype(np.float32)
    Y = umap_2d(X, random_state=0)
    assert Y.shape == (len(X), 2) and Y.dtype == np.float32
    assert trustworthiness(X, Y, n_neighbors=5) >= 0.9
    np.testing.assert_array_equal(Y, umap_2d(X, random_state=0))  # seeded


@pytest.mark.slow
def test_epochs_with_the_same_neighbourhoods_keep_their_places():
    X = load_digits().data[:600].astype(np.float32)
    Q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(64, 64)))
    # epoch 0: the same points rotated and scaled in feature space (same neighbours)
    epoch0 = 3 * X @ Q.astype(np.float32)
    out = aligned_projections({0: epoch0, 5: X})
    assert sorted(out) == [0, 5]
    assert trustworthiness(epoch0, out[0], n_neighbors=5) >= 0.9
    spread = np.linalg.norm(out[5] - out[5].mean(axis=0), axis=1).mean()
    gap = np.median(np.linalg.norm(out[0] - out[5], axis=1))
    # two independent UMAPs put a point 0.8 spreads apart (0.35 after the
    # similarity transform alone); starting from the later layout, about 0.2
    assert gap < 0.3 * spread


def test_projection_inputs_are_checked():
    with pytest.raises(ValueError, match="same points"):
        aligned_projections({0: np.zeros((20, 3)), 1: np.zeros((21, 3))})
    with pytest.raises(ValueError, match="more than n_neighbors=15 rows"):
        umap_2d(np.zeros((10, 3)))
    assert aligned_projections({}) == {}


def test_exact_distances_recomputes_and_orders_by_distance_then_index():
    X = np.array([[0, 0], [3, 4], [1, 0]], np.float32)
    ind, dist = exact_distances(X, X, np.array([[1, 2], [0, 2], [0, 1]]))
    # |p0-p1| = 5, |p0-p2| = 1, |p1-p2| = sqrt(4 + 16)
    np.testing.assert_array_equal(ind, [[2, 1], [2, 0], [0, 1]])
    np.testing.assert_allclose(dist, [[1, 5], [np.sqrt(20), 5], [1, np.sqrt(20)]], rtol=1e-7)
    Y = np.array([[1, 0], [0, 1], [5, 5]], np.float32)  # a tie at distance 1: by index
    ind, dist = exact_distances(np.zeros((1, 2), np.float32), Y, np.array([[2, 1, 0]]), chunk=1)
    np.testing.assert_array_equal(ind, [[0, 1, 2]])
    assert dist.dtype == np.float32 and dist[0, 2] == np.float32(np.sqrt(50))


def test_a_projection_does_not_depend_on_the_number_of_threads():
    # FAISS's BLAS distances change in their last bits with the thread count (a Ray worker
    # has one), and on the sample run's fc1 that moved UMAP's layout; UMAP is now fed
    # distances computed again exactly, so the layout is the same byte for byte
    import faiss

    X = Run.open(SAMPLE_RUNS / "digits_mlp_noise20").embedding(60, "fc1", mmap=False)
    before = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(1)
        one = umap_2d(X, random_state=0)
        faiss.omp_set_num_threads(2)
        two = umap_2d(X, random_state=0)
    finally:
        faiss.omp_set_num_threads(before)
    assert one.tobytes() == two.tobytes()
