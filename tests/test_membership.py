"""LiRA (Carlini et al. 2022) against cases whose answer is known: hand-computed fits and
ROCs, Gaussian confidences with an exact likelihood ratio, and no signal at all."""

import numpy as np
import pytest
import torch
from scipy.stats import norm

from memdash.analysis.measures.membership import (
    attack_scores,
    auc,
    logit_confidence,
    membership_tables,
    roc,
    shadow_fits,
    tpr_at,
)


def test_logit_confidence_is_log_odds_of_the_label_and_exact_in_the_tails():
    logits = torch.tensor(
        [[[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]], [[100.0, 0.0, 0.0], [-80.0, 0.0, 0.0]]]
    )
    labels = torch.tensor([0, 2])
    phi = logit_confidence(logits.double(), labels)
    p = torch.softmax(logits.double(), -1)
    naive = torch.log(p[0, [0, 1], labels] / (1 - p[0, [0, 1], labels]))
    assert torch.allclose(phi[0], naive)
    assert phi[0, 1].item() == pytest.approx(np.log(1 / 2))  # p = 1/3: odds 1:2
    # p = 1 - 2e-44 and p = 2e-35: log odds 100 - log 2 and 0 - log(e^-80 + 1) = -1e-35
    assert phi[1, 0].item() == pytest.approx(100 - np.log(2), rel=1e-12)
    assert phi[1, 1].item() == pytest.approx(-np.log1p(np.exp(-80.0)), abs=1e-30)
    assert torch.isfinite(logit_confidence(logits, labels)).all()  # float32 too


def test_shadow_fits_leave_the_target_out():
    """One example, five models: held by models 0-2 (phi 1, 2, 6), not by 3-4 (phi 0, 2)."""
    phi = np.array([[1.0], [2.0], [6.0], [0.0], [2.0]])
    member = np.array([[True], [True], [True], [False], [False]])
    fits = shadow_fits(phi, member, variance="per_example")
    # target 0 (in): the in-shadows are models 1, 2 (phi 2, 6): mean 4, variance 4
    assert fits.mu_in[0, 0] == 4 and fits.var_in[0, 0] == 4 and fits.n_in[0, 0] == 2
    assert fits.mu_out[0, 0] == 1 and fits.var_out[0, 0] == 1 and fits.n_out[0, 0] == 2
    # target 3 (out): in-shadows 0-2 (mean 3, variance 14/3), out-shadow model 4 alone
    assert fits.mu_in[3, 0] == 3 and fits.var_in[3, 0] == pytest.approx(14 / 3)
    assert fits.mu_out[3, 0] == 2 and fits.n_out[3, 0] == 1
    scores = attack_scores(phi, fits)
    v_in, v_out = 4, 1
    expected = norm.logpdf(1, 4, np.sqrt(v_in)) - norm.logpdf(1, 1, np.sqrt(v_out))
    assert scores["online"][0, 0] == pytest.approx(expected)
    assert scores["offline"][0, 0] == pytest.approx(-np.log(norm.sf(1, 1, 1)))  # -log 1/2
    assert np.isnan(scores["online"][3, 0])  # one out-shadow: no Gaussian to fit
    assert scores["global"][3, 0] == 0
    # min_shadows 1 (the attack budget's 0 likewise): one out-shadow, phi 2, variance 0
    # floored at VAR_FLOOR, is fitted; target 3's phi 0 scores the in Gaussian's logpdf
    # minus the floored out one's
    loose = attack_scores(phi, fits, min_shadows=1)["online"][3, 0]
    floor = norm.logpdf(0, 2, np.sqrt(1e-6))
    assert loose == pytest.approx(norm.logpdf(0, 3, np.sqrt(14 / 3)) - floor)


