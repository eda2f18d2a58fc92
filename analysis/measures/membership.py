"""Per-example membership inference: the likelihood-ratio attack (LiRA) on the models of an
estimate, beside the memorization score of the same models.

References
----------
Carlini, Chien, Nasr, Song, Terzis and Tramer 2022, "Membership Inference Attacks From
First Principles". For a model f and an example (x, y), the attacker's statistic is the
logit-scaled confidence of the label,

    phi = log(p_y / (1 - p_y)) = z_y - logsumexp_{j != y} z_j,

computed here from the logits z exactly (no log(0), no clipping). Over shadow models that
trained on the example ("in") and did not ("out"), phi is close to Gaussian. For a target
model and an example:

- online LiRA: log N(phi; mu_in, s_in^2) - log N(phi; mu_out, s_out^2);
- offline LiRA: the one-sided test against the out Gaussian alone, Lambda = Pr[Z <= phi],
  Z ~ N(mu_out, s_out^2); stored as -log Pr[Z > phi], the same ranking (hence the same ROC)
  without Lambda's saturation at 1 for members;
- the global-threshold baseline: phi itself.

Higher = judged more likely a member, for all three. Each model of the estimate is the
target in turn, the others are its shadow models (leave one model out); membership truth
is the stored subsets. With few in- or out-models for an example the per-example variance
is unreliable, so the paper's fixed (global) variance is used instead: here the pooled
within-example variance (the original code's ``np.std`` over every value also counts the
spread between examples' means; that is not copied).

Two more departures from the released code (tensorflow/privacy,
``research/mi_lira_2021/plot.py``), both following the paper's definitions:

- each Gaussian, in and out, is centred on the mean of its shadow models' phi (the
  maximum-likelihood fit); the released code takes their median (``np.median``);
- offline LiRA is the paper's one-sided test above: a phi far *below* the out mean
  scores as a non-member. The released code scores the out density,
  ``-log N(phi; mu_out, s_out^2)``, which calls both tails members.

On the sample estimate (``sample_runs/digits_mlp_noise20``, 256 models, leave one model
out) offline LiRA has AUC 0.752 here and 0.618 with the released code's median and both
tails; the tails make the difference (0.758 with the median and one tail, 0.615 with the
mean and both tails).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from memdash.analysis.measures.dp_audit import split_epsilon
from memdash.analysis.measures.rmia import rmia_attack_scores
from memdash.analysis.measures.roc import auc as auc  # re-exported: callers import it here
from memdash.analysis.measures.roc import log_grid, roc, roc_area, threshold_at, tpr_at

if TYPE_CHECKING:  # torch and scipy are imported where they are used: the pages importing
    import torch  # this module (Privacy) start without them

ATTACKS = ("online", "offline", "global")  # LiRA's, `membership_tables`' default
RMIA_ATTACKS = ("rmia", "rmia_offline")  # Zarifzadeh et al.'s (`measures.rmia`)
ALL_ATTACKS = ATTACKS + RMIA_ATTACKS
VARIANCES = ("auto", "per_example", "global")
REPORT_FPRS = (0.001, 0.01)  # the low false-positive rates the paper reports TPR at
VAR_FLOOR = 1e-6  # phi is stored as float16: identical values must not divide by zero


def logit_confidence(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """phi = log(p_y / (1 - p_y)) of each example's label, from logits (stable).

    Parameters
    ----------
    logits : (..., N, C) float
    labels : (N,) int64, broadcast over the leading axes

    Returns
    -------
    (..., N) float: z_y - logsumexp of the other logits; higher = more confident.
    """
    import torch

    index = labels.expand(logits.shape[:-1]).unsqueeze(-1)
    z_y = logits.gather(-1, index).squeeze(-1)
    others = logits.scatter(-1, index, float("-inf"))
    return z_y - torch.logsumexp(others, dim=-1)


@dataclass(frozen=True)
class Shadows:
    """Leave-one-model-out Gaussian fits: for target k and example n, the moments of phi
    over the other models that held n (in) and did not (out). Every array is (K, N)."""

    mu_in: np.ndarray
    var_in: np.ndarray
    n_in: np.ndarray
    mu_out: np.ndarray
    var_out: np.ndarray
    n_out: np.ndarray


def shadow_fits(
    phi: np.ndarray, member: np.ndarray, *, variance: str = "auto", min_models: int = 16
) -> Shadows:
    """Gaussian fits of phi over each target's shadow models, for every (target, example).

    Parameters
    ----------
    phi : (K, N) float, each model's confidence on each example
    member : (K, N) bool, whether model k trained on example n
    variance : ``per_example`` (the paper's online attack), ``global`` (its fixed
        variance: the pooled within-example variance of the in-, and of the out-models),
        or ``auto``: per example where at least `min_models` shadow models lie on each
        side, global elsewhere
    """
    if variance not in VARIANCES:
        raise ValueError(f"unknown variance {variance!r}; valid: {', '.join(VARIANCES)}")
    phi = np.asarray(phi, dtype=np.float64)
    member = np.asarray(member, dtype=bool)
    if phi.ndim != 2 or phi.shape != member.shape:
        raise ValueError(f"phi and member must share one (K, N) shape: {phi.shape}, {member.shape}")
    fits = [_side(phi, side) for side in (member, ~member)]
    (mu_in, var_in, n_in), (mu_out, var_out, n_out) = fits
    if variance != "per_example":
        pooled_in, pooled_out = _pooled(var_in, n_in), _pooled(var_out, n_out)
        few = (n_in < min_models) | (n_out < min_models)
        if variance == "global":
            few = np.ones_like(few)
        var_in = np.where(few, pooled_in, var_in)
        var_out = np.where(few, pooled_out, var_out)
    return Shadows(mu_in, var_in, n_in, mu_out, var_out, n_out)


def _side(
    phi: np.ndarray, side: np.ndarray, *, leave_out: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, variance (ddof 0, the Gaussian's maximum likelihood) and count of phi over the
    models on `side` of each example: leaving out the target model itself, (K, N) each, or
    with `leave_out` False over every model (reference models apart from the targets), (N,)
    each."""
    x = np.where(side, phi, 0.0)
    if leave_out:  # the target is on this side: it does not count
        count, total, squares = side.sum(0) - side, x.sum(0) - x, (x * x).sum(0) - x * x
    else:
        count, total, squares = side.sum(0), x.sum(0), (x * x).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        var = np.maximum(squares / count - mean * mean, 0.0)
    return mean, var, count.astype(np.int64)


