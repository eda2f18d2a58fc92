"""The privacy audit of an estimate's models, in one call: every attack (LiRA online, offline
and the global threshold; RMIA online and offline) with its ROC and empirical epsilon, LiRA's
Gaussian assumption checked per example, and attack power against the number of reference
models. The classifiers' estimate and the language models' estimate both call it, with
phi = log(p / (1 - p)) of the label or a sequence's total log-likelihood.

References
----------
Carlini et al. 2022 (LiRA); Zarifzadeh et al. 2024 (RMIA); Jagielski et al. 2020 and Nasr et
al. 2021 (the empirical epsilon); `memdash.analysis.measures.membership`, `rmia`,
`normality`, `attack_budget` and `dp_audit` for each part.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from memdash.analysis.measures.attack_budget import attack_budget
from memdash.analysis.measures.membership import ALL_ATTACKS, membership_tables
from memdash.analysis.measures.normality import ALPHA, gaussian_check


def privacy_audit(
    phi: np.ndarray,
    member: np.ndarray,
    *,
    delta: float,
    seed: int = 0,
    log_p: np.ndarray | None = None,
    budget: Sequence[int] | None = None,
    min_models: int = 16,
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Every attack of the audit on the models of an estimate, each the target in turn.

    Parameters
    ----------
    phi : (K, N) float, LiRA's statistic of each model on each example (higher = more like a
        member)
    member : (K, N) bool, whether model k trained on example n
    delta : the delta of the empirical epsilon (the models' DP delta, or a small default)
    seed : the seed of the budget's target models and draws
    log_p : (K, N) float, RMIA's log-probabilities (default log sigmoid(phi))
    budget : the numbers of reference models of the attack-power sweep (default 1, 2, 4,
        ... up to every non-target model); ValueError when one exceeds what the estimate has
    min_models : LiRA's per-example variance where this many shadow models lie on each side
        of an example, the pooled variance elsewhere (`membership.shadow_fits`)

    Returns
    -------
    tables : ``membership.parquet`` (per example: every attack's scores and rates, the
        Gaussian check), ``membership_roc.parquet`` (per attack) and
        ``membership_budget.parquet`` (per attack, number of models and draw)
    summary : per attack its AUC, TPR at 0.1% and 1% FPR, pairs and ``epsilon_lower``; the
        ``audit``, ``gaussian`` and ``budget`` entries
    """
    members, curves, summary = membership_tables(
        phi, member, attacks=ALL_ATTACKS, log_p=log_p, delta=delta, min_models=min_models
    )
    normality, summary["gaussian"] = gaussian_check(phi, member, alpha=ALPHA)
    sweep, summary["budget"] = attack_budget(
        phi, member, models=budget, seed=seed, log_p=log_p, min_models=min_models
    )
    tables = {
        "membership.parquet": members.join(normality),
        "membership_roc.parquet": curves,
        "membership_budget.parquet": sweep,
    }
    return tables, summary
