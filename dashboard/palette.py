"""One colour per kind of example, for every page and lesson (Okabe-Ito, colour-blind safe).

Clean, flipped, canary, reference and test examples, and the training-curve groups built
from them, are drawn in these colours everywhere; no page picks its own.
"""

from __future__ import annotations

KIND_COLORS: dict[str, str] = {
    "clean": "#0072B2",  # blue
    "flipped": "#D55E00",  # vermilion
    "canary": "#CC79A7",  # reddish purple
    "reference": "#7F7F7F",  # grey: never trained on
    "test": "#009E73",  # bluish green
    "duplicate": "#E69F00",  # orange: a text run's sequence repeated in the training data
}
# a text run's plain training sequence is drawn as a clean example: the data as it came
KIND_ALIASES: dict[str, str] = {"plain": "clean"}
# the training-curve groups of analysis.curves, in the colour of the kind they hold
GROUP_COLORS: dict[str, str] = {
    "train (clean)": KIND_COLORS["clean"],
    "train (flipped)": KIND_COLORS["flipped"],
    "canaries": KIND_COLORS["canary"],
    "test": KIND_COLORS["test"],
}
# canaries by repetitions (light to dark: seen more often), for exposure charts
REPEAT_COLORS = ("#E8B4D2", "#CC79A7", "#8E3B6D", "#5A1E44")
SEQUENTIAL = "Viridis"  # numeric scores
# membership-inference attacks (Privacy page, classifiers only): colours no classifier kind uses
# (LiRA online and offline, the global threshold, RMIA online and offline)
ATTACK_COLORS: dict[str, str] = {
    "online": "#E69F00",  # orange
    "offline": "#56B4E9",  # sky blue
    "global": "#000000",  # black: the baseline
    "rmia": "#332288",  # indigo
    "rmia_offline": "#882255",  # wine
}
# members and non-members of a model's training set (the Learn lesson on membership)
MEMBER_COLORS: dict[str, str] = {"trained on it": "#E69F00", "held it out": "#56B4E9"}
# the two seed groups of a study (true labels in the clean colour, random labels in the
# flipped colour) and the two starts of random-label pre-training
STUDY_COLORS: dict[str, str] = {
    "true labels": KIND_COLORS["clean"],
    "random labels": KIND_COLORS["flipped"],
    "from random-label weights": "#E69F00",  # orange
    "from scratch": "#56B4E9",  # sky blue
}

# series no palette entry names (a third seed group, say), in order: Okabe-Ito colours the
# kinds of example do not use
SPARE_COLORS = ("#000000", "#E69F00", "#56B4E9", "#F0E442", "#999999", "#332288")


def kind_color(kind: str) -> str | None:
    """The colour of a kind of example or of a study's series (None for any other value)."""
    return KIND_COLORS.get(KIND_ALIASES.get(kind, kind)) or STUDY_COLORS.get(kind)


def repeat_color(rank: int) -> str:
    """The colour of the rank-th repetition group of canaries (0 = seen least often)."""
    return REPEAT_COLORS[min(rank, len(REPEAT_COLORS) - 1)]


def pair_kind_color(kinds: str) -> str | None:
    """The colour of an example's kinds in two runs (Compare runs): ``"flipped"`` in its
    kind's colour; ``"flipped in A, clean in B"`` (or the other way round) in the colour of
    the kind that is not clean, the one that makes it stand out."""
    if kinds in KIND_COLORS:
        return KIND_COLORS[kinds]
    in_a, _, in_b = kinds.partition(" in A, ")
    in_b = in_b.removesuffix(" in B")
    return KIND_COLORS.get(in_a if in_a != "clean" else in_b)
