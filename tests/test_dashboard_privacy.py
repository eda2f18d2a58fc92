"""AppTests of the Privacy page's audit (issue #25): the attacks' table with RMIA and the
empirical epsilon, the DP accountant against the bounds, attack power against the number of
reference models (with its metric control), LiRA's Gaussian assumption, and the example
detail's fitted Gaussians; on a tiny estimate whose audit tables are written by hand."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from memdash.analysis.store import Run
from memdash.analysis.store.derived import replace_derived

# each attack's summary: AUC, TPR at 0.1% and 1% FPR, empirical epsilon
SUMMARY = {
    "online": (0.8, 0.1, 0.3, 2.5),
    "offline": (0.7, 0.05, 0.2, 1.2),
    "global": (0.6, 0.001, 0.01, 0.0),
    "rmia": (0.82, 0.12, 0.35, 1.8),
    "rmia_offline": (0.75, 0.08, 0.25, 1.5),
}
# TPR at 0.1% FPR of each attack at 1, 2 and 4 reference models, two draws each
BUDGET = {
    "online": ([0.0, 0.0], [0.01, 0.03], [0.10, 0.12]),
    "offline": ([0.01, 0.01], [0.02, 0.02], [0.05, 0.07]),
    "rmia": ([0.04, 0.06], [0.06, 0.08], [0.08, 0.10]),
    "rmia_offline": ([0.02, 0.04], [0.05, 0.05], [0.06, 0.06]),
}
IN_P, OUT_P = [0.5, 0.01, 1e-20, np.nan], [0.9, 0.8, 0.04, 0.2]


def _budget() -> pd.DataFrame:
    rows = [
        {"attack": a, "models": m, "draw": d, "tpr_at_0.1%": v, "tpr_at_1%": 2 * v}
        | {"auc": 0.5 + v, "pairs": 100}
        for a, points in BUDGET.items()
        for m, draws in zip((1, 2, 4), points, strict=True)
        for d, v in enumerate(draws)
    ]
    return pd.DataFrame(rows)


def write_audit(path: Path, *, dp_epsilon: float | None) -> None:
    """The estimate's heldout step again, with the audit's files and manifest keys by hand."""
    run = Run.open(path)
    entry = run.derived_manifest()["heldout"]
    tables = {name: run.read_derived(name) for name in entry["files"]}
    members = tables["membership.parquet"]
    n = len(members)
    members["shapiro_in_p"] = np.resize(IN_P, n)
    members["shapiro_out_p"] = np.resize(OUT_P, n)
    roc = tables["membership_roc.parquet"]
    rmia = roc[roc["attack"] == "online"].assign(attack="rmia")
    tables["membership_roc.parquet"] = pd.concat([roc, rmia], ignore_index=True)
    tables["membership_budget.parquet"] = _budget()
    membership = {k: v for k, v in entry["membership"].items() if k not in SUMMARY}
    for attack, (auc, low, one, eps) in SUMMARY.items():
        membership[attack] = {"auc": auc, "tpr_at_0.1%": low, "tpr_at_1%": one}
        membership[attack] |= {"pairs": 1000, "epsilon_lower": eps}
    membership |= {
        "rmia_a": 0.3,
        "rmia_gamma": 1.0,
        "audit": {"confidence": 0.95, "delta": 1e-5},
        "gaussian": {"alpha": 0.05, "examples": n},
        "budget": {"draws": 2, "targets": 2, "seed": 0},
    }
    params = entry["params"] | ({"dp_epsilon": dp_epsilon, "dp_delta": 1e-5} if dp_epsilon else {})
    kept = {k: v for k, v in entry.items() if k not in ("files", "hashes", "membership", "params")}
    replace_derived(path, "heldout", tables, kept | {"membership": membership, "params": params})


def write_legacy(path: Path) -> None:
    """The estimate's heldout step as memdash wrote it before the audit: the three LiRA
    attacks, no RMIA, epsilon, budget or Gaussian check."""
    run = Run.open(path)
    entry = run.derived_manifest()["heldout"]
    old = ("membership.parquet", "membership_roc.parquet", "heldout.parquet", "influence.parquet")
    tables = {name: run.read_derived(name) for name in entry["files"] if name in old}
    lira = ("online", "offline", "global")
    roc = tables["membership_roc.parquet"]
    tables["membership_roc.parquet"] = roc[roc["attack"].isin(lira)]
    members = tables["membership.parquet"]
    tables["membership.parquet"] = members[
        [c for c in members.columns if not c.startswith(("rmia", "shapiro", "gaussian"))]
    ]
    membership = {
        k: {m: v[m] for m in ("auc", "tpr_at_0.1%", "tpr_at_1%", "pairs")} if k in lira else v
        for k, v in entry["membership"].items()
        if k in (*lira, "threshold_fpr", "variance", "min_models")
    }
    kept = {k: v for k, v in entry.items() if k not in ("files", "hashes", "membership")}
    replace_derived(path, "heldout", tables, kept | {"membership": membership})


@pytest.fixture(scope="module")
def estimated(tiny_run, tmp_path_factory):
    """The tiny run with an 8-model estimate (the attacks need six or more)."""
    from memdash.analysis.ensemble.estimate import EstimateSpec, estimate

    path = tmp_path_factory.mktemp("privacy") / "tiny"
    shutil.copytree(tiny_run, path)
    estimate(path, EstimateSpec(models=8, models_per_batch=8), workers=1)
    return path


@pytest.fixture
def audited(estimated, tmp_path, monkeypatch):
    path = tmp_path / "tiny"
    shutil.copytree(estimated, path)
    monkeypatch.setenv("MEMDASH_ROOTS", str(tmp_path))
    return path


def _page(name):
    import importlib

    importlib.import_module(f"memdash.dashboard.app_pages.{name}").render()


def privacy_page() -> AppTest:
    return AppTest.from_function(_page, args=("privacy",), default_timeout=60)


def _charts(at: AppTest) -> dict[str, str]:
    """The page's charts by key, as their plotly specs."""
    return {c.proto.id.rsplit("-", 1)[-1]: c.proto.spec for c in at.get("plotly_chart")}


