"""The findings on training curves (Arpit et al. 2017; Zhang et al. 2017): clean examples are
fitted before flipped ones, fitting slows with noise, test accuracy peaks before the flipped
examples are memorized, and dropout slows their fitting; with the curves they read.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from memdash.analysis.findings.registry import ASKED, Check, Measured, register
from memdash.analysis.store import Run
from memdash.analysis.tables.curves import run_accuracy_curves

CLEAN, FLIPPED = "train (clean)", "train (flipped)"


def accuracy_curves(run: Run, source: str = "eval") -> pd.DataFrame:
    """Accuracy per epoch and group from one trace, pivoted: one column per group (read once
    per run state: four findings use the noisy run's curves)."""
    return _curves_of(str(run.path), run.meta.get("updated_at"), source)


@functools.lru_cache(maxsize=16)
def _curves_of(path: str, updated_at: str | None, source: str) -> pd.DataFrame:
    table = run_accuracy_curves(Run.open(path), source)
    return table.pivot(index="epoch", columns="group", values="accuracy")


def first_epoch(series: pd.Series, level: float) -> float:
    """The first epoch at which a curve reaches `level` (NaN if never)."""
    hit = series.index[series.to_numpy() >= level]
    return float(hit[0]) if len(hit) else float("nan")


def _fit_epochs(runs: dict[str, Run], source: str) -> dict[str, float]:
    c = accuracy_curves(runs["noise"], source)
    return {
        "clean_epoch_90": first_epoch(c[CLEAN], 0.9),
        "flipped_epoch_90": first_epoch(c[FLIPPED], 0.9),
    }


clean_before_flipped = register(
    Check(
        key="order",
        title="Clean examples are fitted before flipped ones",
        reference="Arpit et al. 2017",
        roles=("noise",),
        trace=ASKED,
        measure=_fit_epochs,
        statistic=lambda m: (
            f"90% of clean examples fitted at epoch {m['clean_epoch_90']:g}, "
            f"of flipped ones at {m['flipped_epoch_90']:g}"
        ),
        holds=lambda m: (
            m["clean_epoch_90"] < m["flipped_epoch_90"]
            or (np.isfinite(m["clean_epoch_90"]) and np.isnan(m["flipped_epoch_90"]))
        ),
    )
)

_NOISE_LEVELS = ("clean", "noise", "random")


def _training_set_fit(runs: dict[str, Run], source: str) -> Measured:
    """The first epoch 95% of each run's training set is fitted (clean and flipped weighted),
    and each run's last epoch (shown: "not reached in 60 epochs")."""
    epochs, last = {}, {}
    for role in _NOISE_LEVELS:
        c = accuracy_curves(runs[role], source)
        train = c[[g for g in (CLEAN, FLIPPED) if g in c.columns]]
        weights = runs[role].examples()
        n_flipped = int((weights["split"].eq("train") & weights["is_noisy"]).sum())
        n_train = int(weights["split"].eq("train").sum())
        share = n_flipped / n_train
        acc = train[CLEAN] * (1 - share) + train.get(FLIPPED, 0) * share
        epochs[role] = first_epoch(acc, 0.95)
        last[role] = int(acc.index.max())
    return Measured({f"{k}_epoch_95": v for k, v in epochs.items()}, {"last_epochs": last})


def _reached(epoch: float, last: int) -> str:
    """A fit's epoch in words: the number, or that it was not reached in the run's epochs."""
    return f"{epoch:g}" if np.isfinite(epoch) else f"not reached in {last} epochs"


def _slower_with_more_noise(m: Measured) -> bool:
    e = [m[f"{k}_epoch_95"] for k in _NOISE_LEVELS]
    e = [v if np.isfinite(v) else np.inf for v in e]
    return e[0] < e[1] < e[2] or (e[0] < e[1] and e[2] == np.inf)


slower_with_noise = register(
    Check(
        key="noise_rate",
        title="Fitting the training set takes longer with more noise, longest with random labels",
        reference="Arpit et al. 2017; Zhang et al. 2017",
        roles=_NOISE_LEVELS,
        trace=ASKED,
        measure=_training_set_fit,
        statistic=lambda m: (
            "95% of the training set fitted at epoch "
            + ", ".join(
                f"{_reached(m[f'{k}_epoch_95'], m['last_epochs'][k])} ({k})" for k in _NOISE_LEVELS
            )
        ),
        holds=_slower_with_more_noise,
    )
)


def _test_peak(runs: dict[str, Run], source: str) -> dict[str, float]:
    c = accuracy_curves(runs["noise"], source)
    return {
        "test_peak_epoch": float(c["test"].idxmax()),
        "test_peak": float(c["test"].max()),
        "test_final": float(c["test"].iloc[-1]),
        "flipped_half_epoch": first_epoch(c[FLIPPED], 0.5),
    }


test_peaks_before_memorization = register(
    Check(
        key="early_peak",
        title="Test accuracy peaks before the flipped examples are memorized",
        reference="Arpit et al. 2017",
        roles=("noise",),
        trace="eval",  # test accuracy is measured by the eval pass alone
        measure=_test_peak,
        statistic=lambda m: (
            f"test accuracy peaks at {m['test_peak']:.3f} (epoch {m['test_peak_epoch']:g}) and "
            f"ends at {m['test_final']:.3f}; half the flipped examples are fitted at epoch "
            f"{m['flipped_half_epoch']:g}"
        ),
        holds=lambda m: (
            np.isnan(m["flipped_half_epoch"]) or m["test_peak_epoch"] < m["flipped_half_epoch"]
        ),
    )
)


def _dropout_delays(runs: dict[str, Run], source: str) -> dict[str, float]:
    """How many epochs later the dropout run fits 90% of clean and 50% of flipped examples
    (a level never reached counts as the run's end)."""
    plain, drop = accuracy_curves(runs["noise"], source), accuracy_curves(runs["dropout"], source)
    delay = {}
    for group, level in ((CLEAN, 0.9), (FLIPPED, 0.5)):
        a, b = first_epoch(plain[group], level), first_epoch(drop[group], level)
        delay[group] = (b if np.isfinite(b) else drop.index.max() + 1) - a
    return {
        "clean_delay": delay[CLEAN],
        "flipped_delay": delay[FLIPPED],
        "flipped_final_plain": float(plain[FLIPPED].iloc[-1]),
        "flipped_final_dropout": float(drop[FLIPPED].iloc[-1]),
    }


dropout_slows_memorization = register(
    Check(
        key="dropout",
        title="Dropout slows the fitting of flipped examples more than of clean ones",
        reference="Arpit et al. 2017",
        roles=("noise", "dropout"),
        trace=ASKED,
        measure=_dropout_delays,
        statistic=lambda m: (
            f"dropout delays 90% clean fit by {m['clean_delay']:g} epochs and 50% flipped fit "
            f"by {m['flipped_delay']:g} (at least: not reached counts as the run's end); "
            f"final flipped accuracy {m['flipped_final_plain']:.2f} without, "
            f"{m['flipped_final_dropout']:.2f} with"
        ),
        holds=lambda m: m["flipped_delay"] > m["clean_delay"],
    )
)
