"""The empirical epsilon (Jagielski et al. 2020; Nasr et al. 2021) on hand-computed ROCs, and
its threshold chosen on half of the targets and bounded on the other half."""

import numpy as np
import pytest
from scipy.stats import beta

from memdash.analysis.measures.dp_audit import (
    best_threshold,
    clopper_pearson,
    epsilon_lower,
    split_epsilon,
)


def test_clopper_pearson_by_hand():
    """0 of n: the upper bound solves (1 - p)^n = 1 - level, so p = 1 - 0.05^(1/n) at 95%;
    n of n: the lower bound solves p^n = 0.05. The ends are 0 and 1 by convention."""
    up = clopper_pearson(np.array([0, 100]), 100, level=0.95, upper=True)
    lo = clopper_pearson(np.array([0, 100]), 100, level=0.95, upper=False)
    assert up[0] == pytest.approx(1 - 0.05 ** (1 / 100)) and up[1] == 1
    assert lo[0] == 0 and lo[1] == pytest.approx(0.05 ** (1 / 100))
    mid = clopper_pearson(np.array([50]), 100, level=0.95, upper=False)
    assert mid[0] == pytest.approx(beta.ppf(0.05, 50, 51))


def test_epsilon_of_a_roc_by_hand():
    """100 members, 100 non-members, confidence 0.9 (each bound one-sided at 0.95). At the
    threshold calling 50 members and no non-member: TPR_lo = beta.ppf(0.05, 50, 51) = 0.416,
    FPR_hi = 1 - 0.05^(1/100) = 0.0295, epsilon >= log((0.416 - 1e-5) / 0.0295) = 2.65;
    the complementary test there proves only log((1 - 0.0295 - 1e-5) / (1 - 0.416)) = 0.51;
    (0, 0) and (100, 100) prove nothing."""
    tpr_lo, fpr_hi = beta.ppf(0.05, 50, 51), 1 - 0.05 ** (1 / 100)
    expected = np.log((tpr_lo - 1e-5) / fpr_hi)
    assert expected == pytest.approx(2.65, abs=0.01)
    tp, fp = np.array([0, 50, 100]), np.array([0, 0, 100])
    assert epsilon_lower(tp, fp, 100, 100, delta=1e-5, confidence=0.9) == pytest.approx(expected)
    # mirrored: every member called, half the non-members: the complementary test proves it
    tp, fp = np.array([0, 100, 100]), np.array([0, 50, 100])
    mirrored = np.log((1 - beta.ppf(0.95, 51, 50) - 1e-5) / (1 - 0.05 ** (1 / 100)))
    assert epsilon_lower(tp, fp, 100, 100, delta=1e-5, confidence=0.9) == pytest.approx(mirrored)
    assert mirrored == pytest.approx(expected)  # the same counts, seen from the other side
    value, index, test = best_threshold(tp, fp, 100, 100, delta=1e-5, confidence=0.9)
    assert (value, index, test) == (pytest.approx(mirrored), 1, "uncalled")