def test_the_audit_shows_every_attack_the_budget_and_the_gaussian_check(audited):
    write_audit(audited, dp_epsilon=None)
    at = privacy_page().run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("attack")
    assert list(table.index) == [
        *("online LiRA", "offline LiRA", "global threshold", "online RMIA", "offline RMIA")
    ]
    assert table.loc["online RMIA", "AUC"] == 0.82
    assert table.loc["offline RMIA", "empirical ε (lower bound)"] == 1.5
    captions = " ".join(c.value for c in at.caption)
    assert "95% Clopper-Pearson bounds, δ = 1e-05" in captions
    assert "higher = more privacy loss proved" in captions
    assert "Offline RMIA's a = 0.30" in captions
    specs = at.get("plotly_chart")
    assert len(specs) == 4  # ROC, budget, Gaussian check, vulnerability against mem_score
    roc, budget, gauss = (s.proto.spec for s in specs[:3])
    assert '"online RMIA"' in roc
    assert '"type":"log"' in budget.replace(" ", "") and '"TPR at 0.1% FPR"' in budget
    words = " ".join(m.value for m in at.markdown)
    # means over the two draws: RMIA 5% against offline RMIA's 3% at one model, online LiRA
    # 11% against RMIA's 9% at four
    assert "With 1 reference model, **online RMIA** leads (5.0%; next offline RMIA, 3.0%)" in words
    assert "With 4 reference models, **online LiRA** leads (11.0%; next online RMIA, 9.0%)" in words
    # over the examples with both p-values (3 in 4): two of three IN p below 0.05, one OUT
    assert "for **67%** of" in words and "and **33%**" in words
    assert '"models trained on it"' in gauss
    assert not any("made before memdash computed" in i.value for i in at.info)
    assert not any("accountant" in s.value for s in at.subheader)  # not a DP estimate


def test_switching_the_budget_metric_redraws_the_chart_and_its_sentence(audited):
    write_audit(audited, dp_epsilon=None)
    at = privacy_page().run()
    at.radio(key="privacy_budget_metric").set_value("auc").run()
    assert not at.exception
    budget = at.get("plotly_chart")[1].proto.spec
    assert '"AUC against the number of reference models' in budget
    words = " ".join(m.value for m in at.markdown)
    assert "With 1 reference model, **online RMIA** leads (0.550" in words
    assert any("higher = a stronger attack" in c.value for c in at.caption)


def test_a_dp_estimate_sets_the_accountant_beside_the_bounds_and_flags_one_above(audited):
    write_audit(audited, dp_epsilon=2.0)
    at = privacy_page().run()
    assert not at.exception
    assert any("accountant" in s.value for s in at.subheader)
    dp = at.get("plotly_chart")[1].proto.spec
    assert "(DP accountant): 2.00" in dp.encode().decode("unicode_escape")
    # online LiRA's bound, 2.5, passes the accountant's 2.0: flagged by name
    assert len(at.error) == 1 and "online LiRA (ε ≥ 2.50)" in at.error[0].value
    assert "offline RMIA" not in at.error[0].value
    write_audit(audited, dp_epsilon=4.0)
    at = privacy_page().run()
    assert not at.error
    assert any("stays below the accountant's ε = 4.00" in s.value for s in at.success)


def test_the_detail_draws_an_examples_confidences_with_the_fitted_gaussians(audited):
    write_audit(audited, dp_epsilon=None)
    at = privacy_page()
    at.session_state["example"] = 1  # p 0.01 on the IN side, 0.8 on the OUT side
    at.run()
    assert not at.exception
    detail = at.get("plotly_chart")[-1].proto.spec
    assert '"Gaussian fit: mean' in detail and '"models trained on it"' in detail
    caption = next(c.value for c in at.caption if "Confidence phi of the label" in c.value)
    assert "Shapiro-Wilk p = 0.01 (Gaussian rejected at alpha 0.05)" in caption
    assert "Shapiro-Wilk p = 0.8 (Gaussian not rejected at alpha 0.05)" in caption


def test_an_estimate_without_the_audit_says_which_command_adds_it(audited):
    write_legacy(audited)
    at = privacy_page().run()
    assert not at.exception
    told = next(i.value for i in at.info if "made before memdash computed" in i.value)
    assert "RMIA" in told and "attack power against the number of reference models" in told
    assert any("memdash estimate --like" in c.value for c in at.code)
    assert len(at.dataframe[0].value) == 3  # the three LiRA attacks it has


def test_the_findings_figures_draw_the_budget_and_the_bounds(audited):
    from memdash.dashboard.app_pages.findings import FIGURES

    write_audit(audited, dp_epsilon=2.0)
    budget = FIGURES["rmia_with_few_models"]({"noise": audited}, None)
    assert budget.layout.xaxis.type == "log" and budget.layout.yaxis.title.text == "TPR at 1% FPR"
    means = {t.name: list(t.y) for t in budget.data if t.showlegend is not False}
    assert means["online RMIA"] == pytest.approx([0.1, 0.14, 0.18])  # 2 x the TPR at 0.1%
    bounds = FIGURES["dp_bounds_membership"]({"dp": audited}, None)
    assert list(bounds.data[0].x) == [2.5, 1.2, 0.0, 1.8, 1.5]
    assert bounds.layout.shapes[0].x0 == 2.0  # the accountant's epsilon