def _pooled(var: np.ndarray, count: np.ndarray, *, fallback: float = 1.0) -> float:
    """The within-example variance pooled over every (target, example) with two or more
    shadow models on that side (`fallback` where there is none)."""
    usable = count >= 2
    return float(np.average(var[usable], weights=count[usable])) if usable.any() else fallback


def attack_scores(phi: np.ndarray, fits: Shadows, *, min_shadows: int = 2) -> dict[str, np.ndarray]:
    """Every attack's score per (target, example), higher = judged a member: (K, N) each.

    Examples without `min_shadows` shadow models on each side get NaN for the LiRA attacks
    (`measures.attack_budget` fills a missing side's mean itself and passes 0).
    """
    from scipy.special import log_ndtr

    phi = np.asarray(phi, dtype=np.float64)
    v_in = np.maximum(fits.var_in, VAR_FLOOR)
    v_out = np.maximum(fits.var_out, VAR_FLOOR)
    online = -0.5 * (
        (phi - fits.mu_in) ** 2 / v_in - (phi - fits.mu_out) ** 2 / v_out + np.log(v_in / v_out)
    )
    offline = -log_ndtr(-(phi - fits.mu_out) / np.sqrt(v_out))
    unfit = (fits.n_in < min_shadows) | (fits.n_out < min_shadows)
    return {
        "online": np.where(unfit, np.nan, online),
        "offline": np.where(unfit, np.nan, offline),
        "global": phi,
    }


