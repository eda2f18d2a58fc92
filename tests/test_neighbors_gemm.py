"""measures/gemm_knn.py: the blocked-GEMM exact L2 search gives FAISS's flat index's answer."""

from contextlib import contextmanager

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import memdash.analysis.measures.gemm_knn as gemm_module
from memdash.analysis.measures.gemm_knn import FIRST_TILE, TILE, gemm_knn
from memdash.analysis.measures.neighbors import FaissKNN, _drop_self

# a unit square and a far point: squared distances 1 (sides), 2 (diagonal), 4, 5, 9, 10
SQUARE = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [3, 0]], np.float32)


@contextmanager
def faiss_blas_always():
    """FAISS's GEMM path (|x|^2 + |y|^2 - 2 x.y) at any size, as it takes for large inputs;
    the previous implementation's results there are what the blocked search must equal."""
    saved = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = 0
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = saved


def flat_search(queries: np.ndarray, points: np.ndarray, k: int):
    """The previous implementation: FAISS's IndexFlatL2 (squared distances, ids)."""
    index = faiss.IndexFlatL2(points.shape[1])
    index.add(np.ascontiguousarray(points, np.float32))
    with faiss_blas_always():
        return index.search(np.ascontiguousarray(queries, np.float32), k)


def test_five_points_by_hand_ties_to_the_smaller_id():
    squared, ind = gemm_knn(SQUARE, SQUARE, 4)
    # 3 (1,1) is 1 from both 1 and 2: 1 comes first; 4 (3,0) is 4 from 1, 5 from 3, 9 from 0
    np.testing.assert_array_equal(
        ind, [[0, 1, 2, 3], [1, 0, 3, 2], [2, 0, 3, 1], [3, 1, 2, 0], [4, 1, 3, 0]]
    )
    np.testing.assert_array_equal(squared, [[0, 1, 1, 2]] * 4 + [[0, 4, 5, 9]])
    _, ind = gemm_knn(SQUARE[[3]], SQUARE, 2)
    np.testing.assert_array_equal(ind, [[3, 1]])  # the tie at 1 cut: the smaller id stays


def test_faiss_knn_leave_one_out_by_gemm_on_the_five_points():
    with faiss_blas_always():
        knn = FaissKNN(2).fit(SQUARE)
        assert knn._by_gemm(len(SQUARE))
        dist, ind = knn.kneighbors()
    np.testing.assert_array_equal(ind, [[1, 2], [0, 3], [0, 3], [1, 2], [1, 3]])
    np.testing.assert_allclose(dist, [[1, 1]] * 4 + [[2, np.sqrt(5)]], rtol=1e-7)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 40),
    d=st.integers(1, 5),
    separate=st.booleans(),
    workers=st.sampled_from([1, 2]),
)
def test_equals_faiss_flat_index_on_small_integers_with_ties(data, n, d, separate, workers):
    """Integer coordinates: every sum is exact, so the two must agree to the bit, ties too."""
    X = data.draw(arrays(np.float32, (n, d), elements=st.integers(-3, 3).map(float)))
    Q = X
    if separate:
        rows = data.draw(st.integers(1, 12))
        Q = data.draw(arrays(np.float32, (rows, d), elements=st.integers(-3, 3).map(float)))
    k = data.draw(st.integers(1, n))
    squared, ind = gemm_knn(Q, X, k, workers=workers)
    ref_squared, ref_ind = flat_search(Q, X, k)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(squared, ref_squared)


@pytest.mark.parametrize("k", [1, 31, 150])  # FAISS keeps k >= 100 in a reservoir, not a heap
def test_many_blocks_and_tiles_equal_faiss_and_any_worker_count(k):
    """More queries than a block (256) and more points than the first tiles, on a coarse
    grid where most distances tie."""
    n = FIRST_TILE + TILE + 301  # tiles of 512, 1,024, 3,072 and the last 301 points
    X = np.random.default_rng(k).integers(-4, 5, (n, 3)).astype(np.float32)
    Q = X[:600]
    squared, ind = gemm_knn(Q, X, k, workers=1)
    ref_squared, ref_ind = flat_search(Q, X, k)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(squared, ref_squared)
    again = gemm_knn(Q, X, k, workers=3)
    np.testing.assert_array_equal(again[1], ind)
    np.testing.assert_array_equal(again[0], squared)


