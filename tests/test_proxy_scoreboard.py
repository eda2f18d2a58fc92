"""The proxies' scoreboard (measures/proxy_scoreboard.py) against scipy, sklearn and hand counts."""

import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import roc_auc_score

from memdash.analysis.measures.proxy_scoreboard import (
    auroc,
    bootstrap_counts,
    midranks,
    orient,
    precision_at_top,
    scoreboard,
    spearman_interval,
    top_weights,
)


def test_midranks_of_a_resample_equal_scipy_rankdata_of_the_resample():
    values = np.array([3.0, 1.0, 3.0, 2.0, 5.0])
    counts = np.array([[2, 0, 1, 1, 1]])  # the resample 3, 3, 3, 2, 5
    # the three 3s share ranks 2, 3, 4 -> 3; 2 is rank 1; 5 is rank 5
    assert midranks(values, counts)[0, [0, 2, 3, 4]].tolist() == [3.0, 3.0, 1.0, 5.0]
    resample = np.repeat(values, counts[0])
    assert sorted(rankdata(resample)) == sorted(np.repeat(midranks(values, counts)[0], counts[0]))


def test_bootstrap_rhos_equal_spearmanr_of_each_resample():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, 12).astype(float)  # ties
    y = x + rng.normal(size=12)
    n_boot, seed = 6, 3
    draws = np.random.default_rng(seed).integers(0, 12, (n_boot, 12))
    counts = bootstrap_counts(12, n_boot, seed)
    assert (counts == np.stack([np.bincount(d, minlength=12) for d in draws])).all()
    expected = [spearmanr(x[d], y[d]).statistic for d in draws]
    rho, low, high = spearman_interval(x, y, n_boot=n_boot, seed=seed, level=0.5)
    assert rho == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert low == pytest.approx(np.quantile(expected, 0.25), abs=1e-12)
    assert high == pytest.approx(np.quantile(expected, 0.75), abs=1e-12)


def test_spearman_of_a_perfect_ranking_is_one_and_interval_degenerate():
    x = np.arange(10.0)
    assert spearman_interval(x, x**3, n_boot=50) == pytest.approx((1.0, 1.0, 1.0))
    assert spearman_interval(x, -x, n_boot=50) == pytest.approx((-1.0, -1.0, -1.0))
    with pytest.raises(ValueError, match="x has 10 values, y 9"):
        spearman_interval(x, x[:9])


def test_auroc_counts_ties_one_half_as_sklearn():
    score = np.array([0.9, 0.5, 0.5, 0.1, 0.5])
    positive = np.array([True, True, False, False, False])
    # pairs (pos, neg): 0.9 beats all 3; 0.5 beats 0.1, ties 0.5 twice -> 1 + 2 * 0.5 = 2
    assert auroc(score, positive) == pytest.approx(5 / 6)
    assert auroc(score, positive) == pytest.approx(roc_auc_score(positive, score))
    assert np.isnan(auroc(score, np.zeros(5, bool)))


def test_precision_at_top_counts_ties_by_their_share():
    # k = 2: the proxy's top 2 are examples 0 (1.0) and one of {1, 2} tied at 0.5
    proxy = np.array([1.0, 0.5, 0.5, 0.0])
    reference = np.array([4.0, 3.0, 0.0, 1.0])  # the ensemble's top 2: examples 0 and 1
    assert top_weights(proxy, 2).tolist() == [1.0, 0.5, 0.5, 0.0]
    assert precision_at_top(proxy, reference, share=0.5) == pytest.approx((1 + 0.5) / 2)
    assert precision_at_top(reference, reference, share=0.5) == 1.0
    with pytest.raises(ValueError, match="share"):
        precision_at_top(proxy, reference, share=0)


def test_orient_uses_the_direction_dictionary():
    assert orient("confidence", np.array([0.2, 0.9])).tolist() == [-0.2, -0.9]  # low flagged
    assert orient("forgetting_events", np.array([1, 3])).tolist() == [1.0, 3.0]
    with pytest.raises(ValueError, match="'nonsense' has no direction"):
        orient("nonsense", np.zeros(2))


def test_scoreboard_ranks_oriented_proxies_and_compares_planted_examples():
    mem = np.array([0.9, 0.8, 0.1, 0.0, 0.2, 0.05])
    flipped = np.array([True, False, False, False, False, False])
    canary = np.array([False, True, False, False, False, False])
    proxies = {
        "confidence": np.array([0.1, 0.2, 0.9, 1.0, 0.8, 0.95]),  # low = flagged: a match
        "forgetting_events": np.array([0, 0, 1, 1, 0, 1.0]),  # anti-correlated
        "neurons_zeroed": np.array([1.0, np.nan, 5, np.nan, np.nan, 9]),  # a sample of 3
    }
    table = scoreboard(proxies, mem, flipped, canary, n_boot=200, share=1 / 3)
    assert table["proxy"].tolist() == ["confidence", "neurons_zeroed", "forgetting_events"]
    top = table.iloc[0]
    assert top["direction"] == "lower" and top["n"] == 6
    assert top["spearman"] == pytest.approx(spearmanr(-proxies["confidence"], mem).statistic)
    assert top["auroc_flipped"] == 1.0 and top["auroc_canary"] == 1.0
    assert top["precision_top"] == 1.0  # both rank examples 0 and 1 top
    sample = table.set_index("proxy").loc["neurons_zeroed"]
    assert sample["n"] == 3 and sample["spearman"] == pytest.approx(1.0)
    assert np.isnan(sample["auroc_canary"])  # the canary has no neurons_zeroed


def test_scoreboard_without_an_estimate_ranks_by_the_flips():
    flipped = np.array([True, False, False, False])
    proxies = {"aum": np.array([-1.0, 2, 3, 4]), "variability": np.array([0.0, 1, 0, 0])}
    table = scoreboard(proxies, None, flipped, np.zeros(4, bool))
    assert table["proxy"].tolist() == ["aum", "variability"]
    # variability: the flip's 0 loses to 1 and ties the two 0s: (0 + 2 * 0.5) / 3
    assert table["auroc_flipped"].tolist() == pytest.approx([1.0, 1 / 3])
    assert table["spearman"].isna().all() and table["n"].tolist() == [4, 4]
