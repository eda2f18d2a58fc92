"""The empirical epsilon (Jagielski et al. 2020; Nasr et al. 2021) on hand-computed ROCs."""

import numpy as np
import pytest
from scipy.stats import beta

from memdash.analysis.measures.dp_audit import clopper_pearson, epsilon_lower


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


def test_membership_tables_give_every_attack_its_epsilon():
    """Members at phi 10 and non-members at 0 (each example's shadows alike): every LiRA
    attack separates them perfectly; the global threshold's bound equals the hand one for
    all pairs called at once: members 16 x 6 of 16 x 6 called first, no non-member."""
    from memdash.analysis.measures.membership import ALL_ATTACKS, membership_tables

    member = np.zeros((16, 6), bool)
    for k in range(16):
        member[k, [(k + j) % 6 for j in range(3)]] = True
    phi = np.where(member, 10.0, 0.0) + np.linspace(0, 0.1, 6)
    _, _, summary = membership_tables(phi, member, attacks=ALL_ATTACKS, delta=1e-5)
    assert summary["audit"] == {"confidence": 0.95, "delta": 1e-5}
    n = 48  # members and non-members each
    level = 0.975
    perfect = np.log(((1 - level) ** (1 / n) - 1e-5) / (1 - (1 - level) ** (1 / n)))
    assert summary["global"]["epsilon_lower"] == pytest.approx(perfect)
    assert all(summary[a]["epsilon_lower"] >= 0 for a in ALL_ATTACKS)
    _, _, plain = membership_tables(phi, member)
    assert "epsilon_lower" not in plain["global"] and "audit" not in plain


def test_pruned_thresholds_give_the_bound_of_every_threshold():
    from memdash.analysis.measures.dp_audit import _proved
    from memdash.analysis.measures.membership import roc

    rng = np.random.default_rng(3)
    truth = rng.random(4000) < 0.5
    scores = rng.normal(0, 1, 4000) + 1.5 * truth + 6 * (rng.random(4000) < 0.02) * truth
    fpr, tpr, _ = roc(scores, truth)
    positives, negatives = int(truth.sum()), int((~truth).sum())
    tp, fp = np.rint(tpr * positives), np.rint(fpr * negatives)
    everywhere = _proved(tp, fp, positives, negatives, 1e-5, 0.975)
    assert everywhere > 0
    assert epsilon_lower(tp, fp, positives, negatives) == pytest.approx(everywhere)
