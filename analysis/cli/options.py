"""The type and accepted values of every option of every command, and how a value outside them
is refused.

Each option is declared with `option(default, SPEC, help)`: SPEC parses the option's text
(and its default) into the value the command receives, or raises `OutOfRange` with what it
accepts. The number fields of the run and analysis configs take their range from
`record.config.RANGES` (`field`), so an option and a run.json are held to the same range;
the options that are no config field declare theirs here. Every command is a `Checked`
command: a usage error (a value out of range or of the wrong type, an unknown or a missing
option) is one line naming the option and what it accepts, exit code 2, raised while the
options are parsed, before the command has read or written anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import typer
from typer.core import TyperCommand

from memdash.analysis.cli._common import refuse
from memdash.analysis.measures.neighbors import METRICS as KNN_METRICS
from memdash.analysis.record.config import (
    CHUNKINGS,
    CORRUPTIONS,
    DATASETS,
    EMBED_POOLS,
    LM_MODELS,
    MODELS,
    OPTIMIZERS,
    RANGES,
    SEED_MAX,
    TEXT_CORPORA,
    TOKENIZERS,
    DPConfig,
)
from memdash.analysis.record.ranges import Range, ints, reals


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
        number = _number(value, self.range.integer)
        if number is None or not self.range.admits(number):
            raise OutOfRange(self.range.number(), value)
        return number


def _number(value: Any, integer: bool) -> int | float | None:
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
        numbers = tuple(_number(p, self.range.integer) for p in text.split(",") if p.strip())
        if None in numbers or self.range.problem(numbers) is not None:
            raise OutOfRange(self.expected(), value)
        return numbers  # type: ignore[return-value]


class ImageSize(Numbers):
    """ "32x32", or "32" for a square, as (height, width); "" keeps the images' size (None)."""

    def __init__(self) -> None:
        size = RANGES["data.image_size"]  # (height, width); one number for a square
        super().__init__(ints(size.low, size.high, items=(1, 2)), by_x=True)
        self.metavar = "<HxW>"

    def __call__(self, value: Any) -> tuple[int, ...] | None:
        if value is None or not str(value).strip():
            return None
        size = super().__call__(value)
        return size * 2 if len(size) == 1 else size  # type: ignore[return-value]


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


class Seeds(Spec):
    """A seed group: "0-4", "0,3,7" or both ("0-2,9"), 1 to 1000 distinct seeds; "" none."""

    metavar = "<seeds>"
    EXPECTED = f"seeds in 0..{SEED_MAX} like 0-4 or 0,3,7 (1 to 1000 of them)"

    def __call__(self, value: Any) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        found: set[int] = set()
        for part in (p.strip() for p in str(value).split(",") if p.strip()):
            low, dash, high = part.partition("-")
            first, last = _number(low, True), _number(high, True) if dash else _number(low, True)
            bad = first is None or last is None or not 0 <= first <= last <= SEED_MAX
            if bad or last - first > 999:
                raise OutOfRange(self.EXPECTED, value)
            found.update(range(first, last + 1))
            if len(found) > 1000:
                raise OutOfRange(self.EXPECTED, value)
        if str(value).strip() and not found:
            raise OutOfRange(self.EXPECTED, value)
        return tuple(sorted(found))


def field(key: str) -> Number | Numbers:
    """The option of a config field ("train.lr"): its range is the config's (RANGES)."""
    accepted = RANGES[key]
    return Number(accepted) if accepted.items is None else Numbers(accepted)


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


# ------------------------------------------------------------------ the shared declarations
TEXT = Text()
SEED = field("run.seed")
OPTIONAL_SEED = field("data.seed")
DEVICE = Device()
DATASET = OneOf(DATASETS)
ARCHITECTURE = OneOf(MODELS + LM_MODELS)
TEXT_CORPUS = OneOf(TEXT_CORPORA)
CHUNKING = OneOf(CHUNKINGS)
TOKENIZER = OneOf(TOKENIZERS)
EMBED_POOL = OneOf(EMBED_POOLS)
OPTIMIZER = OneOf(OPTIMIZERS)
CORRUPTION = OneOf(CORRUPTIONS)
KNN_METRIC = OneOf(KNN_METRICS)
EMBED_DTYPE = OneOf(("float16", "float32"))
LAYERS = Names()
HIDDEN = field("model.hidden")
EPOCH_LIST = field("record.embed_epochs")
KNN_PCA = Number(ints(0, RANGES["analysis.knn_pca"].high))  # 0: off (the config's None)
PORT = Number(ints(1, 65_535))
# DP-SGD (train and estimate): the fields of record.config.DPConfig
DP_EPSILON = field("dp.epsilon")
DP_DELTA = field("dp.delta")
DP_CLIP = field("dp.clip")
DP_NOISE = field("dp.noise_multiplier")
# memdash estimate's own (no config fields: its EstimateSpec)
MODELS_PER_RATIO = Number(ints(2, 1_000_000))
MODELS_PER_BATCH = Number(ints(1, 10_000))
SUBSET = Number(reals(0, 1, open_low=True, open_high=True))
RATIOS = Numbers(reals(0, 1, open_low=True, open_high=True, items=(0, 100)))
WORKERS = Number(ints(1, 4096))
BUDGET = Numbers(ints(1, 1_000_000, items=(0, 64)))  # reference-model counts of the sweep


def _backends() -> tuple[str, ...]:
    from memdash.analysis.record.cluster import BACKENDS

    return BACKENDS


def _sources() -> tuple[str, ...]:
    from memdash.analysis.store.sources import SOURCES

    return tuple(SOURCES)


def _similarity_measures() -> tuple[str, ...]:
    from memdash.analysis.tables.similarity import MEASURES

    return tuple(MEASURES)


BACKEND = OneOf(_backends)
SOURCE = OneOf(_sources)
SIMILARITY_MEASURES = Names(_similarity_measures)


def steps_of(table: str) -> Names:
    """The --only of a command: names of the pipeline's `table` ("STEPS", "LOCALIZE_STEPS")."""

    def names() -> tuple[str, ...]:
        from memdash.analysis.steps import pipeline

        return tuple(getattr(pipeline, table))

    return Names(names)


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


def dp_options(
    epsilon: float | None, delta: float | None, clip: float | None, noise: float | None
) -> DPConfig | None:
    """The DP-SGD config of --dp-epsilon/--dp-delta/--dp-clip/--dp-noise (None: none given);
    refused (one line, exit code 2) with both a target epsilon and a noise, or with only a
    delta or a clip."""
    if epsilon is not None and noise is not None:
        refuse("--dp-epsilon and --dp-noise: give one (the noise follows from the epsilon)")
    if epsilon is None and noise is None:
        if delta is not None or clip is not None:
            refuse("--dp-delta and --dp-clip need --dp-epsilon or --dp-noise (DP-SGD's noise)")
        return None
    default = DPConfig()
    return DPConfig(
        epsilon=epsilon,
        delta=default.delta if delta is None else delta,
        clip=default.clip if clip is None else clip,
        noise_multiplier=noise,
    )
