"""The language-model findings: the Secret Sharer in its own setting (Carlini et al. 2019) and
extractable memorization (Carlini et al. 2023), on a text run with canaries and duplicated
sequences (the ``text`` role).

The exposure a finding compares across canaries is `finding_exposure`: the exact exposure
(the canary's rank among every candidate secret) wherever the space was enumerated, and the
paper's extrapolation where it was too large to be.

Counterfactual memorization (Zhang et al. 2021) reads a text estimate
(`ensemble.text_estimate`), whose models draw their training data as the paper's do: a
sequence duplicated c times (``duplicates``) or a canary inserted r times is c (r) separate
copies, each in a model's training data independently with probability ``ratio`` (a half);
"x in S" is whether its first copy is in, and a model trains on it once per epoch for every
copy it holds. That is the paper's setting, where near-duplicates are separate documents that
fall into the halves independently: when a document is out, its duplicates are usually still
in, so duplicated text has LOW counterfactual memorization, while rare, unconventional text (a
secret inserted once) has HIGH. The finding states both: the canaries inserted once score above
the plain sequences (medians), and among the duplicated sequences counterfactual memorization
falls as the copies grow (Spearman below 0 at p < 0.05); it says "does not hold" if either fails.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
    from scipy import stats  # scipy.stats takes a second to import: only where it is used

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


COUNTERFACTUAL = Step("text", "heldout", "memdash estimate --like")


def copies_table(counterfactual: pd.DataFrame, examples: pd.DataFrame) -> pd.DataFrame:
    """The training sequences of a text estimate with both sides of models: ``group``
    (``plain``, ``duplicate``, ``canary``), ``copies`` (presentations per epoch) and the two
    counterfactual scores."""
    table = examples[["example_id", "split", "corruption", "duplicates"]].merge(
        counterfactual[["example_id", "cf_mem_accuracy", "cf_mem_loglik"]], on="example_id"
    )
    table = table[(table["split"] == "train")].dropna(subset=["cf_mem_accuracy"])
    group = table["corruption"].map({"duplicate": "duplicate", "canary": "canary"})
    return pd.DataFrame(
        {
            "group": group.fillna("plain").to_numpy(),
            "copies": table["duplicates"].to_numpy(int),
            "cf_mem_accuracy": table["cf_mem_accuracy"].to_numpy(float),
            "cf_mem_loglik": table["cf_mem_loglik"].to_numpy(float),
        }
    )


def counterfactual_by_copies(table: pd.DataFrame) -> Measured:
    """Median counterfactual memorization (token accuracy) of plain sequences, of the
    duplicated ones by copies and of the canaries by insertions; the canaries inserted once
    against the plain sequences, and Spearman's correlation (two-sided p-value) of copies with
    it over the duplicated sequences (log-likelihood's beside)."""
    dup = table[table["group"] == "duplicate"]
    canaries = table[table["group"] == "canary"]
    once = canaries[canaries["copies"] == 1]
    plain = table[table["group"] == "plain"]
    if dup["copies"].nunique() < 2 or once.empty or plain.empty:
        raise Missing(
            "the text run needs plain sequences, duplicated ones of two or more counts and "
            "canaries inserted once (--duplicate-sequences, --duplicate-counts, --canaries, "
            "--canary-repeats 1,...) for this finding"
        )
    values = {"median_plain": float(plain["cf_mem_accuracy"].median())}
    by_copies = dup.groupby("copies")["cf_mem_accuracy"].median()
    values |= {f"median_dup_{int(c)}": float(v) for c, v in by_copies.items()}
    by_insertions = canaries.groupby("copies")["cf_mem_accuracy"].median()
    values |= {f"median_canary_{int(r)}": float(v) for r, v in by_insertions.items()}
    rho, p_value = _spearman(dup["copies"], dup["cf_mem_accuracy"])
    values |= {
        "spearman": rho,
        "p_value": p_value,
        "spearman_loglik": _spearman(dup["copies"], dup["cf_mem_loglik"])[0],
        "median_canary_once": float(once["cf_mem_accuracy"].median()),
        "median_canary": float(canaries["cf_mem_accuracy"].median()),
        "duplicated": float(len(dup)),
        "sequences": float(len(table)),
    }
    shown = {
        "copies": [int(c) for c in by_copies.index],
        "insertions": [int(r) for r in by_insertions.index],
    }
    return Measured(values, shown)


def _spearman(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    """Spearman's rho and its two-sided p-value; (0, 1) when `y` does not vary."""
    if np.ptp(y.to_numpy(float)) == 0:
        return 0.0, 1.0
    from scipy import stats

    result = stats.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


def _counterfactual(runs: dict[str, Run], source: str) -> Measured:
    run = runs["text"]
    if "counterfactual.parquet" not in run.derived_manifest()["heldout"].get("files", []):
        raise Missing("the text run's estimate has no counterfactual.parquet: estimate again")
    cf = run.read_derived("counterfactual.parquet")
    examples = run.examples(["example_id", "split", "corruption", "duplicates"])
    return counterfactual_by_copies(copies_table(cf, examples))


def _counterfactual_words(m: Measured) -> str:
    dup = ", ".join(f"x{c}: {m[f'median_dup_{c}']:.3f}" for c in m["copies"])
    can = ", ".join(f"x{r}: {m[f'median_canary_{r}']:.3f}" for r in m["insertions"])
    return (
        f"median counterfactual memorization (token accuracy, in minus out; each copy drawn "
        f"in or out on its own) of canaries inserted once {m['median_canary_once']:.3f} "
        f"against plain sequences {m['median_plain']:.3f}; canaries by insertions {can}; "
        f"duplicated sequences by copies {dup}; Spearman of copies with it over the "
        f"{m['duplicated']:.0f} duplicated sequences {m['spearman']:.2f} "
        f"(p = {m['p_value']:.2g}; log-likelihood: {m['spearman_loglik']:.2f})"
    )


SIGNIFICANCE = 0.05  # the Spearman's two-sided p-value below which copies lower the score

counterfactual_of_text = register(
    Check(
        key="counterfactual_memorization_of_text",
        title=(
            "Counterfactual memorization is high for a secret inserted once and falls as a "
            "sequence's duplicates grow"
        ),
        reference="Zhang et al. 2021",
        roles=("text",),
        needs=(COUNTERFACTUAL,),
        measure=_counterfactual,
        statistic=_counterfactual_words,
        holds=lambda m: (
            m["median_canary_once"] > m["median_plain"]
            and m["spearman"] < 0
            and m["p_value"] < SIGNIFICANCE
        ),
    )
)
