"""The proxies' findings: does a single-run score rank examples as the held-out ensemble does
(Jiang et al. 2021 report learning-speed proxies at Spearman 0.8-0.9 with the C-score), and
does it follow how memorization changes with model width (Lukasik et al. 2023, "What do larger
image classifiers memorise?", report that proxies fail to)?

Both read `tables.proxies.proxy_values`: every single-run score the run has, oriented by the
direction dictionary so that higher = its flagged end, and the held-out memorization score.
"""

from __future__ import annotations

import numpy as np

from memdash.analysis.findings.needs import GroupStep, Step
from memdash.analysis.findings.registry import Check, Measured, Missing, register
from memdash.analysis.findings.scores import HELDOUT
from memdash.analysis.measures.proxy_scoreboard import orient
from memdash.analysis.store import Run
from memdash.analysis.tables.proxies import proxy_values

RANKS_LIKE = 0.8  # Jiang et al.: learning-speed proxies at Spearman 0.8-0.9 with the C-score
SCORES = Step("noise", "scores", "memdash analyze")
FAMILY_HELDOUT = GroupStep("widths", "heldout", "memdash estimate --like")
_FIXED = ("example_id", "is_noisy", "is_canary", "mem_score")


def _words(proxy: str) -> str:
    """A proxy's name in words for a statistic ("mean_loss_train" -> "mean loss
    (minibatches)", "knn_disagreement@fc1" -> "k-NN disagreement at fc1")."""
    base, _, layer = proxy.partition("@")
    name = base.removesuffix("_train").replace("_", " ").replace("knn ", "k-NN ")
    return name + (f" at {layer}" if layer else "") + (" (minibatches)" * base.endswith("_train"))


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho over the pairs both have (NaN with fewer than 3 or a constant side)."""
    both = np.isfinite(x) & np.isfinite(y)
    if both.sum() < 3 or np.ptp(x[both]) == 0 or np.ptp(y[both]) == 0:
        return float("nan")
    from scipy.stats import spearmanr  # scipy.stats takes a second to import: only here

    return float(spearmanr(x[both], y[both]).statistic)


def _oriented(run: Run) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The run's proxies oriented (higher = flagged end), its memorization score and the
    trained examples' ids."""
    table, _ = proxy_values(run)
    proxies = {
        c: orient(c.split("@")[0], table[c].to_numpy(np.float64))
        for c in table.columns
        if c not in _FIXED
    }
    return proxies, table["mem_score"].to_numpy(np.float64), table["example_id"].to_numpy()


def _rank(runs: dict[str, Run], source: str) -> Measured:
    """Each proxy's Spearman with the held-out memorization score on the noise run."""
    proxies, mem, _ = _oriented(runs["noise"])
    if not np.isfinite(mem).any():
        raise Missing("the noise run's estimate gives no memorization score")
    values = {f"spearman_{name}": _spearman(x, mem) for name, x in proxies.items()}
    values = {k: v for k, v in values.items() if np.isfinite(v)}
    if not values:
        raise Missing("no proxy of the noise run varies with its memorization score")
    best = max(values, key=values.get)
    ranked = sorted(values.items(), key=lambda kv: -kv[1])
    shown = {"best": best.removeprefix("spearman_"), "ranked": ranked}
    return Measured(values | {"best_spearman": values[best]}, shown)


def _rank_words(m: Measured) -> str:
    others = ", ".join(f"{_words(k.removeprefix('spearman_'))} {v:.2f}" for k, v in m["ranked"][1:])
    return (
        f"best proxy {_words(m['best'])}: Spearman {m['best_spearman']:.3f} with the held-out "
        f"memorization score (claim: at least {RANKS_LIKE}); the others: {others}"
    )


proxies_rank_memorization = register(
    Check(
        key="proxies_rank_memorization",
        title="A single-run proxy ranks examples as the held-out memorization score does",
        reference="Jiang et al. 2021; Toneva et al. 2019; Feldman & Zhang 2020",
        roles=("noise",),
        needs=(SCORES, HELDOUT),
        measure=_rank,
        statistic=_rank_words,
        holds=lambda m: m["best_spearman"] >= RANKS_LIKE,
    )
)


def _across(runs: dict[str, object], source: str) -> Measured:
    """For each proxy the family's runs share: the Spearman between its per-example change
    from the narrowest to the widest run and the memorization score's change, beside its
    Spearman with the score within each width (their mean)."""
    family: list[Run] = runs["widths"]  # type: ignore[assignment]
    read = [_oriented(run) for run in family]
    ids = read[0][2]
    if any(not np.array_equal(r[2], ids) for r in read):
        raise Missing("the width family's runs do not train the same examples")
    (narrow, mem_narrow, _), (wide, mem_wide, _) = read[0], read[-1]
    change = mem_wide - mem_narrow
    shared = [name for name in narrow if all(name in r[0] for r in read)]
    values: dict[str, float] = {}
    for name in shared:
        across = _spearman(wide[name] - narrow[name], change)
        within = np.nanmean([_spearman(r[0][name], r[1]) for r in read])
        if np.isfinite(across) and np.isfinite(within):
            values[f"across_{name}"], values[f"within_{name}"] = across, float(within)
    if not values:
        raise Missing("no proxy of the width family varies with the memorization score")
    best = max((k for k in values if k.startswith("across_")), key=values.get)
    name = best.removeprefix("across_")
    falls = change[np.isfinite(change)]
    values |= {
        "best_across": values[best],
        "best_within": values[f"within_{name}"],
        "share_falling": float(np.mean(falls < 0)),
        "median_change": float(np.median(falls)),
    }
    widths = [str(tuple(r.config.get("model", {}).get("hidden", ()))) for r in family]
    return Measured(values, {"best": name, "widths": widths, "proxies": shared})


def _across_words(m: Measured) -> str:
    pairs = ", ".join(
        f"{_words(p)} {m['across_' + p]:.2f} ({m['within_' + p]:.2f})"
        for p in m["proxies"]
        if "across_" + p in m.values
    )
    return (
        f"widths {' -> '.join(m['widths'])}: memorization falls for "
        f"{m['share_falling']:.0%} of the trained examples (median change "
        f"{m['median_change']:+.3f}); the proxy that best follows its change, "
        f"{_words(m['best'])}, "
        f"at Spearman {m['best_across']:.2f} against {m['best_within']:.2f} within a width; "
        f"every proxy, across (within): {pairs}"
    )


proxies_across_widths = register(
    Check(
        key="proxies_across_widths",
        title="Proxies fail to track how memorization changes with model width",
        reference="Lukasik et al. 2023",
        roles=("widths",),
        needs=(FAMILY_HELDOUT,),
        measure=_across,
        statistic=_across_words,
        holds=lambda m: m["best_across"] < m["best_within"],
    )
)
