"""LiRA's Gaussian assumption per example: Shapiro-Wilk on each side's values, grouped by
count, against scipy's test on the values picked out by hand."""

import numpy as np
import pytest
from scipy.stats import shapiro

from memdash.analysis.measures.normality import gaussian_check, shapiro_pvalues

# six models x four examples
VALUES = np.array(
    [
        [1.0, 0.0, 5.0, 1.0],
        [2.0, 0.0, 1.0, 2.0],
        [3.0, 1.0, 2.0, 9.0],
        [10.0, 0.0, 3.0, 0.0],
        [4.0, 2.0, 3.5, 0.5],
        [5.0, 4.0, 9.0, 0.7],
    ]
)
MEMBER = np.array(
    [
        [1, 0, 0, 1],
        [1, 1, 0, 1],
        [1, 0, 0, 1],
        [1, 1, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 0, 0],
    ],
    dtype=bool,
)


def test_each_side_is_tested_on_its_own_values():
    """Example 0: IN 1, 2, 3, 10; OUT 4, 5 (two values: NaN). Example 1: IN 0, 0, 2 and OUT
    0, 1, 4. Example 2, never held: OUT all six, IN none. Example 3: IN 1, 2, 9 and OUT
    0, 0.5, 0.7 (the two tested with example 1's, all of count three, in one call)."""
    p_in = shapiro_pvalues(VALUES, MEMBER)
    p_out = shapiro_pvalues(VALUES, ~MEMBER)
    assert p_in[0] == pytest.approx(shapiro([1, 2, 3, 10]).pvalue)
    assert p_in[1] == pytest.approx(shapiro([0, 0, 2]).pvalue)
    assert p_in[3] == pytest.approx(shapiro([1, 2, 9]).pvalue)
    assert np.isnan(p_in[2]) and np.isnan(p_out[0])
    assert p_out[1] == pytest.approx(shapiro([0, 1, 4]).pvalue)
    assert p_out[2] == pytest.approx(shapiro([5, 1, 2, 3, 3.5, 9]).pvalue)
    assert p_out[3] == pytest.approx(shapiro([0, 0.5, 0.7]).pvalue)


def test_no_spread_is_nothing_to_test():
    values = np.array([[1.0], [1.0], [1.0], [1.0]])
    assert np.isnan(shapiro_pvalues(values, np.ones((4, 1), bool))[0])


def test_gaussian_check_flags_and_shares():
    table, summary = gaussian_check(VALUES, MEMBER, alpha=0.5)
    expected_in = table["shapiro_in_p"] < 0.5
    assert table["gaussian_rejected_in"].tolist() == expected_in.tolist()
    assert table["gaussian_rejected_out"].dtype == bool and not table["gaussian_rejected_out"][0]
    assert summary["examples"] == 2  # examples 1 and 3 have both p-values
    both = [1, 3]
    assert summary["share_rejected_in"] == pytest.approx(expected_in[both].mean())
    assert summary["alpha"] == 0.5


def test_gaussian_values_are_rarely_rejected_and_skewed_ones_often():
    rng = np.random.default_rng(0)
    member = rng.random((200, 300)) < 0.7
    table, summary = gaussian_check(rng.normal(size=(200, 300)), member)
    assert summary["share_rejected_in"] < 0.12 and summary["examples"] == 300
    _, skewed = gaussian_check(rng.exponential(size=(200, 300)), member)
    assert skewed["share_rejected_in"] > 0.9 and skewed["share_rejected_out"] > 0.9


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="alpha must lie"):
        gaussian_check(VALUES, MEMBER, alpha=1.0)
    with pytest.raises(ValueError, match="one \\(K, N\\) shape"):
        shapiro_pvalues(VALUES, MEMBER[:3])
