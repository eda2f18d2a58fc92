import numpy as np
import pytest

from memdash.analysis.measures.heldout import (
    c_scores,
    influence,
    mem_scores,
    newcombe_interval,
    top_influences,
    wilson_interval,
)

# 4 models x 3 examples. Example 0: right when trained on (2 of 2), wrong
# otherwise (0 of 2) -> mem 1. Example 1: always right -> mem 0. Example 2:
# trained by every model -> no out-models, mem NaN.
TRAINED = np.array([[1, 1, 1], [1, 0, 1], [0, 1, 1], [0, 0, 1]], bool)
CORRECT = np.array([[1, 1, 1], [1, 1, 0], [0, 1, 1], [0, 1, 1]], bool)


def test_mem_scores_by_hand():
    s = mem_scores(CORRECT, TRAINED)
    assert s["mem_score"].tolist()[:2] == [1.0, 0.0] and np.isnan(s["mem_score"][2])
    assert s["n_in"].tolist() == [2, 2, 4] and s["n_out"].tolist() == [2, 2, 0]
    assert s["in_accuracy"].tolist() == [1.0, 1.0, 0.75]
    assert s["heldout_accuracy"][0] == 0.0 and np.isnan(s["heldout_accuracy"][2])
    assert s["mem_se"][0] == 0.0  # p = 1 in, 0 out: no binomial spread


def test_mem_score_standard_error_is_the_binomial_formula():
    trained = np.array([[1], [1], [1], [1], [0], [0]], bool)
    correct = np.array([[1], [1], [1], [0], [1], [0]], bool)
    s = mem_scores(correct, trained)
    assert s["mem_score"][0] == pytest.approx(0.75 - 0.5)
    assert s["mem_se"][0] == pytest.approx(np.sqrt(0.75 * 0.25 / 4 + 0.5 * 0.5 / 2))
    with pytest.raises(ValueError, match="one \\(K, N\\) shape"):
        mem_scores(correct, trained[:3])


def test_influence_by_hand():
    trained = TRAINED[:, :2]  # training examples 0 and 1
    test = np.array([[1], [1], [0], [1]], bool)  # one test example
    infl = influence(test, trained)
    # train 0: in models 0, 1 -> 2/2 right; out models 2, 3 -> 1/2 right
    # train 1: in models 0, 2 -> 1/2; out models 1, 3 -> 2/2
    np.testing.assert_allclose(infl[:, 0], [0.5, -0.5])
    top = top_influences(infl, np.array([10, 11]), np.array([99]), top=2)
    assert top.to_dict("list") == {
        "test_id": [99, 99],
        "rank": [1, 2],
        "train_id": [10, 11],
        "influence": [0.5, -0.5],
    }


def test_c_score_averages_the_heldout_accuracy_over_ratios():
    table = c_scores({0.9: np.array([1.0, np.nan]), 0.1: np.array([0.5, 0.25])})
    assert list(table.columns) == ["heldout_accuracy_r0.1", "heldout_accuracy_r0.9", "c_score"]
    np.testing.assert_allclose(table["c_score"], [0.75, 0.25])
    with pytest.raises(ValueError, match="at least one ratio"):
        c_scores({})


def test_wilson_interval_by_hand():
    """p = 1 of n = 4 at z = 1.96: centre (1 + z^2/8) / (1 + z^2/4), half-width
    z / (1 + z^2/4) * sqrt(z^2 / 64); p = 0 of n = 2 mirrors it."""
    z2 = 1.959963984540054**2
    lo, hi = wilson_interval(np.array([1.0, 0.0]), np.array([4, 2]))
    shrink4, shrink2 = 1 + z2 / 4, 1 + z2 / 2
    assert lo[0] == pytest.approx((1 + z2 / 8) / shrink4 - np.sqrt(z2) / shrink4 * np.sqrt(z2 / 64))
    assert hi[0] == pytest.approx(1.0) and lo[1] == pytest.approx(0.0, abs=1e-15)
    assert hi[1] == pytest.approx((z2 / 4) / shrink2 + np.sqrt(z2) / shrink2 * np.sqrt(z2 / 16))


def test_the_newcombe_interval_never_collapses():
    """Example 0 of the 4-model case: in 2/2 right, out 0/2: mem 1, Wald se 0, but the
    interval is [1 - sqrt((1 - l_in)^2 + u_out^2), 1] with the Wilson bounds above."""
    s = mem_scores(CORRECT, TRAINED)
    assert s["mem_se"][0] == 0.0
    l_in, _ = wilson_interval(np.array([1.0]), np.array([2]))
    _, u_out = wilson_interval(np.array([0.0]), np.array([2]))
    assert s["mem_lo"][0] == pytest.approx(1 - np.sqrt((1 - l_in[0]) ** 2 + u_out[0] ** 2))
    assert s["mem_hi"][0] == pytest.approx(1.0)
    assert 0 < s["mem_lo"][0] < 0.6  # two models each way say little
    # example 1 (always right): mem 0 with an interval around it of positive width
    assert s["mem_lo"][1] < 0 < s["mem_hi"][1]
    assert np.isnan(s["mem_lo"][2])  # no out-models


def test_newcombe_interval_contains_the_difference_and_narrows_with_more_models():
    rng = np.random.default_rng(0)
    p_in, p_out = rng.uniform(size=50), rng.uniform(size=50)
    small = newcombe_interval(p_in, np.full(50, 10), p_out, np.full(50, 10))
    large = newcombe_interval(p_in, np.full(50, 1000), p_out, np.full(50, 1000))
    d = p_in - p_out
    for lo, hi in (small, large):
        assert (lo <= d).all() and (d <= hi).all() and (lo >= -1).all() and (hi <= 1).all()
    assert ((large[1] - large[0]) < (small[1] - small[0])).all()
