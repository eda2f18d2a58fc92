"""How an option's text becomes the value its command receives, and how a value outside what
it accepts is refused: the `Spec` of each kind of option (a number in a `Range`, numbers,
one word of a list, names, text, a torch device), `option` to declare one with typer, and
the `Checked` command whose usage errors are one line each, exit code 2. The options
themselves (each with its range) are declared in `options`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import typer
from typer.core import TyperCommand

from memdash.analysis.cli.basics import refuse
from memdash.analysis.record.ranges import Range, ints


class OutOfRange(typer.BadParameter):
    """A value an option does not accept: what it `expected` and what it `got`."""

    def __init__(self, expected: str, got: Any) -> None:
        super().__init__(f"must be {expected}, got {_shown(got)}")
        self.expected, self.got = expected, got


def _shown(value: Any) -> str:
    """A value as typed, quoted only when blank, spaced or not printable; long ones cut."""
    text = str(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return (
        text if text and text.isprintable() and not any(c.isspace() for c in text) else repr(text)
    )


class Spec:
    """An option's type and accepted values: called on the option's text (or its default),
    it returns the value the command receives or raises `OutOfRange`."""

    metavar: str | None = None  # the help's name of the value (default: the annotation's)

    def hint(self) -> str:
        """What the option's help adds about its values ("" for none)."""
        return ""

    def __call__(self, value: Any) -> Any:  # pragma: no cover - every spec defines it
        raise NotImplementedError


class Number(Spec):
    """One integer or one finite real within a `Range`."""

    def __init__(self, accepted: Range) -> None:
        self.range = accepted

    def hint(self) -> str:
        return self.range.hint()

    def __call__(self, value: Any) -> int | float:
        number = number_of(value, self.range.integer)
        if number is None or not self.range.admits(number):
            raise OutOfRange(self.range.number(), value)
        return number


def number_of(value: Any, integer: bool) -> int | float | None:
    """`value` (text or a number) as an int or a float, None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and not (integer and isinstance(value, float)):
        return value
    try:
        return int(str(value).strip()) if integer else float(str(value).strip())
    except ValueError:
        return None


class Numbers(Spec):
    """Numbers separated by commas (and by "x" where `by_x`, as in a shape 1x16x16), each
    within a `Range` whose `items` bounds how many; blanks between commas are dropped."""

    def __init__(self, accepted: Range, *, by_x: bool = False) -> None:
        self.range, self.by_x = accepted, by_x
        self.metavar = "<ints>" if accepted.integer else "<floats>"

    def hint(self) -> str:
        return self.range.hint()

    def expected(self) -> str:
        return self.range.describe(" separated by commas" + (" or x" if self.by_x else ""))

    def __call__(self, value: Any) -> tuple[int | float, ...]:
        if isinstance(value, tuple):
            return value
        text = str(value).replace("x", ",") if self.by_x else str(value)
        numbers = tuple(number_of(p, self.range.integer) for p in text.split(",") if p.strip())
        if None in numbers or self.range.problem(numbers) is not None:
            raise OutOfRange(self.expected(), value)
        return numbers  # type: ignore[return-value]


Choices = Iterable[str] | Callable[[], Iterable[str]]


def _listed(choices: Choices) -> tuple[str, ...]:
    """The choices, called when given lazily (those of a module that is slow to import)."""
    return tuple(choices() if callable(choices) else choices)


class OneOf(Spec):
    """One word of a list."""

    def __init__(self, choices: Choices) -> None:
        self.choices = choices

    def __call__(self, value: Any) -> str:
        valid = _listed(self.choices)
        if value not in valid:
            raise OutOfRange(f"one of {', '.join(valid)}", value)
        return str(value)


class Names(Spec):
    """Names separated by commas, blanks dropped: of `choices` when given (steps, measures),
    else any (layer names, known once the model is built)."""

    metavar = "<names>"

    def __init__(self, choices: Choices | None = None) -> None:
        self.choices = choices

    def __call__(self, value: Any) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        names = tuple(p.strip() for p in str(value).split(",") if p.strip())
        if self.choices is not None and names:
            valid = _listed(self.choices)
            if any(name not in valid for name in names):
                raise OutOfRange(f"names of {', '.join(valid)} separated by commas", value)
        return names


class Text(Spec):
    """Any text: a column name, a file, an address (what it means is checked where used)."""

    def __call__(self, value: Any) -> str:
        return str(value)


class Device(Spec):
    """A torch device this machine has: cpu, or cuda / cuda:N / mps / xpu when available."""

    PATTERN = re.compile(r"(cpu|cuda|mps|xpu)(:\d+)?")

    def __call__(self, value: Any) -> str:
        text = str(value).strip()
        match = self.PATTERN.fullmatch(text)
        if match is None:
            raise OutOfRange("a torch device: cpu, cuda, cuda:N, mps or xpu", value)
        if match.group(1) != "cpu" and not _available(match.group(1), match.group(2)):
            raise OutOfRange("a torch device of this machine (it has no such device)", value)
        return text


def _available(kind: str, index: str | None) -> bool:
    """Whether this machine's torch has the device (imported only for a device not cpu)."""
    import torch

    backend = getattr(torch, kind, None)
    if kind == "mps":
        return bool(torch.backends.mps.is_available()) and index in (None, ":0")
    if backend is None or not backend.is_available():
        return False
    return index is None or int(index[1:]) < backend.device_count()


def option(default: Any, spec: Spec, help: str, *decls: str) -> Any:
    """A typer option parsed by `spec`, its range added to the help."""
    hint = spec.hint()
    return typer.Option(
        default,
        *decls,
        parser=spec,
        metavar=spec.metavar,
        help=f"{help} {hint}" if hint else help,
    )


# ------------------------------------------------------------------ how a bad value is refused
class Checked(TyperCommand):
    """A command whose usage errors are one line each, exit code 2, before it runs."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as err:
            if getattr(err, "exit_code", None) != 2:  # 2: a usage error (click's code)
                raise
            refuse(_bad_value(err))


def _bad_value(err: Any) -> str:
    """'--option must be ..., got ...' for `OutOfRange`; the parser's own message otherwise
    (an unknown option, a missing one), on one line."""
    param = getattr(err, "param", None)
    if isinstance(err, OutOfRange) and param is not None:
        names = [o for o in getattr(param, "opts", []) if o.startswith("-")]
        name = names[0] if names else (param.human_readable_name or "").upper()
        return f"{name} {err.message}"
    return " ".join(err.format_message().split())


# the declarations of options that are no config field and need nothing else: any text, a port
TEXT = Text()
PORT = Number(ints(1, 65_535))
