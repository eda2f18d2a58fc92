"""RMIA (Zarifzadeh et al. 2024) against a hand-computed case, a brute-force pairwise count,
and the attacks' place beside LiRA in `membership_tables`."""

import numpy as np
import pytest

from memdash.analysis.measures.membership import ALL_ATTACKS, auc, membership_tables
from memdash.analysis.measures.rmia import (
    A_GRID,
    FALLBACK_A,
    choose_a,
    log_mean,
    log_prob_label,
    loo_log_mean,
    offline_a,
    rmia_attack_scores,
    rmia_scores,
)

# four models x five examples; example 4 is a test example (no model trains on it)
MEMBER = np.array([[1, 1, 0, 0, 0], [1, 0, 1, 0, 0], [0, 1, 1, 0, 0], [1, 0, 0, 1, 0]], dtype=bool)
P = np.array(
    [
        [0.9, 0.6, 0.3, 0.2, 0.1],
        [0.8, 0.2, 0.7, 0.4, 0.2],
        [0.2, 0.8, 0.9, 0.1, 0.3],
        [0.6, 0.3, 0.2, 0.8, 0.4],
    ]
)


def test_online_rmia_by_hand():
    """Target 3: reference models 0-2; its population is examples 1, 2, 4.
    p(x) = (mean over IN + mean over OUT) / 2, ratio = p(x|target) / p(x):
    x0: IN 0.9, 0.8 (0.85), OUT 0.2: p 0.525, ratio 0.6/0.525 = 1.143
    x1: IN 0.6, 0.8 (0.7), OUT 0.2: p 0.45, ratio 0.3/0.45 = 0.667
    x2: IN 0.7, 0.9 (0.8), OUT 0.3: p 0.55, ratio 0.2/0.55 = 0.364
    x3: OUT only 0.2, 0.4, 0.1: p 0.233, ratio 3.43
    x4: OUT only 0.1, 0.2, 0.3: p 0.2, ratio 2
    score = share of the population (x itself left out) with ratio(z) <= ratio(x):
    x0 2/3 (not x4), x1 1/2 (x2 of x2, x4), x2 0/2, x3 3/3, x4 2/2.
    Target 0 (population 2, 3, 4; ratios 2, 1.143, 0.6, 0.381, 0.333): 1, 1, 1, 1/2, 0."""
    scores = rmia_scores(np.log(P), MEMBER, offline=False)
    np.testing.assert_allclose(scores[3], [2 / 3, 1 / 2, 0, 1, 1])
    np.testing.assert_allclose(scores[0], [1, 1, 1, 1 / 2, 0])
    # gamma = 2: z counts when ratio(z) <= ratio(x) / 2 = 0.571 for x0: only x2
    assert rmia_scores(np.log(P), MEMBER, offline=False, gamma=2.0)[3, 0] == pytest.approx(1 / 3)


def test_offline_rmia_by_hand():
    """a = 0.5: p(x) = ((1 + a) p_OUT + (1 - a)) / 2 = 0.75 p_OUT + 0.25. Target 3:
    x0: OUT 0.2 -> p 0.4, ratio 1.5; x1: OUT 0.2 -> 0.4, ratio 0.75; x2: OUT 0.3 -> 0.475,
    ratio 0.421; x4: OUT mean 0.2 -> 0.4, ratio 1. x0 beats all three (1; online: 2/3),
    x1 beats x2 (1/2), x4 beats x1 and x2 (1). Target 2's x0 has no OUT reference model
    (models 0, 1, 3 all train on it): NaN."""
    scores = rmia_scores(np.log(P), MEMBER, offline=True, a=0.5)
    np.testing.assert_allclose(scores[3, [0, 1, 2, 4]], [1, 1 / 2, 0, 1])
    assert np.isnan(scores[2, 0]) and not np.isnan(scores[2, 1:]).any()
    # a = 1: p(x) = p_OUT(x), no approximation of the IN side
    plain = rmia_scores(np.log(P), MEMBER, offline=True, a=1.0)
    assert plain[3, 0] == pytest.approx(1.0)  # 0.6/0.2 = 3 against 1.5, 0.667, 2


