"""Which end of each per-example score means memorized (the label dictionary's directions).

Imports nothing, so the findings, the proxies' scoreboard (`memdash proxies`) and the dashboard's
label dictionary (`memdash.dashboard.labels`, which re-exports these) all read one dictionary.
"""

from __future__ import annotations

from dataclasses import dataclass

HIGHER, LOWER = "higher", "lower"


@dataclass(frozen=True)
class Direction:
    """Which end of a score is which.

    ``memorized``: the end that means memorized (``HIGHER`` or ``LOWER``), or None for a
    score that is not a memorization score (difficulty, fit, learning speed: a flipped
    example a network has not fit and one it has memorized sit at opposite ends of
    confidence, so neither end of it means memorized). ``flagged``: the end pages flag and
    rank first: the memorized one, or for any other score the hard, atypical one.
    """

    flagged: str
    memorized: str | None = None

    def __post_init__(self) -> None:
        if self.flagged not in (HIGHER, LOWER) or self.memorized not in (HIGHER, LOWER, None):
            raise ValueError(f"a score's ends are {HIGHER!r} or {LOWER!r}, not {self}")
        if self.memorized is not None and self.memorized != self.flagged:
            raise ValueError(f"a memorization score is flagged at its memorized end: {self}")


def _memorized(end: str) -> Direction:
    return Direction(flagged=end, memorized=end)


# every per-example score a page thresholds or ranks
DIRECTIONS: dict[str, Direction] = {
    # memorization scores
    "mem_score": _memorized(HIGHER),  # Feldman & Zhang: in- minus out-models' accuracy
    "cf_mem_accuracy": _memorized(HIGHER),  # Zhang et al. 2021: the same on text
    "cf_mem_loglik": _memorized(HIGHER),
    "neurons_zeroed": _memorized(LOWER),  # Maini et al.: few units flip a memorized example
    "vulnerability": _memorized(HIGHER),  # Carlini et al. 2022: memorized examples leak
    "exposure_interpolation": _memorized(HIGHER),  # Carlini et al. 2019: a canary's exposure
    "exposure_extrapolation": _memorized(HIGHER),
    "exposure_extrapolation_log": _memorized(HIGHER),
    # not memorization scores: difficulty, fit and learning speed, flagged at the hard end
    "forgetting_events": Direction(HIGHER),
    "confidence": Direction(LOWER),
    "variability": Direction(HIGHER),
    "correctness": Direction(LOWER),
    "aum": Direction(LOWER),
    "mean_loss": Direction(HIGHER),
    "learned_epoch": Direction(HIGHER),
    "first_learned_epoch": Direction(HIGHER),
    "heldout_accuracy": Direction(LOWER),
    "c_score": Direction(LOWER),
    "easiness": Direction(LOWER),
    "loss_sensitivity": Direction(HIGHER),
    "curvature": Direction(HIGHER),  # Garg, Roy et al. 2023: mislabeled, atypical examples
    "ssft": Direction(LOWER),  # Maini et al. 2022: forgotten soonest when the split changes
    "knn_disagreement": Direction(HIGHER),  # the k-NN of a layer predicts another class
}


def flagged_end(score: str) -> str | None:
    """The end of `score` that pages flag and rank first (``HIGHER`` or ``LOWER``): its
    memorized end, or for a score that is not a memorization score its hard, atypical end;
    None for an unknown score. A per-layer score (``knn_disagreement@fc1``) and a
    training-minibatch score (``confidence_train``) take their base score's end."""
    direction = DIRECTIONS.get(score.split("@")[0].removesuffix("_train"))
    return direction.flagged if direction else None


def memorized_end(score: str) -> str | None:
    """Which end of `score` means memorized: ``HIGHER``, ``LOWER``, or None where it is not
    a memorization score (or not a known score)."""
    direction = DIRECTIONS.get(score.removesuffix("_train"))
    return direction.memorized if direction else None
