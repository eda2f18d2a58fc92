"""The type and accepted values of every option of every command (how a value outside them is
refused: `specs`).

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

from typing import Any

from memdash.analysis.cli.basics import refuse
from memdash.analysis.cli.specs import (
    Device,
    Names,
    Number,
    Numbers,
    OneOf,
    OutOfRange,
    Spec,
    number_of,
)
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
from memdash.analysis.record.ranges import ints, reals


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
            first = number_of(low, True)
            last = number_of(high, True) if dash else first
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


# ------------------------------------------------------------------ the shared declarations
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
