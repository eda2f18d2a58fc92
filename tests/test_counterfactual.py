"""Counterfactual memorization (Zhang et al. 2021) against values computed by hand."""

import numpy as np
import pytest

from memdash.analysis.measures.counterfactual import counterfactual_table, in_out_means

# 3 models x 4 sequences; sequence 3 is held by no model (a test sequence)
MEMBER = np.array([[1, 0, 1, 0], [1, 1, 0, 0], [0, 1, 1, 0]], dtype=bool)
ACCURACY = np.array([[0.9, 0.2, 0.5, 0.1], [0.7, 0.6, 0.3, 0.3], [0.2, 0.8, 0.7, 0.2]])
LOGLIK = np.array([[-1.0, -5, -2, -8], [-3, -4, -6, -7], [-9, -2, -4, -6]])


def test_counterfactual_is_the_in_mean_minus_the_out_mean():
    table = counterfactual_table(ACCURACY, LOGLIK, MEMBER)
    # sequence 0: in models 0, 1 (0.9, 0.7), out model 2 (0.2): 0.8 - 0.2
    np.testing.assert_allclose(table["in_accuracy"][:3], [0.8, 0.7, 0.6])
    np.testing.assert_allclose(table["out_accuracy"], [0.2, 0.2, 0.3, 0.2])
    np.testing.assert_allclose(table["cf_mem_accuracy"][:3], [0.6, 0.5, 0.3])
    # log-likelihood: sequence 0 in (-1, -3) = -2, out -9: 7
    np.testing.assert_allclose(table["cf_mem_loglik"][:3], [7.0, 2.0, 3.0])
    np.testing.assert_allclose(table["out_loglik"], [-9.0, -5, -6, -7])
    assert table["n_in"].tolist() == [2, 2, 2, 0] and table["n_out"].tolist() == [1, 1, 1, 3]
    # never trained on: no in-mean, no score; one out model: no standard error
    assert np.isnan(table.loc[3, ["cf_mem_accuracy", "cf_mem_loglik", "in_loglik"]]).all()
    assert table["cf_mem_accuracy_se"].isna().all()
    assert list(table.columns[:2]) == ["cf_mem_accuracy", "cf_mem_accuracy_se"]


def test_the_standard_error_of_a_difference_of_means():
    values = np.array([[1.0], [3.0], [2.0], [6.0]])
    member = np.array([[True], [True], [False], [False]])
    m_in, m_out, se = in_out_means(values, member)
    # in: mean 2, variance (1 + 1) / 1 = 2; out: mean 4, variance (4 + 4) / 1 = 8
    assert m_in[0] == 2.0 and m_out[0] == 4.0
    np.testing.assert_allclose(se, [np.sqrt(2 / 2 + 8 / 2)])


@pytest.mark.parametrize(
    ("accuracy", "member", "message"),
    [
        (ACCURACY[:2], MEMBER, "share one"),
        (np.where(MEMBER, np.nan, ACCURACY), MEMBER, "model 0, example 0 is nan"),
        (ACCURACY + 1, MEMBER, r"lie in \[0, 1\]"),
    ],
)
def test_bad_inputs_are_named(accuracy, member, message):
    with pytest.raises(ValueError, match=message):
        counterfactual_table(accuracy, LOGLIK[: len(accuracy)], member)


def test_a_model_that_did_not_learn_is_found_by_its_own_training_accuracy():
    from memdash.analysis.measures.counterfactual import failed_models

    # five models x four sequences; each model's mean accuracy over the sequences it holds:
    # 0.80, 0.82, 0.81, 0.20 (diverged), 0.79
    member = np.array(
        [[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 0, 1], [0, 1, 1, 0], [1, 0, 1, 0]], dtype=bool
    )
    accuracy = np.array(
        [
            [0.80, 0.80, 0.1, 0.1],
            [0.1, 0.82, 0.82, 0.1],
            [0.81, 0.1, 0.1, 0.81],
            [0.9, 0.20, 0.20, 0.9],
            [0.79, 0.1, 0.79, 0.1],
        ]
    )
    # median 0.80, deviations 0, .02, .01, .60, .01: MAD 0.01; cut 0.80 - max(0.1, 0.05)
    assert failed_models(accuracy, member).tolist() == [3]
    accuracy[3, [1, 2]] = 0.71  # 0.71 > 0.70: within ten MADs, kept
    assert failed_models(accuracy, member).tolist() == []
    with pytest.raises(ValueError, match="one \\(K, N\\) shape"):
        failed_models(accuracy[:, :2], member)