def _brute_force(log_p, member, reference):
    """The paper's definition, pair by pair."""
    k, n = log_p.shape
    out = np.full((k, n), np.nan)
    for t in range(k):
        for x in range(n):
            zs = [z for z in range(n) if not member[t, z] and z != x]
            lr = [np.exp(log_p[t, x] - reference[t, x] - log_p[t, z] + reference[t, z]) for z in zs]
            out[t, x] = np.mean(np.array(lr) >= 1 - 1e-12)
    return out


def test_online_rmia_matches_the_pairwise_definition_on_random_models():
    rng = np.random.default_rng(0)
    member = rng.random((6, 9)) < 0.6
    log_p = np.log(rng.uniform(0.05, 0.95, (6, 9)))
    reference = np.empty_like(log_p)
    for t in range(6):
        others = [j for j in range(6) if j != t]
        for x in range(9):
            ins = [np.exp(log_p[j, x]) for j in others if member[j, x]]
            outs = [np.exp(log_p[j, x]) for j in others if not member[j, x]]
            means = [np.mean(side) for side in (ins, outs) if side]
            reference[t, x] = np.log(np.mean(means))
    np.testing.assert_allclose(
        rmia_scores(log_p, member, offline=False), _brute_force(log_p, member, reference)
    )


def test_log_means_leave_the_target_out_and_survive_sequence_likelihoods():
    """Log-likelihoods of -1000 (a long sequence): exp underflows, the log-mean does not."""
    log_p = np.array([[-1000.0], [-1001.0], [-1002.0]])
    mean, count = loo_log_mean(log_p, np.ones((3, 1), bool))
    expected = np.log((np.exp(-1.0) + np.exp(-2.0)) / 2) - 1000.0
    assert mean[0, 0] == pytest.approx(expected) and count[0, 0] == 2
    long = np.array([[-1000.0, -1003, -1001], [-1002, -1000, -1004], [-1001, -1002, -1000]])
    scores = rmia_scores(long - 5000, np.eye(3, dtype=bool), offline=False)
    assert np.isfinite(scores).all() and (np.diag(scores) == 1).all()


def test_log_prob_label_is_log_sigmoid():
    np.testing.assert_allclose(
        log_prob_label(np.array([0.0, 2.0])), np.log([0.5, 1 / (1 + np.exp(-2))])
    )
    assert log_prob_label(np.array([-6e4]))[0] == pytest.approx(-6e4)