def test_side_over_every_reference_model_and_the_pooled_fallback():
    """Without leaving a target out (the attack budget's references): in-models 0-2 (phi 1,
    2, 6): mean 3, variance 14/3, count 3, one (N,) row. No two values anywhere: the
    fallback."""
    from memdash.analysis.measures.membership import _pooled, _side

    phi = np.array([[1.0], [2.0], [6.0], [0.0], [2.0]])
    member = np.array([[True], [True], [True], [False], [False]])
    mean, var, count = _side(phi, member, leave_out=False)
    assert mean.shape == (1,) and (mean[0], count[0]) == (3, 3)
    assert var[0] == pytest.approx(14 / 3)
    assert _pooled(var, count) == pytest.approx(14 / 3)
    assert _pooled(var, np.array([1]), fallback=2.5) == 2.5


def test_the_roc_helpers_are_those_of_measures_roc():
    from memdash.analysis.measures import membership
    from memdash.analysis.measures import roc as roc_module

    assert membership.roc is roc_module.roc and membership.auc is roc_module.auc


def test_the_out_gaussian_is_centred_on_the_mean_and_the_offline_test_is_one_sided():
    """The two departures from the released code that the module names, by hand. One example,
    eight models: held by models 0-2 (phi -10, 14, 5), not by 3-7 (phi 0, 0, 0, 0, 10). For
    targets 0 and 1 the out-shadows are models 3-7: mean 2 (their median is 0), variance
    100/5 - 2^2 = 16. Offline scores -log Pr[Z > phi]: phi = -10 lies 3 sd below the mean and
    scores -log Phi(3) = 0.00135 (a non-member), phi = 14 lies 3 sd above and scores
    -log Phi(-3) = 6.61; scoring both tails (the released code's -log N(phi)) would rank the
    two alike."""
    phi = np.array([[-10.0], [14.0], [5.0], [0.0], [0.0], [0.0], [0.0], [10.0]])
    member = np.array([[True]] * 3 + [[False]] * 5)
    fits = shadow_fits(phi, member, variance="per_example")
    assert fits.mu_out[0, 0] == 2 and np.median(phi[3:]) == 0
    assert fits.var_out[0, 0] == pytest.approx(16) and fits.var_out[1, 0] == pytest.approx(16)
    offline = attack_scores(phi, fits)["offline"][:2, 0]
    np.testing.assert_allclose(offline, [-np.log(norm.cdf(3)), -np.log(norm.cdf(-3))])
    assert offline[0] == pytest.approx(0.00135, abs=1e-5) and offline[1] == pytest.approx(
        6.608, abs=1e-3
    )
    assert norm.logpdf(-10, 2, 4) == pytest.approx(norm.logpdf(14, 2, 4))  # both tails: a tie


def test_few_shadow_models_use_the_pooled_variance():
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(40, 3))
    member = np.zeros((40, 3), bool)
    member[:20, 0] = member[:4, 1] = member[:20, 2] = True  # example 1: 4 in-models
    per = shadow_fits(phi, member, variance="per_example")
    auto = shadow_fits(phi, member, variance="auto", min_models=16)
    glob = shadow_fits(phi, member, variance="global")
    assert auto.var_in[0, 0] == per.var_in[0, 0]  # 19 in-shadows: its own variance
    assert auto.var_in[0, 1] == glob.var_in[0, 1] != per.var_in[0, 1]  # 3: the pooled one
    assert np.unique(glob.var_in).size == 1 and np.unique(glob.var_out).size == 1


def test_roc_and_auc_by_hand():
    scores = np.array([3.0, 2.0, 2.0, 1.0])
    truth = np.array([True, False, True, False])
    fpr, tpr, threshold = roc(scores, truth)
    assert fpr.tolist() == [0, 0, 0.5, 1] and tpr.tolist() == [0, 0.5, 1, 1]
    assert threshold.tolist() == [np.inf, 3, 2, 1]
    # member-over-non-member pairs: 3>2, 3>1, 2=2 (half), 2>1: 3.5 of 4
    assert auc(scores, truth) == 0.875
    assert tpr_at(fpr, tpr, 0.4) == 0.5 and tpr_at(fpr, tpr, 0.5) == 1


