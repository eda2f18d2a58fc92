"""Run configuration: one frozen dataclass, parsed at the edges (CLI, run.json).

Computations receive plain values taken from it, never the object of a parser. `RANGES`
declares the values every number field accepts; `validate` (a run's config) and the analysis
configs check them, and the command line reads them into its options (`memdash.analysis.cli.
options`), so that a value is refused with the same range wherever it comes from.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from memdash.analysis.measures.neighbors import DEFAULT_PROBES, check_knn_options
from memdash.analysis.record.input_forms import check_sources
from memdash.analysis.record.privacy import DP_RANGES, DPConfig, check_dp
from memdash.analysis.record.ranges import Range, ints, reals

DATASETS = ("digits", "mnist1d", "synthetic", "npz", "folder", "hf", "text")
MODELS = ("mlp", "cnn", "resnet")
LM_MODELS = ("gpt", "lstm", "hf")  # causal language models, for text runs
TEXT_CORPORA = ("synthetic", "python-docs")
CHUNKINGS = ("lines", "chunks")
TOKENIZERS = ("byte", "bpe", "hf")
EMBED_POOLS = ("last", "mean")
OPTIMIZERS = ("sgd", "adam")
CORRUPTIONS = ("symmetric", "random_labels", "random_inputs")
SEED_MAX = 2**32 - 1  # numpy's legacy RandomState (UMAP's random_state) takes seeds below 2**32
EPOCHS_MAX = 100_000

SEED = ints(0, SEED_MAX)
EPOCH_LIST = ints(0, EPOCHS_MAX, items=(0, None))
# every number field of the configs below, as "part.field": what it accepts
RANGES: dict[str, Range] = {
    # the data
    "data.image_size": ints(1, 65_536, items=(2, 2), optional=True),
    "data.test_fraction": reals(0, 1, open_low=True, open_high=True),
    "data.n_examples": ints(1, 1_000_000_000, optional=True),
    "data.shape": ints(1, 10_000_000, items=(1, 3)),
    "data.n_classes": ints(2, 100_000),
    "data.noise": reals(0, 1),
    "data.canaries": ints(0, 10_000_000),
    "data.canary_repeats": ints(1, 100_000, items=(1, 100)),
    "data.reference_canaries": ints(0, 10_000_000),
    "data.seed": Range(0, SEED_MAX, optional=True),
    "data.seq_len": ints(2, 1_000_000),
    "data.vocab_size": ints(257, 1_000_000),  # the 256 bytes and <bos> at least
    "data.duplicate_sequences": ints(0, 10_000_000),
    "data.duplicate_counts": ints(1, 100_000, items=(1, 100)),
    "data.prefix_len": ints(1, 1_000_000),
    "data.suffix_len": ints(1, 1_000_000),
    # the model
    "model.hidden": ints(1, 1_000_000, items=(0, 64)),
    "model.channels": ints(1, 100_000, items=(0, 16)),
    "model.width": ints(1, 100_000),
    "model.dropout": reals(0, 1, open_high=True),
    "model.p_fixed": reals(0, 1, open_low=True),
    "model.p_mem": reals(0, 1),
    "model.n_layers": ints(1, 1_000),
    "model.n_heads": ints(1, 1_000),
    "model.context": ints(0, 1_000_000),
    # the training
    "train.epochs": ints(1, EPOCHS_MAX),
    "train.batch_size": ints(1, 1_000_000),
    "train.lr": reals(0, None, open_low=True),
    "train.momentum": reals(0, 1, open_high=True),
    "train.weight_decay": reals(0, None),
    "train.init_epoch": Range(0, EPOCHS_MAX, optional=True),
    **DP_RANGES,  # DP-SGD's (train.dp)
    # the recorder
    "record.embed_epochs": EPOCH_LIST,
    "record.checkpoint_epochs": EPOCH_LIST,
    "record.eval_batch_size": ints(1, 1_000_000),
    "record.critical_examples": ints(0, 10_000_000),
    "record.critical_radius": reals(0, None, open_low=True),
    "record.critical_steps": ints(1, 100_000),
    "record.curvature_directions": ints(1, 100_000),
    "record.curvature_step": reals(0, None, open_low=True),
    "run.seed": SEED,
    # memdash analyze
    "analysis.knn_k": ints(1, 100_000),
    "analysis.knn_pca": Range(1, 100_000, optional=True),
    "analysis.knn_lists": Range(1, 10_000_000, optional=True),
    "analysis.knn_probes": ints(1, 10_000_000),
    "analysis.umap_neighbors": ints(2, 10_000),
    "analysis.umap_min_dist": reals(0, 1),  # UMAP needs min_dist <= its spread, 1
    "analysis.umap_sample": ints(0, 1_000_000_000),
    "analysis.seed": SEED,
    # memdash localize
    "localize.retrain_epochs": ints(0, EPOCHS_MAX),
    "localize.flip_examples": ints(0, 10_000_000),
    "localize.flip_max_units": ints(0, 10_000_000),
    "localize.flip_others": ints(1, 1_000_000),
    "localize.flip_own_weight": reals(0, None),
    "localize.seed": SEED,
    "localize.init_epoch": Range(0, EPOCHS_MAX, optional=True),
}


def check_ranges(part: str, config: Any) -> None:
    """Raise ValueError naming the first field of `config` (the `part` of RANGES) out of range."""
    for key, accepted in RANGES.items():
        prefix, _, name = key.partition(".")
        if prefix == part:
            value = getattr(config, name)
            problem = accepted.problem(value)
            if problem is not None:
                raise ValueError(f"{key} must be {problem}, got {value!r}")


@dataclass(frozen=True)
class DataConfig:
    """What data a run trains on and how it is corrupted."""

    dataset: str = "digits"  # one of DATASETS
    path: str | None = None  # the user's .npz file, or image folder (dataset="npz", "folder")
    image_size: tuple[int, ...] | None = None  # folder, hf: resize every image to (H, W)
    image_column: str = "image"  # hf: the column of the Image feature
    label_column: str = "label"  # hf: the column of integer labels
    test_fraction: float = 0.2  # held-out share when the source has no test split
    n_examples: int | None = None  # synthetic, mnist1d: examples in all (None = 2000, 5000)
    shape: tuple[int, ...] = (64,)  # synthetic: shape of one input, (D,) or (C, H, W)
    n_classes: int = 10  # synthetic: number of classes
    corruption: str = "symmetric"  # one of CORRUPTIONS, applied at `noise`
    noise: float = 0.0  # share of training examples corrupted (1.0 = all)
    canaries: int = 0  # canaries per repetition count (0 = none)
    canary_repeats: tuple[int, ...] = (1, 10, 50)  # times each canary appears per epoch
    reference_canaries: int = 500  # canaries drawn the same way, never trained on
    seed: int | None = None  # split, corruption and canaries; None = the run's seed
    # text runs (dataset "text", or "hf" with a text_column): sequences are the examples
    text_corpus: str = "synthetic"  # text without a path: one of TEXT_CORPORA
    text_column: str | None = None  # hf, .jsonl: the column of text (hf: set for text runs)
    seq_len: int = 64  # tokens per sequence (longer lines are cut; chunks are this long)
    chunking: str = "chunks"  # one of CHUNKINGS: fixed-length chunks, or a sequence per line
    tokenizer: str = "byte"  # one of TOKENIZERS: bytes, a BPE trained on the data, the model's
    vocab_size: int = 512  # bpe: tokens in its vocabulary
    canary_format: str = "my pin is {d}{d}{d}{d}{d}{d}"  # text canaries: {d} = a random digit
    duplicate_sequences: int = 0  # training sequences repeated at each duplicate count
    duplicate_counts: tuple[int, ...] = (1, 2, 4, 8, 16, 32)  # copies of each per epoch
    prefix_len: int = 32  # extraction: the prefix P given to the model (tokens)
    suffix_len: int = 16  # extraction: the suffix S it must reproduce greedily (tokens)


def is_text(data: DataConfig) -> bool:
    """Whether a run's examples are sequences of text (`DataConfig.dataset` ``text``, or
    ``hf`` with a `text_column`)."""
    return data.dataset == "text" or (data.dataset == "hf" and data.text_column is not None)


@dataclass(frozen=True)
class ModelConfig:
    """Which network, with its named layers."""

    name: str = "mlp"  # one of MODELS
    hidden: tuple[int, ...] = (512, 256)  # MLP widths (Feldman & Zhang's MNIST MLP); CNN: dense
    channels: tuple[int, ...] = (32, 64)  # CNN convolution channels, one conv block each
    width: int = 64  # ResNet-9: channels of its first layer (then 2x, 4x, 8x)
    dropout: float = 0.0  # dropout rate after every hidden block
    example_tied_dropout: bool = False  # Maini et al.'s example-tied dropout instead of dropout
    p_fixed: float = 0.2  # tied dropout: fraction of channels always kept (generalization)
    p_mem: float = 0.1  # tied dropout: chance an example keeps each other channel (memorization)
    # causal language models (LM_MODELS); `width` is their hidden size, `dropout` theirs
    n_layers: int = 2  # gpt: transformer blocks; lstm: LSTM layers
    n_heads: int = 4  # gpt: attention heads (width must be a multiple)
    context: int = 0  # gpt: positions; 0 = the data's sequence length + 1 (BOS)
    model_path: str | None = None  # hf: a causal LM checkpoint folder (save_pretrained)


@dataclass(frozen=True)
class TrainConfig:
    """How the network is trained."""

    epochs: int = 60  # training epochs
    batch_size: int = 32  # examples per minibatch
    optimizer: str = "sgd"  # one of OPTIMIZERS
    lr: float = 0.05  # learning rate
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 0.0  # L2 penalty
    device: str = "cpu"  # torch device
    init_from: str | None = None  # start from another run's checkpoint (a run directory)
    init_epoch: int | None = None  # that run's checkpoint epoch (None = its last)
    reinit: tuple[str, ...] = ()  # layers drawn afresh instead (e.g. "out": a new classifier)
    dp: DPConfig | None = None  # DP-SGD's options; None = plain training


@dataclass(frozen=True)
class RecordConfig:
    """What the recorder writes besides the end-of-epoch eval pass."""

    record_train: bool = True  # also keep the training minibatches' own statistics
    grad_accounting: bool | None = None  # clean/noisy gradient norms; None = on when noisy
    embed_layers: tuple[str, ...] = ()  # layers whose outputs are stored
    embed_epochs: tuple[int, ...] = ()  # epochs at which embeddings are stored
    checkpoint_epochs: tuple[int, ...] = (0,)  # epochs whose weights are stored (0 = init)
    embed_dtype: str = "float16"  # float16 or float32
    eval_batch_size: int = 512  # examples per forward pass of the eval pass (cache-sized)
    loss_sensitivity: bool = False  # Arpit et al.: ||dL/dx||_1 per example, a trace column
    critical_examples: int = 0  # Arpit et al.: a seeded subset searched for critical samples
    critical_radius: float = 0.1  # its L-inf box radius (in input units)
    critical_steps: int = 10  # signed-gradient steps of the search (each radius / 4)
    curvature: bool = False  # Garg, Roy et al.: input-loss curvature per example, a trace column
    curvature_directions: int = 10  # its Rademacher directions (the authors' code: niter=10)
    curvature_step: float = 1e-3  # its finite-difference step h (the authors' code: h=1e-3)
    embed_pool: str = "last"  # text runs: a sequence's embedding, the last token's or the mean
    store_inputs: str = "auto"  # full, thumbnail, path (folder, hf); auto: full up to 2 GiB


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run; saved in run.json under `config`."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    seed: int = 0  # the one seed every random choice derives from
    command: str = ""  # the command line that made the run, for reproduction

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        """Rebuild a config from `to_dict` output (lists become tuples)."""
        parts = {
            "data": DataConfig,
            "model": ModelConfig,
            "train": TrainConfig,
            "record": RecordConfig,
        }
        kwargs: dict[str, Any] = {}
        for key, value in raw.items():
            if key in parts:
                kwargs[key] = _build(parts[key], value)
            elif key in ("seed", "command"):
                kwargs[key] = value
            else:
                raise ValueError(f"unknown run config field {key!r}")
        return cls(**kwargs)


def _build(kind: type, raw: dict[str, Any]):
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(raw) - names
    if unknown:
        raise ValueError(f"unknown {kind.__name__} fields: {sorted(unknown)}")
    dp = {"dp": _build(DPConfig, raw["dp"])} if isinstance(raw.get("dp"), dict) else {}
    return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()} | dp)


@dataclass(frozen=True)
class AnalysisConfig:
    """How `memdash analyze` computes derived results; each step's cache key holds its fields."""

    knn_k: int = 30  # neighbours that vote (Cohen et al.'s k)
    knn_metric: str = "l1"  # one of neighbors.METRICS; Cohen et al. use L1
    knn_pca: int | None = None  # PCA dimensions before the k-NN (Cohen et al. offer 64); None: off
    knn_leave_one_out: bool = True  # a training point does not vote for itself
    knn_method: str = "auto"  # one of ivf.KNN_METHODS: exact, ivf, auto (IVF on large sets)
    knn_lists: int | None = None  # IVF's lists; None: ivf.default_lists, 2 sqrt(n_train)
    knn_probes: int = DEFAULT_PROBES  # IVF's lists a query visits (all of them: exact)
    umap_neighbors: int = 15  # UMAP's n_neighbors
    umap_min_dist: float = 0.1  # UMAP's min_dist
    umap_sample: int = 50_000  # above it, fit a seeded sample, transform the rest; 0: all
    seed: int = 0  # UMAP's random_state

    def __post_init__(self) -> None:
        check_ranges("analysis", self)
        check_knn_options(self.knn_metric, self.knn_method, self.knn_lists, self.knn_probes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LocalizeConfig:
    """How `memdash localize` runs Maini et al.'s experiments; each step's key holds its fields."""

    retrain_epochs: int = 10  # retraining: epochs of training the reset layer on clean examples
    flip_examples: int = 200  # flipping: flipped and, as many, clean training examples (seeded)
    flip_max_units: int = 100  # flipping: the cap on zeroed units per example
    flip_others: int = 128  # flipping: size of the fixed batch of other examples
    flip_own_weight: float = 1.0  # flipping: B, the weight of the example's own loss
    flip_output_layer: bool = False  # flipping: may zero output units (class logits) too
    seed: int = 0  # which examples are flipped, the batch of others, the retraining order
    device: str = "cpu"  # torch device
    init_from: str | None = None  # start from another run's checkpoint (a run directory)
    init_epoch: int | None = None  # that run's checkpoint epoch (None = its last)
    reinit: tuple[str, ...] = ()  # layers drawn afresh instead (e.g. "out": a new classifier)

    def __post_init__(self) -> None:
        check_ranges("localize", self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def validate(config: RunConfig) -> None:
    """Raise ValueError naming the first field that is out of range (see `RANGES`), or the
    option of the first value that does not fit the others."""
    d, m, t, r = config.data, config.model, config.train, config.record
    _choice("dataset", d.dataset, DATASETS)
    _choice("corruption", d.corruption, CORRUPTIONS)
    _choice("model", m.name, MODELS + LM_MODELS)
    _choice("optimizer", t.optimizer, OPTIMIZERS)
    _choice("embed_dtype", r.embed_dtype, ("float16", "float32"))
    _choice("embed_pool", r.embed_pool, EMBED_POOLS)
    _choice("text corpus", d.text_corpus, TEXT_CORPORA)
    _choice("chunking", d.chunking, CHUNKINGS)
    _choice("tokenizer", d.tokenizer, TOKENIZERS)
    for part in ("data", "model", "train", "record"):
        check_ranges(part, getattr(config, part))
    check_ranges("run", config)
    if t.dp is not None:  # DP-SGD: its ranges, and what it cannot be combined with
        check_dp(t.dp, text=is_text(d), grad_accounting=r.grad_accounting)
    # what one value needs of the others, in the words of the options that set them
    check_sources(d.dataset, d.path, r.store_inputs, text=is_text(d))
    if d.dataset in ("synthetic", "mnist1d"):
        _check_split(d)
    _check_text(d, m)
    if r.curvature and is_text(d):
        raise ValueError(
            "--record-curvature needs inputs to differentiate: a text run's are tokens"
        )
    if t.init_from is None and (t.init_epoch is not None or t.reinit):
        raise ValueError("--init-epoch and --reinit need --init-from")
    if d.canaries and d.reference_canaries < 2:
        raise ValueError(
            f"--reference-canaries must be >= 2 with canaries, got {d.reference_canaries}"
        )
    for option, epochs in (
        ("--embed-epochs", r.embed_epochs),
        ("--checkpoint-epochs", r.checkpoint_epochs),
    ):
        bad = [e for e in epochs if not 0 <= e <= t.epochs]
        if bad:
            raise ValueError(f"{option} must lie in 0..{t.epochs} (0 to --epochs), got {bad}")


def _check_text(d: DataConfig, m: ModelConfig) -> None:
    """A text run trains a causal language model, and a language model trains on text."""
    text, lm = is_text(d), m.name in LM_MODELS
    if text and not lm:
        raise ValueError(
            f"--model {m.name} is a classifier; text runs train a causal language model: "
            f"--model {', '.join(LM_MODELS)}"
        )
    if lm and not text:
        raise ValueError(
            f"--model {m.name} is a language model; train it on text: --dataset text (or "
            "--dataset hf with --text-column)"
        )
    if not text:
        return
    if d.noise > 0:
        raise ValueError("--noise: text runs have no labels to corrupt; leave --noise at 0")
    if d.prefix_len + d.suffix_len > d.seq_len:
        raise ValueError(
            f"--prefix-len {d.prefix_len} + --suffix-len {d.suffix_len} exceed --seq-len "
            f"{d.seq_len}: extraction needs the prefix and the suffix inside a sequence"
        )
    if m.name == "hf" and not m.model_path:
        raise ValueError("--model hf needs --model-path: a causal LM folder (save_pretrained)")
    if (m.name == "hf") != (d.tokenizer == "hf"):
        raise ValueError(
            "--tokenizer hf is the tokenizer saved with a --model hf checkpoint: use the two "
            f"together (got --model {m.name}, --tokenizer {d.tokenizer})"
        )
    if m.name == "gpt" and m.width % m.n_heads:
        raise ValueError(f"--width {m.width} must be a multiple of --heads {m.n_heads}")
    if m.name == "gpt" and m.context and m.context <= d.seq_len:
        raise ValueError(
            f"--context {m.context} must exceed --seq-len {d.seq_len}: the model reads BOS and "
            "every token of a sequence"
        )


def _check_split(d: DataConfig) -> None:
    """The generated data sets are split with every class on both sides: as many test (and
    training) examples as classes at least."""
    from memdash.analysis.record.data import MNIST1D_DEFAULT_N, SYNTHETIC_DEFAULT_N

    synthetic = d.dataset == "synthetic"
    n = d.n_examples or (SYNTHETIC_DEFAULT_N if synthetic else MNIST1D_DEFAULT_N)
    classes = d.n_classes if synthetic else 10
    test = math.ceil(d.test_fraction * n)
    if min(test, n - test) < classes or n < 2 * classes:
        raise ValueError(
            f"--n-examples {n}: a --test-fraction of {d.test_fraction:g} leaves {test} test and "
            f"{n - test} training examples for {classes} classes, fewer than one of each class "
            "on each side"
        )


def _choice(what: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")
