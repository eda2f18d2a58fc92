"""The proxies' findings (findings/proxies.py) and the width family (findings/selection.py)."""

import shutil
from dataclasses import replace

import numpy as np
import pytest
from conftest import tiny_config
from scipy.stats import spearmanr

from memdash.analysis.ensemble.estimate import EstimateSpec, estimate
from memdash.analysis.findings import (
    HOLDS,
    MISSING,
    proxies_across_widths,
    proxies_rank_memorization,
    study_roles,
)
from memdash.analysis.findings.selection import width_family
from memdash.analysis.record.training import train
from memdash.analysis.steps.pipeline import analyze
from memdash.analysis.store import Run
from memdash.analysis.tables.proxies import proxy_values


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    """The tiny run's training at hidden 4-2, 16-8 (the tiny run's) and 64-32, analysed,
    each with a 6-model estimate; and one at another seed (not of the family)."""
    root = tmp_path_factory.mktemp("widths")
    base = tiny_config()
    for name, hidden in (("h4", (4, 2)), ("h16", (16, 8)), ("h64", (64, 32))):
        train(replace(base, model=replace(base.model, hidden=hidden)), root / name)
    train(replace(base, seed=4), root / "other_seed")
    for name in ("h4", "h16", "h64"):
        analyze(root / name, only=["scores"])
        estimate(root / name, EstimateSpec(models=6, models_per_batch=3, seed=3), workers=1)
    return root


def _runs(root, *names):
    return [Run.open(root / n) for n in names]


def test_width_family_is_the_runs_alike_but_for_hidden_narrowest_first(family):
    runs = _runs(family, "h64", "other_seed", "h16", "h4")
    assert [r.name for r in width_family(runs)] == ["h4", "h16", "h64"]
    assert [r.name for r in study_roles(runs)["widths"]] == ["h4", "h16", "h64"]
    assert width_family(_runs(family, "h16", "other_seed")) == []


def _oriented_spearman(run, name):
    table, _ = proxy_values(run)
    x = -table[name] if name in ("confidence", "aum") else table[name]
    has = table["mem_score"].notna()
    return spearmanr(x[has], table.loc[has, "mem_score"]).statistic


def test_rank_finding_names_the_best_proxy_and_every_value(family):
    run = Run.open(family / "h16")
    finding = proxies_rank_memorization({"noise": run})
    assert finding.values["spearman_confidence"] == pytest.approx(
        _oriented_spearman(run, "confidence")
    )
    assert finding.values["spearman_forgetting_events"] == pytest.approx(
        _oriented_spearman(run, "forgetting_events")
    )
    best = max(v for k, v in finding.values.items() if k.startswith("spearman_"))
    assert finding.values["best_spearman"] == best
    assert (finding.verdict == HOLDS) == (best >= 0.8)
    assert "best proxy" in finding.statistic


def test_across_widths_compares_changes_from_narrowest_to_widest(family):
    runs = _runs(family, "h4", "h16", "h64")
    finding = proxies_across_widths({"widths": runs})
    narrow, _ = proxy_values(runs[0])
    wide, _ = proxy_values(runs[-1])
    change = wide["mem_score"] - narrow["mem_score"]
    proxy_change = -(wide["confidence"] - narrow["confidence"])  # confidence: flagged low
    both = change.notna() & proxy_change.notna()
    expected = spearmanr(proxy_change[both], change[both]).statistic
    assert finding.values["across_confidence"] == pytest.approx(expected)
    within = np.mean([_oriented_spearman(r, "confidence") for r in runs])
    assert finding.values["within_confidence"] == pytest.approx(within)
    assert finding.values["share_falling"] == pytest.approx(float((change[both] < 0).mean()))
    assert (finding.verdict == HOLDS) == (
        finding.values["best_across"] < finding.values["best_within"]
    )
    assert "(4, 2) -> (16, 8) -> (64, 32)" in finding.statistic


def test_across_widths_says_which_run_lacks_an_estimate(family, tmp_path):
    shutil.copytree(family / "h4", tmp_path / "h4")
    shutil.rmtree(tmp_path / "h4" / "heldout")
    (tmp_path / "h4" / "derived" / "manifest.json").unlink()
    runs = [Run.open(tmp_path / "h4"), *_runs(family, "h16")]
    finding = proxies_across_widths({"widths": runs})
    assert finding.verdict == MISSING and "memdash estimate --like` on h4" in finding.why


def test_the_findings_page_names_a_width_familys_runs():
    from memdash.dashboard.app_pages.findings import figure_caption

    caption = figure_caption("proxies_across_widths", {"widths": ("/r/h4", "/r/h16", "/r/h64")})
    assert caption == (
        "Figure from runs **h4**, **h16**, **h64** (the same training at other hidden widths)."
    )
