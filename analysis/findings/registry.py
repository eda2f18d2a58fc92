"""The findings' registry: the `Finding` record, the `Check` declaration, and `check_all`.

A finding is declared once (`Check`: its id, title and paper, the runs it reads by role,
what else it needs, the trace it reads, its measure, the statistic in words and the verdict
rule) and registered by its id (`register`), in the manner of cleanlab's datalab issue
managers. Calling a declaration on the runs by role does what every finding shares: it
says what is missing ("not enough data") instead of failing, picks the trace, and words
the verdict. `check_all` runs every registered finding in the order of the issue's list
(`ORDER`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memdash.analysis.findings.needs import Need
from memdash.analysis.findings.selection import roles, study_roles
from memdash.analysis.store import Run
from memdash.analysis.store.sources import check_source

HOLDS, FAILS, MISSING = "holds", "does not hold", "not enough data"
ASKED = "asked"  # `Check.trace`: the trace asked for, or the eval pass where a run lacks it

# the findings in the order of the issue's list: `check_all`'s order
ORDER = (
    "order",
    "noise_rate",
    "early_peak",
    "dropout",
    "forgetting",
    "data_map",
    "mem_score",
    "membership_follows_memorization",
    "exposure",
    "knn",
    "flipping",
    "tied_dropout",
    "one_way_to_learn",
    "random_label_pretraining",
    "easiness_across_seeds",
    "loss_sensitivity",
    "critical_sample_ratio",
    "text_exposure_rises_with_repetitions",
    "memorization_before_overfitting",
    "extraction_grows_with_duplicates",
    "exact_and_extrapolated_exposure_agree",
    "counterfactual_memorization_of_text",
    "dp_bounds_membership",
    "dp_reduces_memorization",
    "rmia_with_few_models",
    "proxies_rank_memorization",
    "proxies_across_widths",
)


@dataclass
class Finding:
    """One finding on some runs: what was measured, and whether the paper's claim holds."""

    key: str
    title: str
    reference: str
    verdict: str = MISSING
    statistic: str = ""  # the measured numbers, in words
    values: dict[str, float] = field(default_factory=dict)
    why: str = ""  # for "not enough data": what is missing
    source: str = ""  # the trace its numbers come from (analysis.sources), "" for none
    fell_back: bool = False  # the trace asked for was not recorded: the eval pass was used

    def as_dict(self) -> dict:
        """The finding as plain JSON-ready values (`memdash findings --json`)."""
        return {
            "id": self.key,
            "title": self.title,
            "statistic": self.statistic or self.why,
            "verdict": self.verdict,
            "source": self.source,
            "reference": self.reference,
            "values": self.values,
        }


class Missing(Exception):
    """Raised by a measure whose inputs hold nothing to measure; the message says why."""


@dataclass(frozen=True)
class Measured:
    """What a measure found: the finding's ``values``, and what its words need beyond them
    (``shown``: tables, layer lists, labels). ``m[name]`` reads either."""

    values: dict[str, float]
    shown: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if both := self.values.keys() & self.shown.keys():
            raise ValueError(f"names both shown and measured: {sorted(both)}")

    def __getitem__(self, name: str) -> Any:
        return self.values[name] if name in self.values else self.shown[name]


@dataclass(frozen=True)
class Check:
    """One finding, declared: calling it on the runs by role gives its `Finding`.

    ``measure(runs, trace)`` gets the runs by role and the trace to read; it returns the
    values (or a `Measured`), or raises `Missing`. It runs only where every role is there
    and every need is met; otherwise the finding says which run is missing, or what to run.
    """

    key: str  # the finding's id (`Finding.key`; "id" in `memdash findings --json`)
    title: str  # the paper's claim, in words
    reference: str  # the paper(s)
    roles: tuple[str, ...]  # the runs it reads, by role (`roles`, `study_roles`)
    measure: Callable[[dict[str, Any], str], dict[str, float] | Measured]
    statistic: Callable[[Measured], str]  # the measured numbers, in words
    holds: Callable[[Measured], bool]  # the verdict rule: the claim holds on these numbers
    needs: tuple[Need, ...] = ()  # what its runs must hold beyond themselves, checked in order
    trace: str | None = None  # ASKED, "eval" (the eval pass alone) or None (names no trace)

    def __call__(self, runs: dict[str, Any], *, source: str = "eval") -> Finding:
        """The finding on the runs by role, its trace-based numbers from ``source``."""
        f = Finding(self.key, self.title, self.reference)
        f.why = self._lacking(runs)
        if f.why:
            return f
        used = self._trace(f, source, runs)
        try:
            found = self.measure(runs, used)
        except Missing as why:
            f.why = str(why)
            return f
        measured = found if isinstance(found, Measured) else Measured(found)
        f.values = measured.values
        f.statistic = self.statistic(measured)
        f.verdict = HOLDS if self.holds(measured) else FAILS
        return f

    def _lacking(self, runs: dict[str, Any]) -> str:
        """What is missing for this finding, in words ("" when nothing is)."""
        missing = [role for role in self.roles if role not in runs]
        if missing:
            return "needs a run with " + ", ".join(missing)
        return next((why for need in self.needs if (why := need.lacking(runs))), "")

    def _trace(self, f: Finding, source: str, runs: dict[str, Any]) -> str:
        """The trace the measure reads, noted on the finding where it names one: ``source``
        if every run recorded it, else the eval pass."""
        if self.trace is None:
            return "eval"
        used = self.trace
        if self.trace == ASKED:
            recorded = all(source in runs[role].trace_sources() for role in self.roles)
            used = source if recorded else "eval"
            f.fell_back = used != source
        f.source = used
        return used


REGISTRY: dict[str, Check] = {}


def register(check: Check) -> Check:
    """Register a finding by its id (one of `ORDER`), and return it."""
    if check.key not in ORDER:
        raise ValueError(f"finding {check.key!r} is not in ORDER: add it where the list has it")
    if check.key in REGISTRY:
        raise ValueError(f"finding {check.key!r} is registered twice")
    REGISTRY[check.key] = check
    return check


def registered() -> tuple[Check, ...]:
    """The registered findings, in the order of the issue's list."""
    return tuple(REGISTRY[key] for key in ORDER)


def check_all(runs: list[Run], *, source: str = "eval") -> list[Finding]:
    """Every finding on the given runs, in the order of the issue's list.

    ``source`` picks the trace of the trace-based findings (`memdash.analysis.store.sources`).
    """
    check_source(source)
    by_role = roles(runs) | study_roles(runs)
    return [check(by_role, source=source) for check in registered()]
