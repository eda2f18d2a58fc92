"""Seeded tiny fixtures shared by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from memdash.analysis.config import DataConfig, ModelConfig, RecordConfig, RunConfig, TrainConfig
from memdash.analysis.training import train

ROOT = Path(__file__).resolve().parents[1]


def tiny_config(**overrides) -> RunConfig:
    """A synthetic 200-example, 4-class run that trains in about a second."""
    data = DataConfig(dataset="synthetic", n_examples=200, shape=(8,), n_classes=4, noise=0.2)
    parts = {
        "data": data,
        "model": ModelConfig(hidden=(16, 8)),
        "train": TrainConfig(epochs=4, batch_size=16, lr=0.05),
        "record": RecordConfig(
            embed_layers=("fc1", "out"), embed_epochs=(0, 4), checkpoint_epochs=(0, 2, 4)
        ),
        "seed": 3,
    }
    parts.update(overrides)
    return RunConfig(**parts)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A complete tiny run with both trace sources, embeddings, checkpoints and layer grads."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(tiny_config(), out)
    return out


@pytest.fixture(scope="session")
def canary_run(tmp_path_factory) -> Path:
    """The tiny run with 2 canaries per repeat count (1, 10, 50) and 40 references."""
    from dataclasses import replace

    config = tiny_config()
    config = replace(config, data=replace(config.data, canaries=2, reference_canaries=40))
    out = tmp_path_factory.mktemp("runs") / "canaries"
    train(config, out)
    return out
