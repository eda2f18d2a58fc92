import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from memdash.analysis.measures.neighbors import FaissKNN, agreement, knn_graph, knn_predict, vote

SKLEARN_METRIC = {"l2": "euclidean", "l1": "manhattan", "cosine": "cosine"}
LINE = np.array([[0.0], [1.0], [3.0], [7.0]])


@pytest.mark.parametrize(
    ("metric", "expect_ind", "expect_dist"),
    [
        # on a line, L1 = L2: 0 -> 1 (1), 3 (3); 1 -> 0 (1), 3 (2); 3 -> 1 (2), 0 (3); 7 -> 3, 1
        ("l2", [[1, 2], [0, 2], [1, 0], [2, 1]], [[1, 3], [1, 2], [2, 3], [4, 6]]),
        ("l1", [[1, 2], [0, 2], [1, 0], [2, 1]], [[1, 3], [1, 2], [2, 3], [4, 6]]),
    ],
)
def test_leave_one_out_neighbours_on_a_line(metric, expect_ind, expect_dist):
    dist, ind = FaissKNN(2, metric=metric).fit(LINE).kneighbors()
    np.testing.assert_array_equal(ind, expect_ind)
    np.testing.assert_allclose(dist, expect_dist)


def test_query_points_include_an_identical_fitted_point_and_l2_is_not_squared():
    dist, ind = FaissKNN(2).fit(LINE).kneighbors(np.array([[7.0], [5.5]]))
    np.testing.assert_array_equal(ind, [[3, 2], [3, 2]])  # 5.5 is 1.5 from 7 and 2.5 from 3
    np.testing.assert_allclose(dist, [[0, 4], [1.5, 2.5]])


def test_cosine_distance_by_hand():
    X = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    dist, ind = FaissKNN(3, metric="cosine").fit(X).kneighbors(np.array([[2.0, 0.0]]))
    np.testing.assert_array_equal(ind[0, :2], [0, 2])
    # cos to (1,0)=1 -> 0; to (1,1)=0.7071 -> 0.2929; to (0,2) and the zero vector: 1
    np.testing.assert_allclose(dist[0], [0.0, 1 - np.sqrt(0.5), 1.0], atol=1e-6)


def _check_against_sklearn(X, Q, k, metric, n_components=None):
    ours = FaissKNN(k, metric=metric, n_components=n_components).fit(X)
    Xs, Qs = X.astype(np.float64), None if Q is None else Q.astype(np.float64)
    if n_components is not None:
        pca = PCA(n_components).fit(Xs)
        Xs, Qs = pca.transform(Xs), None if Qs is None else pca.transform(Qs)
    ref = NearestNeighbors(n_neighbors=k, metric=SKLEARN_METRIC[metric], algorithm="brute")
    ref.fit(Xs)
    dist, ind = ours.kneighbors(Q)
    ref_dist, _ = ref.kneighbors(Qs)
    tol = 1e-4 * (1 + np.abs(ref_dist).max())
    np.testing.assert_allclose(dist, ref_dist, atol=tol)
    # neighbour sets agree wherever distances do not tie: every point strictly
    # nearer than the k-th distance must be returned
    queries = Xs if Qs is None else Qs
    full = ref.fit(Xs).kneighbors(queries, n_neighbors=len(Xs), return_distance=True)
    for row in range(len(queries)):
        all_dist, all_ind = full[0][row], full[1][row]
        if Q is None:  # leave-one-out: drop the point itself
            keep = all_ind != row
            all_dist, all_ind = all_dist[keep], all_ind[keep]
        nearer = set(all_ind[all_dist < ref_dist[row, -1] - tol])
        assert nearer <= set(ind[row]), (row, nearer, ind[row])
        assert len(set(ind[row])) == k


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n=st.integers(3, 40),
    d=st.integers(1, 6),
    metric=st.sampled_from(["l2", "l1", "cosine"]),
    leave_one_out=st.booleans(),
)
def test_faiss_neighbours_equal_sklearn_brute_force(data, n, d, metric, leave_one_out):
    X = data.draw(arrays(np.float32, (n, d), elements=st.integers(-4, 4).map(float)))
    k = data.draw(st.integers(1, n - 1))
    Q = (
        None
        if leave_one_out
        else data.draw(
            arrays(
                np.float32,
                (data.draw(st.integers(1, 10)), d),
                elements=st.integers(-4, 4).map(float),
            )
        )
    )
    _check_against_sklearn(X, Q, k, metric)


