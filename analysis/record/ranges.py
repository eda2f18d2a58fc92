"""What a number field accepts: integers or finite reals between two bounds, each number of a
tuple field too, described in words for an error and in brackets for an option's help."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    """The values a number field accepts, or each number of a tuple field.

    Integers (`integer`) or finite reals between `low` and `high` (None: no bound), each end
    closed unless `open_low` / `open_high`; `items` = (fewest, most) numbers of a tuple field
    (most None: no cap); `optional` admits None, the field's "not given".
    """

    low: float | None = None
    high: float | None = None
    integer: bool = True
    open_low: bool = False
    open_high: bool = False
    items: tuple[int, int | None] | None = None
    optional: bool = False

    def admits(self, number: Any) -> bool:
        """Whether one number lies in the range (never NaN, an infinity or a bool)."""
        kinds = (int,) if self.integer else (int, float)
        if isinstance(number, bool) or not isinstance(number, kinds):
            return False
        if not math.isfinite(number):
            return False
        if self.low is not None and (number <= self.low if self.open_low else number < self.low):
            return False
        return self.high is None or (number < self.high if self.open_high else number <= self.high)

    def problem(self, value: Any) -> str | None:
        """None when `value` is accepted, else what is accepted (see `describe`)."""
        if value is None and self.optional:
            return None
        if self.items is None:
            return None if self.admits(value) else self.describe()
        fewest, most = self.items
        ok = isinstance(value, tuple) and fewest <= len(value) <= (most or len(value))
        return None if ok and all(self.admits(v) for v in value) else self.describe()

    def number(self) -> str:
        """One number's range in words: "an integer in 1..100000", "a finite number > 0"."""
        low, high = _shown(self.low), _shown(self.high)
        if self.integer:
            if self.high is None:
                return "an integer" if self.low is None else f"an integer >= {low}"
            return (
                f"an integer in {low}..{high}" if self.low is not None else f"an integer <= {high}"
            )
        if self.low is not None and self.high is not None:
            left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
            return f"a finite number in {left}{low}, {high}{right}"
        if self.low is not None:
            return f"a finite number {'>' if self.open_low else '>='} {low}"
        if self.high is not None:
            return f"a finite number {'<' if self.open_high else '<='} {high}"
        return "a finite number"

    def describe(self, separated: str = "") -> str:
        """The range in words; a tuple's as "integers in 1..1000000`separated` (at most 64)"."""
        if self.items is None:
            return self.number()
        plural = self.number().replace("an integer", "integers").replace("a finite", "finite")
        plural = plural.replace(" number", " numbers")
        fewest, most = self.items
        if most is None:
            count = f"at least {fewest}" if fewest else ""
        elif fewest == most:
            count = f"exactly {most}"
        else:
            count = f"at most {most}" if fewest == 0 else f"{fewest} to {most}"
        return plural + separated + (f" ({count})" if count else "")

    def hint(self) -> str:
        """The range as the options' help shows it: "[1..1000000]", "[0 <= x < 1]"."""
        low, high = _shown(self.low), _shown(self.high)
        if self.integer and self.low is not None and self.high is not None:
            return f"[{low}..{high}]"
        below = f"{low} {'<' if self.open_low else '<='} " if self.low is not None else ""
        above = f" {'<' if self.open_high else '<='} {high}" if self.high is not None else ""
        if not below and not above:
            return ""
        if below and not above:  # "[x > 0]" reads better than "[0 < x]"
            return f"[x {'>' if self.open_low else '>='} {low}]"
        return f"[{below}x{above}]"


def _shown(bound: float | None) -> str:
    return "" if bound is None else f"{bound:g}" if isinstance(bound, float) else str(bound)


def ints(low: int, high: int | None, **kwargs: Any) -> Range:
    return Range(low, high, **kwargs)


def reals(low: float | None, high: float | None, **kwargs: Any) -> Range:
    return Range(low, high, integer=False, **kwargs)