def test_real_valued_points_match_faiss_to_rounding():
    """Gaussian points: the sums differ only in the BLAS's rounding; a neighbour may differ
    only where two distances are that close."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((1500, 64)).astype(np.float32)
    squared, ind = gemm_knn(X, X, 31)
    ref_squared, ref_ind = flat_search(X, X, 31)
    tol = 1e-4 * (1 + ref_squared)
    np.testing.assert_array_less(np.abs(squared - ref_squared), tol)
    differs = ind != ref_ind
    gap = np.minimum(
        np.abs(np.diff(ref_squared, axis=1, prepend=-np.inf)),
        np.abs(np.diff(ref_squared, axis=1, append=np.inf)),
    )
    assert (gap[differs] < tol[differs]).all()  # only near-ties swap
    assert differs.mean() < 1e-3


def test_faiss_knn_uses_gemm_where_faiss_multiplies_matrices_and_keeps_the_rest():
    X = np.random.default_rng(0).integers(-3, 4, (2100, 64)).astype(np.float32)
    threshold = faiss.cvar.distance_compute_blas_threshold
    knn = FaissKNN(5).fit(X)
    assert knn._by_gemm(threshold // 64 + 1) and not knn._by_gemm(threshold // 64 - 1)
    for metric in ("l1", "cosine"):
        assert not FaissKNN(2, metric=metric).fit(SQUARE)._by_gemm(10**6)
    assert not FaissKNN(2, method="ivf", n_lists=2, n_probes=1).fit(SQUARE)._by_gemm(10**6)
    # leave-one-out through the GEMM path equals FAISS's search of k+1 without the point
    if knn._by_gemm(len(X)):
        dist, ind = knn.kneighbors()
        raw, ref_ind = _drop_self(*flat_search(X, X, 6))
        np.testing.assert_array_equal(ind, ref_ind)
        np.testing.assert_array_equal(dist, np.sqrt(raw))


@pytest.mark.parametrize(
    ("products", "k", "expect"),
    [
        # FAISS clamps a negative squared distance (roundoff, near duplicates) to 0: every
        # point below 0 ties at 0 and the smaller id wins, in the first tile or a later one
        ({0: -1.0, 1: -3.0, 2: 0.5}, 1, [0]),
        ({0: -1.0, 1: -3.0, 2: 0.5}, 2, [0, 1]),
        ({600: -1.0, 550: -2.0}, 1, [550]),
        ({3: -5.0, 600: -7.0}, 1, [3]),
        ({3: -5.0, 600: -7.0, 700: 0.0, 20: 0.25}, 3, [3, 600, 700]),
    ],
)
def test_values_below_zero_tie_at_zero(products, k, expect):
    """A block searched with given products (1 x 1 times 1 x 800), 1 elsewhere."""
    rhs = np.ones((1, FIRST_TILE + 288), np.float32)
    for point, value in products.items():
        rhs[0, point] = value
    squared, ind = gemm_module._search_block(np.ones((1, 1), np.float32), rhs, k)
    np.testing.assert_array_equal(ind[0], expect)
    np.testing.assert_array_equal(
        squared[0], [products[i] if products[i] > 0 else 0 for i in expect]
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((SQUARE, SQUARE, 0), {}, r"k=0 must be between 1 and 5"),
        ((SQUARE, SQUARE, 6), {}, r"k=6 must be between 1 and 5"),
        ((SQUARE, SQUARE[:, :1], 1), {}, r"as many columns.*\(5, 2\) and \(5, 1\)"),
        ((SQUARE[0], SQUARE, 1), {}, "2-D"),
        ((SQUARE, SQUARE, 1), {"workers": 0}, "workers must be at least 1"),
    ],
)
def test_bad_inputs_are_named(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        gemm_knn(*args, **kwargs)


def test_too_many_points_for_the_key_is_named(monkeypatch):
    monkeypatch.setattr(gemm_module, "MAX_POINTS", 4)
    with pytest.raises(ValueError, match="between 1 and 3 rows, got 5"):
        gemm_knn(SQUARE, SQUARE, 1)
