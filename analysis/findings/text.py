"""The language-model findings: the Secret Sharer in its own setting (Carlini et al. 2019) and
extractable memorization (Carlini et al. 2023), on a text run with canaries and duplicated
sequences (the ``text`` role).

The exposure a finding compares across canaries is `finding_exposure`: the exact exposure
(the canary's rank among every candidate secret) wherever the space was enumerated, and the
paper's extrapolation where it was too large to be.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from memdash.analysis.findings.needs import Step
from memdash.analysis.findings.registry import Check, Measured, Missing, register
from memdash.analysis.store import Run

EXPOSURE = Step("text", "exposure", "memdash analyze")
EXTRACTION = Step("text", "extraction", "memdash analyze")
AGREE_BITS = 1.0  # exact and extrapolated exposure agree within this, below the ceiling - 1


def finding_exposure(table: pd.DataFrame) -> np.ndarray:
    """Per row of a text exposure table, the exposure the findings compare (bits): the exact
    one where ``exact_available``, else the extrapolation of Px (the paper's)."""
    exact = table["exact_available"].to_numpy(bool)
    return np.where(exact, table["exposure_exact"].to_numpy(float), table["exposure_extrapolation"])


def _canaries(run: Run) -> pd.DataFrame:
    table = run.read_derived("exposure.parquet")
    canaries = table[table["kind"] == "canary"]
    if canaries.empty:
        raise Missing("the text run has no canaries: train it with --canaries K")
    return canaries.assign(exposure=finding_exposure(canaries))


def _by_repetitions(runs: dict[str, Run], source: str) -> Measured:
    """Median exposure of the canaries by repetitions at the last checkpoint epoch."""
    canaries = _canaries(runs["text"])
    last = canaries[canaries["epoch"] == canaries["epoch"].max()]
    medians = last.groupby("repeats")["exposure"].median()
    values = {f"median_{int(r)}": float(v) for r, v in medians.items()}
    values["epoch"] = float(last["epoch"].iloc[0])
    return Measured(values, {"repeats": [int(r) for r in medians.index]})


def _rises(m: Measured) -> bool:
    medians = [m[f"median_{r}"] for r in m["repeats"]]
    return len(medians) >= 2 and all(b > a for a, b in zip(medians, medians[1:], strict=False))


text_exposure_rises = register(
    Check(
        key="text_exposure_rises_with_repetitions",
        title="A language model's exposure of a secret rises with its insertions",
        reference="Carlini et al. 2019",
        roles=("text",),
        needs=(EXPOSURE,),
        measure=_by_repetitions,
        statistic=lambda m: (
            f"median exposure at epoch {m['epoch']:.0f} by insertions per epoch: "
            + ", ".join(f"{r}: {m[f'median_{r}']:.1f} bits" for r in m["repeats"])
        ),
        holds=_rises,
    )
)


def _before_overfitting(runs: dict[str, Run], source: str) -> Measured:
    """The first checkpoint epoch at which the most repeated canaries' median exposure
    passes log2|R| - 2, against the epoch of the lowest test loss (eval trace)."""
    run = runs["text"]
    canaries = _canaries(run)
    top = canaries[canaries["repeats"] == canaries["repeats"].max()]
    ceiling = float(top["ceiling"].iloc[0])
    medians = top.groupby("epoch")["exposure"].median()
    passed = medians[medians > ceiling - 2]
    test = (run.examples(["split"])["split"] == "test").to_numpy()
    if not test.any():
        raise Missing("the text run has no test sequences")
    epochs, grids = run.trace_grids("eval", ("loss",), first_epoch=0)
    test_loss = np.nanmean(grids["loss"][:, test], axis=1)
    best = int(epochs[int(np.nanargmin(test_loss))])
    values = {
        "repeats": float(top["repeats"].iloc[0]),
        "threshold": ceiling - 2,
        "memorized_epoch": float(passed.index.min()) if len(passed) else float("nan"),
        "best_test_epoch": float(best),
        "best_test_loss": float(np.nanmin(test_loss)),
    }
    return Measured(values, {"ranked": [int(e) for e in medians.index]})


def _before_words(m: Measured) -> str:
    ranked = ", ".join(map(str, m["ranked"]))
    if np.isnan(m["memorized_epoch"]):
        reached = f"never pass it at the epochs ranked ({ranked})"
    else:
        reached = f"pass it by epoch {m['memorized_epoch']:.0f} (of the epochs ranked: {ranked})"
    return (
        f"the canaries inserted {m['repeats']:.0f} times per epoch {reached} (median exposure "
        f"above log2|R| - 2 = {m['threshold']:.1f} bits); the test loss is lowest at epoch "
        f"{m['best_test_epoch']:.0f} ({m['best_test_loss']:.3f} nats per token)"
    )


memorization_before_overfitting = register(
    Check(
        key="memorization_before_overfitting",
        title="Secrets are memorized before the model overfits",
        reference="Carlini et al. 2019",
        roles=("text",),
        needs=(EXPOSURE,),
        measure=_before_overfitting,
        statistic=_before_words,
        holds=lambda m: m["memorized_epoch"] < m["best_test_epoch"],
        trace="eval",
    )
)


def _duplicates(runs: dict[str, Run], source: str) -> Measured:
    """Extraction rate of the duplicated sequences by copies at the last epoch: Spearman's
    correlation with the copies, and the least-squares slope of the rate on log2 copies."""
    table = runs["text"].read_derived("extraction.parquet")
    dup = table[table["kind"] == "duplicate"]
    if dup["copies"].nunique() < 2:
        raise Missing("the text run has no duplicated sequences: --duplicate-sequences M")
    last = dup[dup["epoch"] == dup["epoch"].max()].sort_values("copies")
    copies, rate = last["copies"].to_numpy(float), last["extracted_share"].to_numpy(float)
    rho = stats.spearmanr(copies, rate).statistic if np.ptp(rate) > 0 else 0.0
    slope = float(np.polyfit(np.log2(copies), rate, 1)[0])
    values = {"spearman": float(rho), "slope": slope, "epoch": float(last["epoch"].iloc[0])}
    values |= {f"rate_{int(c)}": float(r) for c, r in zip(copies, rate, strict=True)}
    return Measured(values, {"copies": [int(c) for c in copies]})


extraction_grows_with_duplicates = register(
    Check(
        key="extraction_grows_with_duplicates",
        title="The more often a sequence is duplicated, the more often it is extractable",
        reference="Carlini et al. 2023",
        roles=("text",),
        needs=(EXTRACTION,),
        measure=_duplicates,
        statistic=lambda m: (
            f"share extractable at epoch {m['epoch']:.0f} by copies per epoch: "
            + ", ".join(f"{c}: {m[f'rate_{c}']:.0%}" for c in m["copies"])
            + f"; Spearman {m['spearman']:.2f}, slope {m['slope']:.3f} per doubling"
        ),
        holds=lambda m: m["spearman"] > 0,
    )
)


def _agreement(runs: dict[str, Run], source: str) -> Measured:
    """Exact against extrapolated exposure, every canary and reference at every checkpoint
    epoch where the exact exposure is below log2|R| - 1."""
    table = runs["text"].read_derived("exposure.parquet")
    table = table[table["exact_available"].astype(bool)]
    if table.empty:
        raise Missing("the text run's format was too large to rank exactly")
    below = table[table["exposure_exact"] < table["ceiling"] - 1]
    if below.empty:
        raise Missing("every exact exposure is within 1 bit of the ceiling")
    signed = (below["exposure_extrapolation"] - below["exposure_exact"]).to_numpy()
    gap, exact = np.abs(signed), below["exposure_exact"].to_numpy()
    apart = ~(gap <= AGREE_BITS)  # an epoch whose fit failed (NaN) does not agree
    values = {
        "pairs": float(len(gap)),
        "within": float(np.mean(~apart)),
        "max_gap": float(np.nanmax(gap)),
        "median_gap": float(np.nanmedian(gap)),
        "ceiling": float(table["ceiling"].iloc[0]),
        "apart": float(apart.sum()),
        "apart_below": float(np.mean(signed[apart] < 0)) if apart.any() else 0.0,
        "apart_from": float(exact[apart].min()) if apart.any() else float("nan"),
    }
    return Measured(values)


def _agreement_words(m: Measured) -> str:
    words = (
        f"{m['within']:.0%} of {m['pairs']:.0f} (secret, epoch) pairs with exact exposure "
        f"below log2|R| - 1 = {m['ceiling'] - 1:.1f} bits agree within {AGREE_BITS:.0f} bit "
        f"(median gap {m['median_gap']:.2f}, largest {m['max_gap']:.2f} bits)"
    )
    if m["apart"]:
        words += (
            f"; the {m['apart']:.0f} apart all have an exact exposure of {m['apart_from']:.2f} "
            f"bits or more, and the extrapolation is the lower one in {m['apart_below']:.0%} "
            "of them"
        )
    return words


exact_and_extrapolated_agree = register(
    Check(
        key="exact_and_extrapolated_exposure_agree",
        title="Extrapolated exposure agrees with the exact ranking below the ceiling",
        reference="Carlini et al. 2019",
        roles=("text",),
        needs=(EXPOSURE,),
        measure=_agreement,
        statistic=_agreement_words,
        holds=lambda m: m["within"] == 1.0,
    )
)