def membership_tables(
    phi: np.ndarray,
    member: np.ndarray,
    *,
    attacks: tuple[str, ...] = ATTACKS,
    log_p: np.ndarray | None = None,
    rmia_a: float | None = None,
    variance: str = "auto",
    min_models: int = 16,
    threshold_fpr: float = 0.01,
    delta: float | None = None,
    confidence: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Leave-one-model-out LiRA (and RMIA) over an estimate's models.

    Parameters
    ----------
    phi : (K, N) float, every model's statistic on every example, higher = more like a
        member: a classifier's confidence phi, or any other (a sequence's log-likelihood)
    member : (K, N) bool, whether each model trained on each example
    attacks : which of `ALL_ATTACKS` to run: LiRA's ``online``, ``offline``, ``global``
        and RMIA's ``rmia`` (online) and ``rmia_offline`` (`measures.rmia`, gamma = 1)
    log_p : (K, N) float, the log-probabilities RMIA compares (default: log sigmoid(phi),
        the log-probability of the label when phi is a classifier's confidence)
    rmia_a : offline RMIA's a for every target (default: chosen by `measures.rmia.choose_a`
        on a reference model, `measures.rmia.offline_a`)
    threshold_fpr : the pooled FPR whose global threshold gives the per-example rates
    delta, confidence : with a delta, each attack's ``epsilon_lower`` too, the epsilon it
        proves at `confidence` with the threshold chosen on the even-indexed targets and
        the bound computed on the odd-indexed ones (`measures.dp_audit.split_epsilon`; None
        when nothing was measured), and ``audit`` in the summary

    Returns
    -------
    per_example : one row per example: ``n_in``, ``n_out`` (models holding it or not) and,
        per attack, the mean score as a member and as a non-member (``{attack}_in``,
        ``{attack}_out``) and the rates at the attack's global threshold
        (``{attack}_tpr``, ``{attack}_fpr``); ``vulnerability`` = ``online_tpr``. NaN where
        the example was never (or always) held.
    curves : ``attack``, ``fpr``, ``tpr``: every attack's pooled ROC on a log grid
    summary : per attack its ``auc``, ``tpr_at_0.1%``, ``tpr_at_1%``, ``pairs`` (``auc``
        None and ``pairs`` 0 with fewer than six models), plus ``threshold_fpr``,
        ``variance`` and ``min_models``; with an RMIA attack also ``rmia_a`` (offline
        RMIA's a for every target but model 0, tuned on model 0; None unless it ran),
        ``rmia_a_target0`` (model 0's, tuned on model 1 without model 0) and ``rmia_gamma``
    """
    unknown = [a for a in attacks if a not in ALL_ATTACKS]
    if unknown or not attacks:
        raise ValueError(f"unknown attacks {unknown}; valid: {', '.join(ALL_ATTACKS)}")
    member = np.asarray(member, dtype=bool)
    scores: dict[str, np.ndarray] = {}
    if any(a in ATTACKS for a in attacks):
        fits = shadow_fits(phi, member, variance=variance, min_models=min_models)
        lira = attack_scores(phi, fits)
        scores = {a: lira[a] for a in attacks if a in lira}
    extra: dict = {}
    if any(a in RMIA_ATTACKS for a in attacks):
        rmia, extra = rmia_attack_scores(phi, member, attacks=attacks, log_p=log_p, a=rmia_a)
        scores |= rmia
    held = member.sum(0)
    eligible = (held >= 3) & (held <= len(member) - 3)  # two shadows each side when a target
    table = {"n_in": held.astype(np.int64), "n_out": (len(member) - held).astype(np.int64)}
    curves, summary = [pd.DataFrame({"fpr": [], "tpr": []})], {}
    for attack, score in scores.items():
        s, t = score[:, eligible], member[:, eligible]
        if not s.size:  # fewer than six models: no example has two shadows on each side
            summary[attack] = {"auc": None, "pairs": 0}
            if delta is not None:
                summary[attack]["epsilon_lower"] = None  # nothing measured, nothing proved
            for part in ("in", "out", "tpr", "fpr"):
                table[f"{attack}_{part}"] = np.full(member.shape[1], np.nan)
            continue
        fpr, tpr, threshold = roc(s, t)
        curves.append(log_grid(fpr, tpr).assign(attack=attack))
        summary[attack] = {
            "auc": roc_area(fpr, tpr),
            **{f"tpr_at_{a:.1%}".replace(".0%", "%"): tpr_at(fpr, tpr, a) for a in REPORT_FPRS},
            "pairs": int(s.size),
        }
        if delta is not None:
            summary[attack]["epsilon_lower"] = split_epsilon(
                s, t, delta=delta, confidence=confidence
            )
        cut = threshold_at(fpr, threshold, threshold_fpr)
        called = score >= cut
        with np.errstate(invalid="ignore", divide="ignore"):
            table[f"{attack}_in"] = _masked_mean(score, member)
            table[f"{attack}_out"] = _masked_mean(score, ~member)
            table[f"{attack}_tpr"] = _masked_mean(called, member)
            table[f"{attack}_fpr"] = _masked_mean(called, ~member)
    per_example = pd.DataFrame(table)
    per_example.loc[~eligible, [c for c in per_example if c not in ("n_in", "n_out")]] = np.nan
    per_example["vulnerability"] = per_example.get("online_tpr", np.nan)
    per_example.insert(0, "example_id", np.arange(member.shape[1], dtype=np.int64))
    summary |= {"threshold_fpr": threshold_fpr, "variance": variance, "min_models": min_models}
    summary |= extra
    if delta is not None:
        summary["audit"] = {"confidence": confidence, "delta": delta, "split": "even/odd targets"}
    roc_table = pd.concat(curves, ignore_index=True).astype({"fpr": float, "tpr": float})
    roc_table = roc_table.reindex(columns=["attack", "fpr", "tpr"]).astype({"attack": str})
    return per_example, roc_table, summary


def memorization_link(mem_score: np.ndarray, vulnerability: np.ndarray) -> dict[str, float]:
    """How membership exposure follows memorization, over the examples that have both.

    Parameters
    ----------
    mem_score : (N,) Feldman & Zhang's held-out score (NaN: not estimated)
    vulnerability : (N,) the share of an example's in-models that online LiRA exposes
        (``membership.parquet``; NaN: never or always trained on)

    Returns
    -------
    ``spearman`` and its ``p_value``; ``top_decile_tpr`` and ``rest_tpr``, the mean
    vulnerability of the examples at or above mem_score's 90th percentile and of the rest;
    ``examples``, how many had both (with fewer than two, the rest are NaN).
    """
    from scipy.stats import spearmanr

    mem_score = np.asarray(mem_score, dtype=np.float64)
    vulnerability = np.asarray(vulnerability, dtype=np.float64)
    both = ~(np.isnan(mem_score) | np.isnan(vulnerability))
    if both.sum() < 2:  # too few models for the attack: nothing to relate
        keys = ("spearman", "p_value", "top_decile_tpr", "rest_tpr")
        return dict.fromkeys(keys, float("nan")) | {"examples": float(both.sum())}
    mem_score, vulnerability = mem_score[both], vulnerability[both]
    rho, p = spearmanr(mem_score, vulnerability)
    top = mem_score >= np.quantile(mem_score, 0.9)
    return {
        "spearman": float(rho),
        "p_value": float(p),
        "top_decile_tpr": float(vulnerability[top].mean()),
        "rest_tpr": float(vulnerability[~top].mean()),
        "examples": float(both.sum()),
    }


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Column means of `values` over the rows where `mask` holds: (N,), NaN where none."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(mask, values, 0.0).sum(0) / mask.sum(0)
