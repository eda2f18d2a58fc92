"""What a finding reads beyond its runs: a derived step, a stored table, a recorded trace column.

Each need is declared on a finding (`memdash.analysis.findings.registry.Check.needs`) and
says, when its runs lack it, what to run: ``lacking`` returns that sentence, or "" when the
runs hold what the finding reads. The runs' roles are checked before any need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from memdash.analysis.findings.selection import group_runs


class Need(Protocol):
    """Something a finding's runs must hold: `lacking` says what to run when they do not."""

    def lacking(self, runs: dict[str, Any]) -> str: ...


@dataclass(frozen=True)
class Step:
    """A derived step's results on one role's run (`Run.derived_manifest`)."""

    role: str  # the run, by role
    step: str  # the step's name in the run's derived manifest
    command: str  # what computes it

    def lacking(self, runs: dict[str, Any]) -> str:
        if self.step in runs[self.role].derived_manifest():
            return ""
        return f"run `{self.command}` on the {self.role} run"


@dataclass(frozen=True)
class Stored:
    """A derived table on one role's run that a newer version of its step writes."""

    role: str  # the run, by role
    file: str  # the table under the run's derived/
    command: str  # what writes it
    because: str  # why running it again helps

    def lacking(self, runs: dict[str, Any]) -> str:
        if runs[self.role].derived_path(self.file).is_file():
            return ""
        return f"run `{self.command}` on the {self.role} run again: {self.because}"


@dataclass(frozen=True)
class Recorded:
    """A trace column recorded by every run of two seed groups (a training option's output)."""

    groups: tuple[str, str]  # the seed groups, by study role
    column: str  # the trace column
    option: str  # the `memdash train` option that records it

    def lacking(self, runs: dict[str, Any]) -> str:
        if all(self.column in run.trace_columns() for run in group_runs(runs, *self.groups)):
            return ""
        return f"train both groups with {self.option}"


@dataclass(frozen=True)
class GroupStep:
    """A derived step's results on every run of a study role's list of runs (a family)."""

    group: str  # the runs, by study role
    step: str  # the step's name in each run's derived manifest
    command: str  # what computes it

    def lacking(self, runs: dict[str, Any]) -> str:
        without = [r.name for r in runs[self.group] if self.step not in r.derived_manifest()]
        return f"run `{self.command}` on {', '.join(without)}" if without else ""
