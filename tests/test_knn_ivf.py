"""Approximate k-NN (an inverted-file FAISS index): equal to exact when every list is probed,
the rules for lists, probes and `auto`, the recall measure, and the refusals."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.measures.ivf import (
    AUTO_EXACT_BELOW,
    default_lists,
    recall_at_k,
    resolve_method,
    resolve_search,
)
from memdash.analysis.measures.knn_recall import sample_recall
from memdash.analysis.measures.neighbors import FaissKNN, knn_predict
from memdash.analysis.record.config import AnalysisConfig
from memdash.analysis.steps.knn import compute_knn
from memdash.analysis.steps.pipeline import step_params
from memdash.analysis.store import Run

METRICS = ("l1", "l2", "cosine")
RNG = np.random.default_rng(5)
POINTS = RNG.normal(size=(240, 6)).astype(np.float32)  # continuous: no tied distances


@pytest.mark.parametrize("metric", METRICS)
def test_ivf_probing_every_list_equals_exact(metric):
    exact = FaissKNN(5, metric=metric).fit(POINTS)
    ivf = FaissKNN(5, metric=metric, method="ivf", n_lists=6, n_probes=6).fit(POINTS)
    assert (ivf.method_, ivf.n_lists_, ivf.n_probes_) == ("ivf", 6, 6)
    for queries in (None, POINTS[:20] + 0.01):  # leave-one-out, and outside queries
        d_exact, i_exact = exact.kneighbors(queries)
        d_ivf, i_ivf = ivf.kneighbors(queries)
        np.testing.assert_array_equal(i_ivf, i_exact)
        np.testing.assert_allclose(d_ivf, d_exact, rtol=1e-5, atol=1e-5)


def test_ivf_with_few_probes_is_approximate_but_never_short():
    # one probed list of ~40 points cannot always hold 30 neighbours: those queries are
    # searched in every list rather than padded with FAISS's -1
    ivf = FaissKNN(30, metric="l1", method="ivf", n_lists=6, n_probes=1).fit(POINTS)
    dist, ind = ivf.kneighbors()
    assert (ind >= 0).all() and np.isfinite(dist).all()
    assert (ind != np.arange(len(POINTS))[:, None]).all()  # still leave-one-out
    exact = FaissKNN(30, metric="l1").fit(POINTS).kneighbors(return_distance=False)
    assert 0.3 < recall_at_k(ind, exact) < 1


@pytest.mark.parametrize("metric", METRICS)
def test_knn_predict_ivf_all_probed_gives_the_exact_predictions(metric):
    labels = RNG.integers(0, 3, len(POINTS))
    train = np.arange(len(POINTS)) % 5 != 0
    exact = knn_predict(POINTS, train, labels, 3, n_neighbors=7, metric=metric)
    ivf = knn_predict(
        POINTS, train, labels, 3, n_neighbors=7, metric=metric, method="ivf", n_probes=4
    )  # 192 training points: default_lists gives 4
    for a, b in zip(exact[:2], ivf[:2], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(ivf[2], exact[2], rtol=1e-5, atol=1e-5)


def test_the_step_records_its_search_and_ivf_all_probed_equals_exact(tiny_run):
    run = Run.open(tiny_run)
    exact = compute_knn(run, AnalysisConfig(knn_method="exact", knn_k=7))
    ivf = compute_knn(run, AnalysisConfig(knn_method="ivf", knn_k=7, knn_probes=4))
    auto = compute_knn(run, AnalysisConfig(knn_k=7))  # 160 training points: exact
    search = ["method", "n_lists", "n_probes", "recall"]
    assert auto["knn.parquet"][search].drop_duplicates().values.tolist() == [["exact", 0, 0, 1]]
    # 160 training points: 2 sqrt(160) = 25 lists, capped at 160 // 39 = 4; every list
    # probed, the sampled recall is 1 at every layer and epoch
    assert ivf["knn.parquet"][search].drop_duplicates().values.tolist() == [["ivf", 4, 4, 1]]
    few = compute_knn(run, AnalysisConfig(knn_method="ivf", knn_k=7, knn_lists=4, knn_probes=1))
    assert few["knn.parquet"]["recall"].between(0, 1).all()
    metrics = [c for c in exact["knn.parquet"].columns if c not in search]
    pd.testing.assert_frame_equal(ivf["knn.parquet"][metrics], exact["knn.parquet"][metrics])
    for name in ("knn_examples.parquet", "neighbors.parquet"):
        pd.testing.assert_frame_equal(ivf[name], exact[name])


def test_the_search_options_are_in_the_step_key():
    params = step_params("knn", AnalysisConfig(knn_method="ivf", knn_lists=8, knn_probes=2))
    assert (params["knn_method"], params["knn_lists"], params["knn_probes"]) == ("ivf", 8, 2)


def test_default_lists_by_hand():
    # round(2 sqrt(n)), at most n // 39, at least 1
    assert default_lists(10) == 1  # 6, capped at 10 // 39 = 0, raised to 1
    assert default_lists(3_000) == 76  # 110, capped at 3000 // 39 = 76
    assert default_lists(10_000) == 200  # (cap 256)
    assert default_lists(1_000_000) == 2000
    with pytest.raises(ValueError, match="n_points must be at least 1, got 0"):
        default_lists(0)


def test_auto_is_exact_below_the_measured_size_and_ivf_from_it():
    size = AUTO_EXACT_BELOW["l1"]
    assert resolve_method("auto", n_points=size - 1, metric="l1") == "exact"
    assert resolve_method("auto", n_points=size, metric="l1") == "ivf"
    assert resolve_method("exact", n_points=10**7, metric="l1") == "exact"
    assert resolve_method("ivf", n_points=50, metric="cosine") == "ivf"
    assert resolve_search("auto", n_points=10, metric="l2", n_lists=None, n_probes=32) == (
        "exact",
        0,
        0,
    )
    # the probes are capped at the rule's lists; explicit lists are kept
    assert resolve_search("ivf", n_points=10_000, metric="l1", n_lists=None, n_probes=500) == (
        "ivf",
        200,
        200,
    )
    assert resolve_search("ivf", n_points=10_000, metric="l1", n_lists=8, n_probes=2) == (
        "ivf",
        8,
        2,
    )


def test_recall_at_k_by_hand():
    found = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    exact = np.array([[3, 2, 1], [4, 5, 0], [0, 10, 11]])
    assert recall_at_k(found, exact) == pytest.approx((3 + 2 + 0) / 9)
    assert recall_at_k(exact, exact) == 1.0
    with pytest.raises(ValueError, match="one shape"):
        recall_at_k(found, exact[:, :2])


def test_sample_recall_by_hand():
    # points on a line with distinct gaps: each one's nearest other point is unique
    X = np.array([[0.0], [1.0], [3.0], [6.0], [10.0], [2.9]], np.float32)
    train = np.array([True, True, True, True, True, False])  # the last is a test example
    found = np.array([[1], [0], [4], [2], [3], [2]])  # example 2's nearest is 1, not 4
    assert sample_recall(X, train, found, n_queries=10) == pytest.approx(4 / 5)
    # without leave-one-out each training point is its own nearest: only row 1 is right
    own = np.array([[1], [1], [4], [2], [3], [2]])
    assert sample_recall(X, train, own, leave_one_out=False, n_queries=10) == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="n_queries must be at least 1, got 0"):
        sample_recall(X, train, found, n_queries=0)
    with pytest.raises(ValueError, match=r"neighbors \(6, k\)"):
        sample_recall(X, train, found[:3])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"knn_method": "ivx"}, "unknown k-NN method 'ivx'; valid: exact, ivf, auto"),
        ({"knn_lists": 0}, "analysis.knn_lists must be an integer in 1..10000000, got 0"),
        ({"knn_probes": 0}, "analysis.knn_probes must be an integer in 1..10000000, got 0"),
        ({"knn_lists": 8, "knn_probes": 9}, "--knn-probes 9 exceeds --knn-lists 8"),
    ],
)
def test_bad_search_options_are_refused_in_one_line(options, message):
    with pytest.raises(ValueError, match=message) as err:
        AnalysisConfig(**options)
    assert "\n" not in str(err.value)


def test_bad_ivf_values_are_refused_by_the_measure():
    with pytest.raises(ValueError, match="unknown k-NN method 'ivx'"):
        FaissKNN(method="ivx").fit(POINTS)
    with pytest.raises(ValueError, match="--knn-probes 7 exceeds --knn-lists 6"):
        FaissKNN(method="ivf", n_lists=6, n_probes=7).fit(POINTS)
    with pytest.raises(ValueError, match=r"--knn-lists 500 must lie in 1\.\.240"):
        FaissKNN(method="ivf", n_lists=500, n_probes=1).fit(POINTS)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--knn", "ivx"], 2, "must be one of exact, ivf, auto, got ivx"),
        (["--knn-lists", "0"], 2, "must be an integer in 1..10000000, got 0"),
        (["--knn-lists", "8", "--knn-probes", "9"], 1, "--knn-probes 9 exceeds --knn-lists 8"),
    ],
)
def test_the_command_refuses_bad_search_options(tmp_path, args, code, message):
    result = CliRunner().invoke(app, ["analyze", str(tmp_path), *args])
    assert result.exit_code == code, result.output
    assert message in " ".join(result.output.split())
    assert not list(tmp_path.iterdir())  # nothing written


def test_the_knn_page_says_how_the_neighbours_were_found():
    import pandas as pd

    from memdash.dashboard.app_pages.knn import search_text

    old = pd.DataFrame({"knn_accuracy": [0.9]})  # written before the search was recorded
    assert search_text(old) == "Exact search: every training example compared."
    exact = pd.DataFrame({"method": ["exact"], "n_lists": [0], "n_probes": [0], "recall": [1.0]})
    assert search_text(exact).startswith("Exact search")
    ivf = pd.DataFrame(
        {
            "method": ["ivf", "ivf"],
            "n_lists": [816, 816],
            "n_probes": [16, 16],
            "recall": [0.99, 0.97],
        }
    )
    assert search_text(ivf) == (
        "Approximate search (an inverted-file index of 816 lists, 16 probed): recall@k against "
        "exact search, measured on a seeded sample, 0.970 at the worst layer and epoch."
    )