@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_pca_option_equals_sklearn_pca_then_brute_force(metric):
    X = np.random.default_rng(0).normal(size=(120, 20)).astype(np.float32)
    _check_against_sklearn(X, None, 5, metric, n_components=4)
    _check_against_sklearn(X, X[:7] + 0.5, 5, metric, n_components=4)


def test_pca_keeps_neighbours_of_data_in_a_subspace():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3)) @ rng.normal(size=(3, 12))
    plain = FaissKNN(4).fit(X).kneighbors()[1]
    reduced = FaissKNN(4, n_components=3).fit(X).kneighbors()[1]
    np.testing.assert_array_equal(plain, reduced)


def test_duplicates_leave_one_out_never_returns_the_query():
    X = np.zeros((6, 2))
    ind = FaissKNN(5).fit(X).kneighbors(return_distance=False)
    assert all(row not in ind[row] for row in range(6))
    assert all(len(set(r)) == 5 for r in ind)


def test_knn_graph_puts_each_point_first_even_among_duplicates():
    X = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [5.0, 5.0]])
    ind, dist = knn_graph(X, 3)
    np.testing.assert_array_equal(ind[:, 0], np.arange(4))
    np.testing.assert_array_equal(dist[:, 0], 0)
    np.testing.assert_allclose(dist[3], [0, np.sqrt(50), np.sqrt(50)], rtol=1e-6)


@pytest.mark.parametrize(
    ("make", "call", "message"),
    [
        (lambda: FaissKNN(metric="chebyshev"), lambda m: m.fit(LINE), "unknown metric 'chebyshev'"),
        (lambda: FaissKNN(4), lambda m: m.fit(LINE).kneighbors(), r"between 1 and 3"),
        (lambda: FaissKNN(2), lambda m: m.kneighbors(), "not fitted"),
        (lambda: FaissKNN(2), lambda m: m.fit(np.array([[0.0], [np.nan]])), "NaN"),
        (lambda: FaissKNN(2), lambda m: m.fit(np.zeros(3)), r"2-D array.*\(3,\)"),
        (lambda: FaissKNN(2), lambda m: m.fit(LINE).kneighbors(np.zeros((1, 2))), "2 features"),
        (lambda: FaissKNN(2, n_components=0), lambda m: m.fit(LINE), "n_components"),
    ],
)
def test_bad_inputs_are_named(make, call, message):
    with pytest.raises(ValueError, match=message):
        call(make())


def test_vote_counts_and_breaks_ties_towards_the_smallest_label():
    labels = np.array([[2, 2, 1], [0, 1, 2], [3, 1, 1], [1, 3, 3]])
    np.testing.assert_array_equal(vote(labels, 4), [2, 0, 1, 3])
    with pytest.raises(ValueError, match="0..3"):
        vote(np.array([[4]]), 4)


def test_knn_predict_leave_one_out_predicts_the_neighbours_label():
    # example 4 (x=5.25) is labelled 0 among class-1 neighbours: a flipped label
    X = np.array([[0.0], [0.1], [5.0], [5.1], [5.25], [0.02], [5.12]])
    train = np.array([1, 1, 1, 1, 1, 0, 0], bool)
    labels = np.array([0, 0, 1, 1, 0, 0, 1])
    pred, nbrs, dist = knn_predict(X, train, labels, 2, n_neighbors=1, metric="l1")
    np.testing.assert_array_equal(pred, [0, 0, 1, 1, 1, 0, 1])
    np.testing.assert_array_equal(nbrs[:, 0], [1, 0, 3, 2, 3, 0, 3])
    np.testing.assert_allclose(dist[:, 0], [0.1, 0.1, 0.1, 0.1, 0.15, 0.02, 0.02], atol=1e-5)
    pred, nbrs, _ = knn_predict(X, train, labels, 2, n_neighbors=1, leave_one_out=False)
    np.testing.assert_array_equal(nbrs[:5, 0], np.arange(5))  # every point votes for itself
    assert pred[4] == 0
    with pytest.raises(ValueError, match=r"shape \(7,\)"):
        knn_predict(X, train[:3], labels, 2)


def test_agreement_metrics_by_hand():
    m = agreement(knn_pred=[0, 1, 1, 2], dnn_pred=[0, 1, 2, 2], label=[0, 0, 2, 1])
    assert m == {"knn_accuracy": 0.25, "dnn_accuracy": 0.5, "p_same": 0.75, "ma": 0.5, "md": 1.0}
    everyone_right = agreement([0, 1], [0, 1], [0, 1])
    assert everyone_right["ma"] == 1.0 and np.isnan(everyone_right["md"])
