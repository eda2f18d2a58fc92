"""AppTests of the Privacy page's audit (issue #25): the attacks' table with RMIA and the
empirical epsilon, the DP accountant against the bounds, attack power against the number of
reference models (with its metric control), LiRA's Gaussian assumption, and the example
detail's fitted Gaussians; on a tiny estimate whose audit tables are written by hand."""

import json
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
METRICS = ("auc", "tpr_at_0.1%", "tpr_at_1%")


def _budget() -> pd.DataFrame:
    rows = [
        {"attack": a, "models": m, "draw": d, "tpr_at_0.1%": v, "tpr_at_1%": 2 * v}
        | {"auc": 0.5 + v, "pairs": 100}
        for a, points in BUDGET.items()
        for m, draws in zip((1, 2, 4), points, strict=True)
        for d, v in enumerate(draws)
    ]
    return pd.DataFrame(rows)


def write_audit(
    path: Path,
    *,
    dp_epsilon: float | None,
    epsilon: dict | None = None,
    budget: pd.DataFrame | None = None,
) -> None:
    """The estimate's heldout step again, with the audit's files and manifest keys by hand
    (`epsilon`: attacks whose epsilon_lower replaces SUMMARY's; `budget`: the sweep's table
    instead of `_budget()`)."""
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
    tables["membership_budget.parquet"] = _budget() if budget is None else budget
    membership = {k: v for k, v in entry["membership"].items() if k not in SUMMARY}
    for attack, (auc, low, one, eps) in SUMMARY.items():
        membership[attack] = {"auc": auc, "tpr_at_0.1%": low, "tpr_at_1%": one}
        membership[attack] |= {"pairs": 1000, "epsilon_lower": (epsilon or {}).get(attack, eps)}
    membership |= {
        "rmia_a": 0.3,
        "rmia_gamma": 1.0,
        "audit": {"confidence": 0.95, "delta": 1e-5, "split": "even/odd targets"},
        # the shares as the estimate stored them; recounting the p-values above would give
        # 2/3 and 1/3: the page must show the stored numbers
        "gaussian": {"alpha": 0.05, "examples": 30}
        | {"share_rejected_in": 0.6, "share_rejected_out": 0.25},
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
    # TPRs drawn in percent, two decimals each (12.00%, not 12%)
    assert table.loc["online RMIA", "TPR at 0.1% FPR"] == pytest.approx(12.0)
    column = at.dataframe[0].proto.columns
    assert '"%.2f%%"' in column.replace(" ", "")
    assert table.loc["offline RMIA", "empirical ε (lower bound)"] == 1.5
    captions = " ".join(c.value for c in at.caption)
    # both tests, the split of the targets and why the confidence is approximate
    assert "log((TPR_lo - δ) / FPR_hi)" in captions
    assert "log((1 - FPR_hi - δ) / (1 - TPR_lo)), δ = 1e-05" in captions
    assert "Clopper-Pearson bounds, together at 95%" in captions
    assert "largest on the even-numbered target models' pairs" in captions
    assert "at that one threshold on the odd-numbered target models' pairs" in captions
    assert "share models and examples: the confidence is approximate" in captions
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
    # the shares the manifest's gaussian entry stores, over the examples it counts
    assert "Over the 30 examples" in words
    assert "for **60%** of" in words and "and **25%**" in words
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
    # the possibilities named: an accounting or training error, or the pairs' dependence
    assert "Either the accounting or the training is wrong" in at.error[0].value
    assert "share models and examples, so its 95% confidence is approximate" in at.error[0].value
    # the accountant's label ends at its line, inside the plot (centred, it ran off the edge)
    assert '"xanchor":"right"' in dp.replace(" ", "")
    write_audit(audited, dp_epsilon=4.0)
    at = privacy_page().run()
    assert not at.error
    assert any("stays below the accountant's ε = 4.00" in s.value for s in at.success)
    assert not any("the run itself" in m.value for m in at.markdown)  # the run is not DP
    # the run's own ε (all its training set) beside its models' when it reads differently
    meta = json.loads((audited / "run.json").read_text())
    (audited / "run.json").write_text(json.dumps(meta | {"dp_epsilon": 4.2, "dp_delta": 1e-5}))
    at = privacy_page().run()
    assert any("reports (the run itself: ε = 4.20)" in m.value for m in at.markdown)


def test_the_budget_sentence_tells_apart_tprs_below_one_percent():
    from memdash.dashboard.app_pages.privacy_audit import _value

    assert _value("tpr_at_0.1%", 0.0013) == "0.13%" and _value("tpr_at_0.1%", 0.0012) == "0.12%"
    assert _value("tpr_at_1%", 0.05) == "5.0%" and _value("auc", 0.5504) == "0.550"


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
    # what is drawn: every model's phi on a side, not LiRA's leave-one-out fit
    assert "Dashed: Gaussians fitted to every model's phi on each side (mean, standard" in caption
    assert "the Gaussians online LiRA fits" not in caption


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


def test_a_dp_run_with_a_plain_estimate_is_told_to_overwrite_it(audited):
    write_audit(audited, dp_epsilon=None)
    meta = json.loads((audited / "run.json").read_text())
    (audited / "run.json").write_text(json.dumps(meta | {"dp_epsilon": 3.0}))
    at = privacy_page().run()
    assert not at.exception
    told = next(i.value for i in at.info if "trained with DP-SGD" in i.value)
    assert "ε (DP accountant) = 3.00" in told or "= 3.00" in told
    # the run's DP is inherited, and a plain estimate there is refused without --overwrite
    assert any(c.value.endswith(" --overwrite") for c in at.code)


def test_an_attack_without_pairs_has_no_epsilon_and_is_skipped(audited):
    from memdash.dashboard.app_pages.findings import FIGURES

    write_audit(audited, dp_epsilon=2.0, epsilon={"online": None, "global": None})
    at = privacy_page().run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("attack")
    assert np.isnan(table.loc["online LiRA", "empirical ε (lower bound)"])  # blank, not 0
    assert table.loc["offline RMIA", "empirical ε (lower bound)"] == 1.5
    dp = at.get("plotly_chart")[1].proto.spec
    assert '"online LiRA"' not in dp and '"offline RMIA"' in dp
    assert not at.error  # the remaining bounds all stay below 2.0
    bounds = FIGURES["dp_bounds_membership"]({"dp": audited}, None)
    assert list(bounds.data[0].x) == [1.2, 1.8, 1.5]
    write_audit(audited, dp_epsilon=2.0, epsilon=dict.fromkeys(SUMMARY))
    at = privacy_page().run()
    assert not at.exception
    assert any("No attack had (target model, example) pairs" in i.value for i in at.info)


def test_a_budget_without_any_attacked_draw_says_so(audited):
    # fewer than six models: every row of the sweep has NaN metrics (or there is none)
    write_audit(audited, dp_epsilon=None, budget=_budget().assign(**dict.fromkeys(METRICS)))
    at = privacy_page().run()
    assert not at.exception
    assert any("No draw of reference models could be attacked" in i.value for i in at.info)
    assert not at.radio  # no metric to choose
    write_audit(audited, dp_epsilon=None, budget=_budget().iloc[:0])
    at = privacy_page().run()
    assert not at.exception
    assert any("No draw of reference models could be attacked" in i.value for i in at.info)


@pytest.fixture(scope="module")
def few_models(tiny_run, tmp_path_factory):
    """The tiny run with a 4-model estimate: too few for the attacks."""
    from memdash.analysis.ensemble.estimate import EstimateSpec, estimate

    path = tmp_path_factory.mktemp("few") / "tiny"
    shutil.copytree(tiny_run, path)
    estimate(path, EstimateSpec(models=4, models_per_batch=4), workers=1)
    return path


def test_the_page_of_an_estimate_with_too_few_models_warns_without_crashing(
    few_models, monkeypatch
):
    monkeypatch.setenv("MEMDASH_ROOTS", str(few_models.parent))
    at = privacy_page().run()
    assert not at.exception
    assert any("too few models (six or more are needed)" in w.value for w in at.warning)
    # the sweep attacked no draw and Shapiro-Wilk tested no example: each says so
    assert any("No draw of reference models could be attacked" in i.value for i in at.info)
    assert any("too few models to check LiRA's Gaussian" in i.value for i in at.info)


def test_an_epsilon_chosen_and_bounded_on_the_same_pairs_is_called_overstated():
    from memdash.dashboard.app_pages.privacy_audit import epsilon_words

    old = epsilon_words({"confidence": 0.95, "delta": 1e-5})
    assert "chose the threshold on the same pairs it bounds" in old
    assert "overstates the confidence" in old and "even-numbered" not in old
    split = epsilon_words({"confidence": 0.9, "delta": 1e-3, "split": "even/odd targets"})
    assert "together at 90%" in split and "δ = 0.001" in split
    assert "overstates" not in split


def test_offline_rmias_a_names_the_model_it_was_chosen_on_for_each_target():
    from memdash.dashboard.app_pages.privacy_audit import rmia_words

    both = rmia_words({"rmia_a": 0.05, "rmia_a_target0": 0.25, "rmia_gamma": 1.0})
    assert both.startswith("Offline RMIA's a = 0.05, the a that attacks model 0 best")
    assert "model 0's own is a = 0.25, chosen on model 1 without model 0" in both
    assert both.endswith("; γ = 1.")
    older = rmia_words({"rmia_a": 0.3})  # an estimate that tuned one a for every target
    assert "model 0's own" not in older and "with the others as references; γ = 1." in older
