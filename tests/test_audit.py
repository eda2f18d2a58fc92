"""The privacy audit in one call: the same tables as its parts, and the sweep asked for."""

import numpy as np
import pytest

from memdash.analysis.measures.attack_budget import attack_budget
from memdash.analysis.measures.audit import privacy_audit
from memdash.analysis.measures.membership import ALL_ATTACKS, membership_tables
from memdash.analysis.measures.normality import gaussian_check


def _estimate(models: int = 12, examples: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    member = rng.random((models, examples)) < 0.5
    phi = rng.normal(size=(models, examples)) + 1.5 * member  # members score higher
    return phi, member


def test_the_audit_is_its_parts():
    phi, member = _estimate()
    tables, summary = privacy_audit(phi, member, delta=1e-5, seed=3)
    members, curves, parts = membership_tables(phi, member, attacks=ALL_ATTACKS, delta=1e-5)
    normality, gaussian = gaussian_check(phi, member)
    budget, sweep = attack_budget(phi, member, seed=3)
    assert tables["membership.parquet"].equals(members.join(normality))
    assert tables["membership_roc.parquet"].equals(curves)
    assert tables["membership_budget.parquet"].equals(budget)
    assert summary == parts | {"gaussian": gaussian, "budget": sweep}


def test_the_sweep_takes_the_counts_asked_for_and_refuses_too_many():
    phi, member = _estimate()  # 12 models: 3 targets (a quarter), 9 references at most
    tables, _ = privacy_audit(phi, member, delta=1e-5, budget=(1, 9))
    assert sorted(set(tables["membership_budget.parquet"]["models"])) == [1, 9]
    with pytest.raises(ValueError, match="10"):
        privacy_audit(phi, member, delta=1e-5, budget=(10,))


def test_a_lower_min_models_gives_lira_per_example_variances():
    """Twelve models, about six a side: below 16 the pooled variance, at 4 each example's."""
    phi, member = _estimate()
    pooled, pooled_summary = privacy_audit(phi, member, delta=1e-5)
    own, own_summary = privacy_audit(phi, member, delta=1e-5, min_models=4)
    assert (pooled_summary["min_models"], own_summary["min_models"]) == (16, 4)
    members, _, _ = membership_tables(phi, member, attacks=ALL_ATTACKS, delta=1e-5, min_models=4)
    assert own["membership.parquet"]["online_in"].equals(members["online_in"])
    assert not own["membership.parquet"]["online_in"].equals(
        pooled["membership.parquet"]["online_in"]
    )


def test_every_attack_of_the_audit_has_its_name():
    from memdash.analysis.measures.attack_names import ATTACK_NAMES

    assert tuple(ATTACK_NAMES) == ALL_ATTACKS
    assert ATTACK_NAMES["rmia_offline"] == "offline RMIA"