def _random_models(seed: int, k: int = 6, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    member = rng.random((k, n)) < 0.6
    log_p = np.minimum(np.log(rng.uniform(0.05, 0.95, (k, n))) + 0.3 * member, 0.0)
    return log_p, member


def test_choose_a_keeps_the_a_of_the_best_auc_over_the_grid():
    """Brute force: model 0 attacked with models 1-5, for each a of the grid, p(x) from the
    pair-by-pair definition ((1 + a) mean OUT p + (1 - a)) / 2, scored by `_brute_force`,
    AUC by `membership.auc` over the examples with an OUT reference model."""
    log_p, member = _random_models(1)
    p = np.exp(log_p)
    aucs = []
    for a in A_GRID:
        reference = np.zeros_like(log_p)
        for x in range(log_p.shape[1]):
            outs = [p[j, x] for j in range(1, 6) if not member[j, x]]
            reference[0, x] = np.log(((1 + a) * np.mean(outs) + 1 - a) / 2) if outs else np.nan
        scored = np.isfinite(reference[0])
        share = _brute_force(log_p, member | ~scored, reference)[0]  # no z without reference
        aucs.append(auc(share[scored], member[0, scored]))
    assert np.ptp(aucs) > 0.05  # the AUCs differ: the choice matters
    assert choose_a(log_p, member) == A_GRID[int(np.argmax(aucs))] == 0.9
    assert choose_a(np.log(P), MEMBER, grid=np.array([0.3])) == 0.3
    assert choose_a(np.log(P[:1]), MEMBER[:1]) == FALLBACK_A


def test_offline_a_is_tuned_on_a_reference_model_never_on_the_target():
    """Targets 1-5 use the a tuned on model 0 (0.9 here); target 0 the a tuned on model 1
    against models 2-5 (0.0), which nothing of model 0 changes."""
    log_p, member = _random_models(1)
    a_rest, a_first = offline_a(log_p, member)
    assert a_rest == choose_a(log_p, member, target=0) == 0.9
    assert a_first == choose_a(log_p[1:], member[1:], target=0) == 0.0
    changed_p, changed = log_p.copy(), member.copy()
    changed_p[0], changed[0] = np.log(0.5), ~member[0]
    assert offline_a(changed_p, changed)[1] == a_first
    scores = rmia_scores(log_p, member, offline=True)
    np.testing.assert_allclose(scores[0], rmia_scores(log_p, member, offline=True, a=0.0)[0])
    np.testing.assert_allclose(scores[1:], rmia_scores(log_p, member, offline=True, a=0.9)[1:])
    attacked, summary = rmia_attack_scores(np.zeros_like(log_p), member, log_p=log_p)
    np.testing.assert_allclose(attacked["rmia_offline"], scores)
    assert summary["rmia_a"] == 0.9 and summary["rmia_a_target0"] == 0.0
    assert offline_a(log_p[:2], member[:2])[1] == FALLBACK_A  # one model left: no choice
    with pytest.raises(ValueError, match="one per target"):
        rmia_scores(log_p, member, offline=True, a=np.zeros(3))


def test_log_mean_is_the_mean_over_every_model_on_the_side():
    """Example 0: models 0, 1, 3 train on it: log mean(0.9, 0.8, 0.6); example 4: none."""
    mean = log_mean(np.log(P), MEMBER)
    assert mean[0] == pytest.approx(np.log((0.9 + 0.8 + 0.6) / 3)) and np.isnan(mean[4])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"offline": True, "a": 1.5}, "a must lie in"),
        ({"offline": False, "gamma": 0.0}, "gamma must be a positive"),
        ({"offline": False, "population": np.ones((2, 2), bool)}, "population must be"),
    ],
)
def test_bad_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rmia_scores(np.log(P), MEMBER, **kwargs)


def test_bad_arrays_are_named():
    with pytest.raises(ValueError, match="one \\(K, N\\) shape"):
        rmia_scores(np.log(P), MEMBER[:, :3], offline=False)
    with pytest.raises(ValueError, match="<= 0"):
        rmia_scores(P + 1, MEMBER, offline=False)
    with pytest.raises(ValueError, match="model index"):
        choose_a(np.log(P), MEMBER, target=7)


def test_membership_tables_run_rmia_beside_lira():
    """phi = d * member + per-example offset: every attack sees the signal; the RMIA rows
    and summaries take the LiRA attacks' shape."""
    rng = np.random.default_rng(1)
    member = rng.random((24, 60)) < 0.7
    phi = rng.normal(0, 1, (24, 60)) + rng.normal(0, 2, 60) + 2.0 * member
    per, curves, summary = membership_tables(phi, member, attacks=ALL_ATTACKS)
    assert set(curves["attack"]) == set(ALL_ATTACKS)
    for attack in ("rmia", "rmia_offline"):
        assert (
            summary[attack]["auc"] > 0.75 and summary[attack]["pairs"] == summary["online"]["pairs"]
        )
        assert {f"{attack}_{p}" for p in ("in", "out", "tpr", "fpr")} <= set(per)
        assert (per[f"{attack}_in"] > per[f"{attack}_out"]).mean() > 0.8
    assert 0 <= summary["rmia_a"] <= 1 and summary["rmia_gamma"] == 1.0
    # a statistic of another kind (text: log-likelihoods) goes in as phi, with log_p beside
    _, _, text = membership_tables(
        phi - 50, member, attacks=("online", "rmia"), log_p=log_prob_label(phi) - 50
    )
    assert text["rmia"]["auc"] == pytest.approx(summary["rmia"]["auc"])
    with pytest.raises(ValueError, match="unknown attacks"):
        membership_tables(phi, member, attacks=("lira2",))


