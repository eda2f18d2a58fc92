"""Attack power against the number of reference models: the sweep's points and draws, LiRA
with one reference model by hand, and every pair kept."""

import numpy as np
import pytest
from scipy.special import log_ndtr

from memdash.analysis.measures.attack_budget import (
    BUDGET_ATTACKS,
    COLUMNS,
    _lira,
    attack_budget,
    budget_points,
    default_targets,
)


def test_budget_points_and_targets():
    assert budget_points(240) == [1, 2, 4, 8, 16, 32, 64, 128, 240]
    assert budget_points(8) == [1, 2, 4, 8] and budget_points(1) == [1]
    assert default_targets(256) == 16 and default_targets(16) == 4 and default_targets(3) == 1


def test_lira_with_one_reference_model_by_hand():
    """One reference model: phi 2, 0, 4, 1, trained on examples 0 and 2. No example has both
    sides, so the IN-OUT gap is mean(2, 4) - mean(0, 1) = 2.5 and the variances are those of
    every value on a side: IN var(2, 4) = 1, OUT var(0, 1) = 0.25. Example 0 (IN 2, no OUT)
    takes OUT mean 2 - 2.5 = -0.5; a target's phi 3 there scores
    -0.5 * ((3 - 2)^2 / 1 - (3 + 0.5)^2 / 0.25 + log(1 / 0.25)) = 23.31. Offline: example 0
    has no OUT model (unscored, NaN); example 1 (OUT 0), phi 1: -log Phi(-(1 - 0) / 0.5)."""
    phi_ref = np.array([[2.0, 0.0, 4.0, 1.0]])
    member_ref = np.array([[True, False, True, False]])
    target = np.array([[3.0, 1.0, 4.0, 0.0]])
    scores = _lira(phi_ref, member_ref, target, min_models=16)
    expected = -0.5 * (1 / 1 - 3.5**2 / 0.25 + np.log(1 / 0.25))
    assert scores["online"][0, 0] == pytest.approx(expected) == pytest.approx(23.307, abs=1e-3)
    # example 1 (OUT 0, no IN): IN mean 0 + 2.5; phi 1
    assert scores["online"][0, 1] == pytest.approx(-0.5 * (1.5**2 / 1 - 1 / 0.25 + np.log(4)))
    assert np.isnan(scores["offline"][0, 0]) and np.isnan(scores["offline"][0, 2])
    assert scores["offline"][0, 1] == pytest.approx(-log_ndtr(-2.0))


def _planted(k=40, n=120, seed=0):
    rng = np.random.default_rng(seed)
    member = rng.random((k, n)) < 0.7
    member[:, :10] = False  # test examples: never trained on, never attacked
    phi = rng.normal(0, 1, (k, n)) + rng.normal(0, 2, n) + 2.0 * member
    return phi, member


def test_the_sweep_keeps_every_pair_and_gains_power_with_models():
    phi, member = _planted()
    table, params = attack_budget(phi, member, draws=3, seed=1)
    assert params == {"draws": 3, "targets": 10, "seed": 1}
    assert list(table.columns) == COLUMNS
    assert len(table) == len(BUDGET_ATTACKS) * len(budget_points(30)) * 3
    assert (table["pairs"] == 10 * 110).all()  # targets x the examples membership attacks
    mean = table.groupby(["attack", "models"])["auc"].mean()
    for attack in BUDGET_ATTACKS:
        assert mean[attack, 30] > 0.8 and mean[attack, 30] > mean[attack, 1]
    one = table[table["models"] == 1].set_index(["attack", "draw"])["unscored"]
    assert (one["offline"] > 0).all() and (one["online"] == 0).all()  # no OUT model: unscored
    again, _ = attack_budget(phi, member, draws=3, seed=1)
    assert again.equals(table)  # seeded


def test_budget_points_can_be_asked_and_too_many_are_refused():
    phi, member = _planted(k=12, n=40)
    table, _ = attack_budget(phi, member, models=[2, 1], draws=1, targets=2)
    assert sorted(table["models"].unique()) == [1, 2]
    with pytest.raises(ValueError, match="1 to 10 reference models can be drawn, not \\[16\\]"):
        attack_budget(phi, member, models=[4, 16], targets=2)
    with pytest.raises(ValueError, match="targets < 12"):
        attack_budget(phi, member, targets=12)
    with pytest.raises(ValueError, match="draws >= 1"):
        attack_budget(phi, member, draws=0)
    with pytest.raises(ValueError, match="one \\(K, N\\) shape"):
        attack_budget(phi, member[:, :5])


def test_targets_and_references_are_disjoint_draws_nested_and_rmia_tuned_on_a_reference(
    monkeypatch,
):
    """Each model's log_p is -(its index + 1) on every example, so the rows each attack
    receives name the models: the targets never appear among the references, a draw's
    m reference models are the first m of its 2m, and offline RMIA's a is tuned by attacking
    the draw's first reference model with the others (`choose_a(..., target=0)`)."""
    import memdash.analysis.measures.attack_budget as budget

    phi, member = _planted(k=12, n=40)
    log_p = -np.arange(1.0, 13.0)[:, None] * np.ones((1, 40))
    seen, tuned = [], []
    real_rmia, real_choose = budget._rmia, budget.choose_a

    def rmia(log_ref, member_ref, log_target, member_target):
        seen.append((-log_ref[:, 0] - 1, -log_target[:, 0] - 1))
        return real_rmia(log_ref, member_ref, log_target, member_target)

    def choose(log_ref, member_ref, *, target):
        tuned.append((-log_ref[target, 0] - 1, target))
        return real_choose(log_ref, member_ref, target=target)

    monkeypatch.setattr(budget, "_rmia", rmia)
    monkeypatch.setattr(budget, "choose_a", choose)
    budget.attack_budget(phi, member, models=[1, 2, 4], draws=2, targets=3, log_p=log_p)
    assert len(seen) == 6 and len(tuned) == 6
    targets = seen[0][1]
    assert len(set(targets)) == 3 and all((t == targets).all() for _, t in seen)
    for d in range(2):
        refs = [r for r, _ in seen[3 * d : 3 * d + 3]]  # m = 1, 2, 4 of draw d
        assert [len(r) for r in refs] == [1, 2, 4] and not set(refs[-1]) & set(targets)
        assert (refs[1][:1] == refs[0]).all() and (refs[2][:2] == refs[1]).all()  # nested
        assert all(t == (r[0], 0) for t, r in zip(tuned[3 * d : 3 * d + 3], refs, strict=True))
    assert not (seen[2][0] == seen[5][0]).all()  # the draws differ


def test_an_estimate_with_no_attacked_example_gives_no_rows():
    """Five models: no example is held by three and left out by three: no row, not NaNs."""
    phi, member = _planted(k=5, n=20)
    table, params = attack_budget(phi, member, draws=2)
    assert table.empty and list(table.columns) == COLUMNS and params["targets"] == 1
