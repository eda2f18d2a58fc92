"""The DP-SGD findings on hand-made estimates: what they measure, and their verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memdash.analysis.findings import HOLDS, MISSING, REGISTRY
from memdash.analysis.findings.registry import FAILS
from memdash.analysis.findings.selection import roles


class FakeRun:
    """The few things the DP findings read of a run: its examples, heldout.parquet, the
    manifest's heldout entry."""

    def __init__(self, name, examples, heldout, entry, *, dp=None):
        self.name, self._examples, self._heldout, self._entry = name, examples, heldout, entry
        self.status, self.meta, self.is_text = "complete", {}, False
        train = {"dp": dp} if dp else {}
        self.config = {"data": {"noise": 0.2, "corruption": "symmetric"}, "train": train}

    def examples(self, columns=None):
        return self._examples if columns is None else self._examples[columns]

    def read_derived(self, name):
        assert name == "heldout.parquet"
        return self._heldout

    def derived_manifest(self):
        return {"heldout": self._entry}


# six examples: four training (two of them flipped), two test
EXAMPLES = pd.DataFrame(
    {
        "split": ["train"] * 4 + ["test"] * 2,
        "is_noisy": [False, False, True, True, False, False],
        "is_canary": [False] * 6,
    }
)


def _run(name, mem, accuracy, summary, params, dp=None):
    held = pd.DataFrame({"mem_score": mem, "heldout_accuracy": accuracy})
    return FakeRun(name, EXAMPLES, held, {"membership": summary, "params": params}, dp=dp)


def _summary(tpr, auc, bounds):
    return {
        "online": {"auc": auc, "tpr_at_0.1%": tpr, "epsilon_lower": bounds[0]},
        "offline": {"auc": auc, "tpr_at_0.1%": tpr, "epsilon_lower": bounds[1]},
    }


@pytest.fixture
def runs():
    plain = _run(
        "plain",
        mem=[0.0, 0.1, 0.8, 0.9, np.nan, np.nan],
        accuracy=[0.9, 0.9, 0.1, 0.1, 0.95, 0.85],
        summary=_summary(0.20, 0.82, (3.1, 2.0)),
        params={"models": 16},
    )
    dp = _run(
        "dp",
        mem=[0.0, 0.0, 0.1, 0.3, np.nan, np.nan],
        accuracy=[0.8, 0.8, 0.2, 0.2, 0.75, 0.65],
        summary=_summary(0.002, 0.51, (0.4, 0.7)),
        params={"models": 16, "dp_epsilon": 8.0, "dp_delta": 1e-5},
        dp={"epsilon": 8.0, "delta": 1e-5, "clip": 1.0, "noise_multiplier": 1.1},
    )
    return {"noise": plain, "dp": dp}


def test_a_dp_run_takes_the_dp_role_alone(runs):
    assert roles([runs["dp"], runs["noise"]]) == {"dp": runs["dp"], "noise": runs["noise"]}


def test_dp_bounds_membership_reads_both_estimates(runs):
    check = REGISTRY["dp_bounds_membership"]
    f = check(runs)
    assert f.verdict == HOLDS
    assert f.values["epsilon_lower_max"] == 0.7  # offline's 0.7 beats online's 0.4
    assert f.values["epsilon_accountant"] == 8.0
    assert (f.values["tpr_plain"], f.values["tpr_dp"]) == (0.20, 0.002)
    assert "0.70 (offline LiRA) against the accountant's 8.00" in f.statistic


def test_dp_bounds_membership_fails_when_an_attack_proves_more(runs):
    check = REGISTRY["dp_bounds_membership"]
    runs["dp"]._entry["membership"]["online"]["epsilon_lower"] = 9.5
    assert check(runs).verdict == FAILS


def test_dp_bounds_membership_fails_when_lira_still_finds_members(runs):
    check = REGISTRY["dp_bounds_membership"]
    runs["dp"]._entry["membership"]["online"]["tpr_at_0.1%"] = 0.004  # 4x the FPR
    assert check(runs).verdict == FAILS


def test_dp_bounds_membership_skips_an_attack_that_measured_nothing(runs):
    """epsilon_lower None (no pair attacked) is no bound: offline's 0.7 is skipped, online's
    0.4 is the largest; with every attack None there is nothing to compare."""
    check = REGISTRY["dp_bounds_membership"]
    runs["dp"]._entry["membership"]["offline"]["epsilon_lower"] = None
    f = check(runs)
    assert f.verdict == HOLDS and f.values["epsilon_lower_max"] == 0.4
    assert "epsilon_lower_offline" not in f.values
    runs["dp"]._entry["membership"]["online"]["epsilon_lower"] = None
    assert check(runs).verdict == MISSING


def test_dp_bounds_membership_without_an_accountant_epsilon_says_so(runs):
    check = REGISTRY["dp_bounds_membership"]
    del runs["dp"]._entry["params"]["dp_epsilon"]
    f = check(runs)
    assert f.verdict == MISSING and "accountant epsilon" in f.why


def test_dp_reduces_memorization_compares_the_flipped_medians(runs):
    check = REGISTRY["dp_reduces_memorization"]
    f = check(runs)
    # flipped: examples 2 and 3; medians (0.8 + 0.9) / 2 and (0.1 + 0.3) / 2
    assert f.values["flipped_median_plain"] == pytest.approx(0.85)
    assert f.values["flipped_median_dp"] == pytest.approx(0.2)
    # the test examples' held-out accuracy: (0.95 + 0.85) / 2 and (0.75 + 0.65) / 2
    assert f.values["test_accuracy_plain"] == pytest.approx(0.9)
    assert f.values["test_accuracy_dp"] == pytest.approx(0.7)
    assert f.verdict == HOLDS  # 0.2 <= 0.85 / 2
    assert "0.85 without DP, 0.20 with it (epsilon 8.00)" in f.statistic


def test_dp_reduces_memorization_fails_when_dp_memorizes_as_much(runs):
    check = REGISTRY["dp_reduces_memorization"]
    runs["dp"]._heldout.loc[[2, 3], "mem_score"] = [0.5, 0.6]  # median 0.55 > 0.425
    assert check(runs).verdict == FAILS