def _pairwise(ratio, population, gamma):
    """score(x): the share of the population's z (not x, with a ratio) where
    ratio(x) / ratio(z) >= gamma, one pair at a time."""
    out = np.full(ratio.shape, np.nan)
    pool = np.flatnonzero(population & ~np.isnan(ratio))
    for x in np.flatnonzero(~np.isnan(ratio)):
        zs = [z for z in pool if z != x]
        if zs:
            out[x] = np.mean([ratio[x] / ratio[z] >= gamma for z in zs])
    return out


def _reference_rmia(log_p, member, *, offline, a=None, gamma=1.0):
    """RMIA as the paper states it, in probabilities: target by target, p(x) a plain mean
    over the other models (online: IN and OUT balanced; offline: the linear approximation
    from the OUT mean with target t's a[t]), then pair by pair."""
    p = np.exp(log_p)
    k, n = p.shape
    out = np.full((k, n), np.nan)
    for t in range(k):
        others = np.arange(k) != t
        p_x = np.full(n, np.nan)
        for x in range(n):
            ins, outs = p[others & member[:, x], x], p[others & ~member[:, x], x]
            if offline and outs.size:
                p_x[x] = ((1 + a[t]) * outs.mean() + 1 - a[t]) / 2
            elif not offline:
                p_x[x] = np.mean([side.mean() for side in (ins, outs) if side.size])
        out[t] = _pairwise(p[t] / p_x, ~member[t], gamma)
    return out


def _reference_a(log_p, member):
    """Model 0 attacked with models 1.., offline, for each a of the grid: the first a of
    the highest AUC."""
    p = np.exp(log_p)
    outs = [p[1:, x][~member[1:, x]] for x in range(p.shape[1])]
    aucs = []
    for a in A_GRID:
        p_x = np.array([((1 + a) * o.mean() + 1 - a) / 2 if o.size else np.nan for o in outs])
        scored = ~np.isnan(p_x)
        share = _pairwise(p[0] / p_x, ~member[0], 1.0)
        aucs.append(auc(share[scored], member[0, scored]))
    return A_GRID[int(np.argmax(aucs))]


@pytest.mark.parametrize(
    ("offline", "gamma", "a"),
    [(False, 1.0, None), (False, 2.0, None), (True, 1.0, "each"), (True, 0.5, "each")]
    + [(True, 1.0, None)],
)
def test_rmia_equals_a_pair_by_pair_reference_on_16_random_models(offline, gamma, a):
    """16 models x 40 examples; example 0 is held by every model (offline: no OUT reference,
    not scored, no z), example 1 by none (a test example, in every population), example 3
    a copy of example 2 (their ratios tie for every target). a: one per target, drawn, or
    None (tuned as `offline_a` does: model 0 for targets 1.., model 1 for target 0)."""
    rng = np.random.default_rng(7)
    member = rng.random((16, 40)) < 0.6
    log_p = np.log(rng.uniform(0.05, 0.95, (16, 40))) + 0.2 * member - 0.2
    member[:, 0], member[:, 1] = True, False
    log_p[:, 3], member[:, 3] = log_p[:, 2], member[:, 2]
    each = rng.uniform(0, 1, 16) if a == "each" else None
    if offline and a is None:
        a_rest, a_first = _reference_a(log_p, member), _reference_a(log_p[1:], member[1:])
        assert offline_a(log_p, member) == (a_rest, a_first)
        each = np.r_[a_first, np.full(15, a_rest)]
    expected = _reference_rmia(log_p, member, offline=offline, a=each, gamma=gamma)
    got = rmia_scores(log_p, member, offline=offline, a=None if a is None else each, gamma=gamma)
    assert np.isnan(got[:, 0]).all() == offline and not np.isnan(got[:, 1:]).any()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