def _gaussian_case(separation: float, seed: int = 0, k: int = 128, n: int = 800):
    """phi of model k on example n: N(mu_n + separation * member, 1), mu_n ~ N(0, 3^2)."""
    rng = np.random.default_rng(seed)
    member = rng.random((k, n)) < 0.5
    mu = rng.normal(0, 3, n)
    return rng.normal(0, 1, (k, n)) + mu + separation * member, member, mu


def test_lira_reaches_the_exact_likelihood_ratio_on_gaussian_confidences():
    """In and out are N(mu_n + 2, 1) and N(mu_n, 1): the exact likelihood ratio is monotone
    in phi - mu_n, so its ROC is binormal with d' = 2 (AUC = Phi(sqrt 2), TPR at FPR a =
    Phi(2 - Phi^-1(1 - a))). Online and offline LiRA, with fitted Gaussians, come within a
    few hundredths; the global threshold, blind to mu_n, falls far short."""
    phi, member, mu = _gaussian_case(2.0)
    per, curves, summary = membership_tables(phi, member)
    exact_auc = norm.cdf(2 / np.sqrt(2))
    oracle_auc = auc(phi - mu, member)  # the exact ratio's ranking on these very draws
    assert abs(oracle_auc - exact_auc) < 0.005
    for attack in ("online", "offline"):
        assert abs(summary[attack]["auc"] - exact_auc) < 0.01, (attack, summary[attack])
        assert abs(summary[attack]["tpr_at_1%"] - norm.sf(norm.isf(0.01) - 2)) < 0.04
    assert summary["global"]["auc"] < 0.75
    assert set(curves["attack"]) == {"online", "offline", "global"}
    assert per["online_fpr"].mean() == pytest.approx(0.01, abs=0.002)  # the global threshold
    assert per["online_in"].mean() > 0 > per["online_out"].mean()


def test_no_signal_gives_an_auc_of_one_half():
    phi, member, _ = _gaussian_case(0.0, seed=1)
    _, _, summary = membership_tables(phi, member)
    for attack in ("online", "offline", "global"):
        assert abs(summary[attack]["auc"] - 0.5) < 0.01, (attack, summary[attack])
        assert summary[attack]["tpr_at_1%"] < 0.02


def test_examples_never_or_always_held_are_left_out():
    phi, member, _ = _gaussian_case(2.0, k=16, n=50)
    member[:, :5] = False  # test examples: never trained on
    member[:, 5:7] = True
    per, _, summary = membership_tables(phi, member)
    assert per.loc[:6, "vulnerability"].isna().all() and per.loc[7:, "vulnerability"].notna().all()
    assert per.loc[:4, "n_in"].eq(0).all() and summary["online"]["pairs"] == 16 * 43


def test_too_few_models_leave_every_score_empty_not_wrong():
    phi, member, _ = _gaussian_case(2.0, k=4, n=20)
    per, curves, summary = membership_tables(phi, member)
    assert per["vulnerability"].isna().all() and curves.empty
    assert summary["online"] == {"auc": None, "pairs": 0}


def test_memorization_link_by_hand():
    """mem_score 0..9 (and a NaN), vulnerability the same / 10: Spearman 1; the 90th
    percentile of 0..9 is 8.1, so the top decile is the example at 9 (0.9), the rest
    average 0.4; the NaN example is left out."""
    from memdash.analysis.measures.membership import memorization_link

    mem = np.r_[np.arange(10.0), np.nan]
    link = memorization_link(mem, np.r_[np.arange(10.0) / 10, 0.5])
    assert link["spearman"] == pytest.approx(1.0) and link["examples"] == 10
    assert link["top_decile_tpr"] == pytest.approx(0.9)
    assert link["rest_tpr"] == pytest.approx(0.4)
    # an estimate of too few models has no vulnerability at all: NaN, not an error
    empty = memorization_link(mem, np.full(11, np.nan))
    assert empty["examples"] == 0 and np.isnan(empty["spearman"]) and np.isnan(empty["rest_tpr"])
