"""The findings on per-example scores of the noisy run: flipped examples are forgotten more
(Toneva et al. 2019), hard to learn on the data map (Swayamdipta et al. 2020), and have high
held-out memorization scores (Feldman & Zhang 2020).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from memdash.analysis.findings.needs import Step
from memdash.analysis.findings.registry import ASKED, Check, register
from memdash.analysis.measures.curves import training_groups
from memdash.analysis.store import Run
from memdash.analysis.store.sources import select_source

SCORES = Step("noise", "scores", "memdash analyze")
HELDOUT = Step("noise", "heldout", "memdash estimate --like")


def train_examples(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the run's clean and flipped training examples (canaries left out)."""
    groups = training_groups(run.examples())
    return groups["clean"], groups["flipped"]


def _noise_scores(runs: dict[str, Run], source: str) -> pd.DataFrame:
    """The noisy run's trace scores (from `source`) of its clean and flipped training examples."""
    run = runs["noise"]
    clean, flipped = train_examples(run)
    keep = clean | flipped
    scores = select_source(run.read_derived("scores.parquet"), source)
    return scores[keep].assign(flipped=flipped[keep])


def _forgetting(runs: dict[str, Run], source: str) -> dict[str, float]:
    s = _noise_scores(runs, source)
    mean_f = s.groupby("flipped")["forgetting_events"].mean()
    return {
        "forgetting_flipped": float(mean_f[True]),
        "forgetting_clean": float(mean_f[False]),
        "clean_unforgettable": float(s[~s["flipped"]]["unforgettable"].mean()),
    }


forgetting = register(
    Check(
        key="forgetting",
        title="Flipped examples are forgotten more often; most clean examples are unforgettable",
        reference="Toneva et al. 2019",
        roles=("noise",),
        needs=(SCORES,),
        trace=ASKED,
        measure=_forgetting,
        statistic=lambda m: (
            f"forgetting events: {m['forgetting_flipped']:.2f} per flipped example, "
            f"{m['forgetting_clean']:.2f} per clean one; {m['clean_unforgettable']:.0%} of "
            "clean examples never forgotten"
        ),
        holds=lambda m: (
            m["forgetting_flipped"] > m["forgetting_clean"] and m["clean_unforgettable"] > 0.5
        ),
    )
)


def _confidence_auroc(runs: dict[str, Run], source: str) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    s = _noise_scores(runs, source)
    return {"auroc": float(roc_auc_score(s["flipped"], 1 - s["confidence"]))}


data_map = register(
    Check(
        key="data_map",
        title="Flipped examples are hard to learn: 1 - confidence finds them (AUROC >= 0.9)",
        reference="Swayamdipta et al. 2020",
        roles=("noise",),
        needs=(SCORES,),
        trace=ASKED,
        measure=_confidence_auroc,
        statistic=lambda m: (
            f"AUROC of 1 - confidence for finding flipped examples: {m['auroc']:.3f}"
        ),
        holds=lambda m: m["auroc"] >= 0.9,
    )
)


def _mem_scores(runs: dict[str, Run], source: str) -> dict[str, float]:
    run = runs["noise"]
    mem = run.read_derived("heldout.parquet")["mem_score"]
    clean, flipped = train_examples(run)
    return {
        "flipped_mean": float(mem[flipped].mean()),
        "clean_median": float(mem[clean].median()),
        "clean_mean": float(mem[clean].mean()),
    }


memorization_scores = register(
    Check(
        key="mem_score",
        title="Flipped examples have high held-out memorization scores, typical ones low",
        reference="Feldman & Zhang 2020",
        roles=("noise",),
        needs=(HELDOUT,),
        measure=_mem_scores,
        statistic=lambda m: (
            f"memorization score: flipped mean {m['flipped_mean']:.2f}; clean median "
            f"{m['clean_median']:.2f} (mean {m['clean_mean']:.2f})"
        ),
        holds=lambda m: m["flipped_mean"] > 0.5 and m["clean_median"] < 0.1,
    )
)
