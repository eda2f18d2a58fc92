"""Run configuration: one frozen dataclass, parsed at the edges (CLI, run.json).

Computations receive plain values taken from it, never the object of a parser.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from memdash.analysis.measures.neighbors import METRICS as KNN_METRICS

DATASETS = ("digits", "mnist1d", "synthetic", "npz", "folder", "hf")
MODELS = ("mlp", "cnn", "resnet")
OPTIMIZERS = ("sgd", "adam")
CORRUPTIONS = ("symmetric", "random_labels", "random_inputs")


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
    return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


@dataclass(frozen=True)
class AnalysisConfig:
    """How `memdash analyze` computes derived results; each step's cache key holds its fields."""

    knn_k: int = 30  # neighbours that vote (Cohen et al.'s k)
    knn_metric: str = "l1"  # one of KNN_METRICS; Cohen et al. use L1
    knn_pca: int | None = None  # PCA dimensions before the k-NN (Cohen et al. offer 64); None: off
    knn_leave_one_out: bool = True  # a training point does not vote for itself
    umap_neighbors: int = 15  # UMAP's n_neighbors
    umap_min_dist: float = 0.1  # UMAP's min_dist
    seed: int = 0  # UMAP's random_state

    def __post_init__(self) -> None:
        _choice("k-NN metric", self.knn_metric, KNN_METRICS)
        if self.knn_k < 1 or self.umap_neighbors < 2:
            raise ValueError("knn_k must be >= 1 and umap_neighbors >= 2")
        if self.knn_pca is not None and self.knn_pca < 1:
            raise ValueError(f"knn_pca must be >= 1 or None, got {self.knn_pca}")
        if self.umap_min_dist < 0:
            raise ValueError(f"umap_min_dist must be >= 0, got {self.umap_min_dist}")

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
        if self.retrain_epochs < 0 or self.flip_examples < 0 or self.flip_max_units < 0:
            raise ValueError("retrain_epochs, flip_examples and flip_max_units must be >= 0")
        if self.flip_others < 1:
            raise ValueError(f"flip_others must be >= 1, got {self.flip_others}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def validate(config: RunConfig) -> None:
    """Raise ValueError naming the first field that is out of range."""
    d, m, t, r = config.data, config.model, config.train, config.record
    _choice("dataset", d.dataset, DATASETS)
    _choice("corruption", d.corruption, CORRUPTIONS)
    _choice("model", m.name, MODELS)
    _choice("optimizer", t.optimizer, OPTIMIZERS)
    _choice("embed_dtype", r.embed_dtype, ("float16", "float32"))
    if d.dataset == "npz" and not d.path:
        raise ValueError("dataset 'npz' needs a path to the .npz file")
    if d.dataset == "folder" and not d.path:
        raise ValueError("dataset 'folder' needs --data-path DIR, a folder of class subfolders")
    if d.dataset == "hf" and not d.path:
        raise ValueError("dataset 'hf' needs --data-path DIR, a dataset saved with save_to_disk")
    if d.image_size is not None and (len(d.image_size) != 2 or min(d.image_size) < 1):
        raise ValueError(f"image_size must be (height, width) >= 1, got {d.image_size}")
    if d.seed is not None and d.seed < 0:
        raise ValueError(f"the data seed must be >= 0, got {d.seed}")
    if not 0.0 <= d.noise <= 1.0:
        raise ValueError(f"noise must lie in [0, 1], got {d.noise}")
    if not 0.0 < d.test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {d.test_fraction}")
    if m.width < 1:
        raise ValueError(f"the ResNet's width must be >= 1, got {m.width}")
    if not 0.0 <= m.dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {m.dropout}")
    if m.example_tied_dropout and not (0 < m.p_fixed <= 1 and 0 <= m.p_mem <= 1):
        raise ValueError(f"need 0 < p_fixed <= 1 and 0 <= p_mem <= 1, got {m.p_fixed}, {m.p_mem}")
    if t.init_from is None and (t.init_epoch is not None or t.reinit):
        raise ValueError("--init-epoch and --reinit need --init-from")
    if t.epochs < 1 or t.batch_size < 1 or t.lr <= 0:
        raise ValueError("epochs, batch_size and lr must be positive")
    if d.canaries < 0 or any(rep < 1 for rep in d.canary_repeats):
        raise ValueError("canaries must be >= 0 and every canary repeat count >= 1")
    if d.canaries and d.reference_canaries < 2:
        raise ValueError("canaries need at least 2 reference canaries")
    if r.critical_examples < 0 or r.critical_radius <= 0 or r.critical_steps < 1:
        raise ValueError(
            "critical samples need examples >= 0, a radius > 0 and at least one step, got "
            f"{r.critical_examples}, {r.critical_radius}, {r.critical_steps}"
        )
    bad = [e for e in (*r.embed_epochs, *r.checkpoint_epochs) if not 0 <= e <= t.epochs]
    if bad:
        raise ValueError(f"recorded epochs must lie in 0..{t.epochs}, got {bad}")


def _choice(what: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")
