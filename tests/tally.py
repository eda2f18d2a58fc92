"""The reliability tally: how many cases each area tried, printed with its failures at the
end of the test session (conftest.pytest_terminal_summary), plus figures such as the load
test's page times."""

from __future__ import annotations

from collections import Counter

CASES: Counter[str] = Counter()
LINES: list[str] = []


def case(area: str, n: int = 1) -> None:
    """Count `n` cases tried in `area` (a hypothesis example, a damaged file, a page load)."""
    CASES[area] += n


def line(text: str) -> None:
    """A figure for the table's foot (the load test's page times and memory)."""
    LINES.append(text)
