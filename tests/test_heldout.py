import numpy as np
import pytest

from analysis.heldout import c_scores, influence, mem_scores, top_influences

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