def test_nothing_proved_gives_zero_and_a_larger_delta_proves_less():
    tp = fp = np.arange(0, 101, 10)  # no signal: TPR = FPR everywhere
    assert epsilon_lower(tp, fp, 100, 100) == 0.0
    tp, fp = np.array([50]), np.array([0])
    assert epsilon_lower(tp, fp, 100, 100, delta=0.1) < epsilon_lower(tp, fp, 100, 100)
    assert epsilon_lower(tp // 10, fp, 10, 10) < epsilon_lower(tp * 10, fp, 1000, 1000)  # trials


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((np.array([1]), np.array([0]), 10, 10), {"delta": 1.0}, "delta must lie"),
        ((np.array([1]), np.array([0]), 10, 10), {"confidence": 1.0}, "confidence must lie"),
        ((np.array([11]), np.array([0]), 10, 10), {}, "counts within"),
        ((np.array([1]), np.array([0]), 0, 10), {}, "members and non-members both"),
    ],
)
def test_bad_input_is_named(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        epsilon_lower(*args, **kwargs)


def _rows(members: list[float], others: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """One target's scores: 100 members and 100 non-members, each list repeated evenly."""
    scores = np.r_[np.repeat(members, 100 // len(members)), np.repeat(others, 100 // len(others))]
    return scores, np.r_[np.ones(100, bool), np.zeros(100, bool)]


def test_split_epsilon_chooses_on_the_even_targets_and_bounds_on_the_odd_by_hand():
    """Target 0 (even): members at 2, non-members at 0: the threshold 2 separates them (the
    called test and its complement tie; the called one is kept). Target 1 (odd): half its
    members at 2, half at 0, non-members at 0. At threshold 2 target 1 has 50 of 100 members
    called and no non-member: at confidence 0.9 the bound of the hand case above,
    log((beta.ppf(0.05, 50, 51) - 1e-5) / (1 - 0.05^(1/100))) = 2.65."""
    s0, t0 = _rows([2.0], [0.0])
    s1, t1 = _rows([2.0, 0.0], [0.0])
    expected = np.log((beta.ppf(0.05, 50, 51) - 1e-5) / (1 - 0.05 ** (1 / 100)))
    value = split_epsilon(np.stack([s0, s1]), np.stack([t0, t1]), delta=1e-5, confidence=0.9)
    assert value == pytest.approx(expected) == pytest.approx(2.65, abs=0.01)


def test_a_threshold_chosen_on_one_half_proves_nothing_on_a_half_without_signal():
    """Target 0 separates perfectly, target 1 scores every pair 1. Pooled and chosen on the
    same pairs, the threshold 2 calls target 0's 100 members and nothing else: 100 of 200
    members, 0 of 200 non-members, a bound of 3.16 (the overstatement). Chosen on
    target 0 and bounded on target 1, where nothing reaches 2, it proves nothing: 0."""
    s0, t0 = _rows([2.0], [0.0])
    s1, t1 = _rows([1.0], [1.0])
    scores, truth = np.stack([s0, s1]), np.stack([t0, t1])
    from memdash.analysis.measures.roc import roc

    fpr, tpr, _ = roc(scores, truth)
    pooled = epsilon_lower(np.rint(tpr * 200), np.rint(fpr * 200), 200, 200)
    assert pooled > 3
    assert split_epsilon(scores, truth) == 0.0
    # swapped: chosen on the flat half, nothing is proved there, nothing is tried on the other
    assert split_epsilon(scores[::-1], truth[::-1]) == 0.0


def test_split_epsilon_without_members_on_a_half_measures_nothing():
    s0, t0 = _rows([2.0], [0.0])
    assert split_epsilon(s0[None], t0[None]) is None  # one target: no half to bound on
    truth = np.stack([t0, np.zeros_like(t0)])  # target 1 trained on nothing
    assert split_epsilon(np.stack([s0, s0]), truth) is None
    with pytest.raises(ValueError, match="one \\(T, E\\) shape"):
        split_epsilon(np.stack([s0, s0]), t0)


def test_membership_tables_give_every_attack_its_epsilon():
    """Members at phi 10 and non-members at 0 (each example's shadows alike): every LiRA
    attack separates them perfectly. The global threshold is chosen on the even targets
    (the lowest member score) and bounded on the odd: 8 targets x 3 members each, all
    called, and none of their 8 x 3 non-members."""
    from memdash.analysis.measures.membership import ALL_ATTACKS, membership_tables

    member = np.zeros((16, 6), bool)
    for k in range(16):
        member[k, [(k + j) % 6 for j in range(3)]] = True
    phi = np.where(member, 10.0, 0.0) + np.linspace(0, 0.1, 6)
    _, _, summary = membership_tables(phi, member, attacks=ALL_ATTACKS, delta=1e-5)
    assert summary["audit"] == {"confidence": 0.95, "delta": 1e-5, "split": "even/odd targets"}
    n = 24  # the odd targets' members and non-members each
    level = 0.975
    perfect = np.log(((1 - level) ** (1 / n) - 1e-5) / (1 - (1 - level) ** (1 / n)))
    assert summary["global"]["epsilon_lower"] == pytest.approx(perfect)
    assert all(summary[a]["epsilon_lower"] >= 0 for a in ALL_ATTACKS)
    _, _, plain = membership_tables(phi, member)
    assert "epsilon_lower" not in plain["global"] and "audit" not in plain
    # five models: no example has two shadows on each side, no pair: None, not 0.0
    _, _, few = membership_tables(phi[:5], member[:5], attacks=ALL_ATTACKS, delta=1e-5)
    assert all(few[a]["epsilon_lower"] is None and few[a]["pairs"] == 0 for a in ALL_ATTACKS)


def test_pruned_thresholds_give_the_bound_of_every_threshold():
    from memdash.analysis.measures.dp_audit import _best
    from memdash.analysis.measures.roc import roc

    rng = np.random.default_rng(3)
    truth = rng.random(4000) < 0.5
    scores = rng.normal(0, 1, 4000) + 1.5 * truth + 6 * (rng.random(4000) < 0.02) * truth
    fpr, tpr, _ = roc(scores, truth)
    positives, negatives = int(truth.sum()), int((~truth).sum())
    tp, fp = np.rint(tpr * positives), np.rint(fpr * negatives)
    everywhere, _, _ = _best(tp, fp, np.arange(len(tp)), positives, negatives, 1e-5, 0.975)
    assert everywhere > 0
    assert epsilon_lower(tp, fp, positives, negatives) == pytest.approx(everywhere)
