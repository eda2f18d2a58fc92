"""Seeded tiny fixtures shared by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memdash.analysis.record.config import (
    DataConfig,
    ModelConfig,
    RecordConfig,
    RunConfig,
    TrainConfig,
)
from memdash.analysis.record.training import train

ROOT = Path(__file__).resolve().parents[1]
# five examples (the example tables' tests): 0 clean, 1 flipped, 2 clean, 3 test, 4 canary
FIVE = pd.DataFrame(
    {
        "example_id": np.arange(5),
        "split": ["train", "train", "train", "test", "train"],
        "label": [0, 1, 1, 0, 2],
        "true_label": [0, 0, 1, 0, 2],
        "is_noisy": [False, True, False, False, False],
        "is_canary": [False, False, False, False, True],
    }
)


def naive_clipped_sum(model, x, y, clip):
    """DP-SGD's clipped gradient sum by a loop over examples with plain autograd: each
    example's gradient and norm, clipped to `clip` (Opacus's factor), summed. Returns (the
    sums per parameter, the norms (B,) before clipping): what the DP paths are tested against."""
    import torch
    import torch.nn.functional as F

    total = [torch.zeros_like(p) for p in model.parameters()]
    norms = []
    for xi, yi in zip(x, y, strict=True):
        model.zero_grad()
        F.cross_entropy(model(xi[None]), yi[None]).backward()
        grads = [p.grad.clone() for p in model.parameters()]
        norm = torch.sqrt(sum(g.square().sum() for g in grads))
        norms.append(norm)
        factor = min(1.0, clip / (float(norm) + 1e-6))
        total = [t + factor * g for t, g in zip(total, grads, strict=True)]
    return total, torch.stack(norms)


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


# ------------------------------------------------------------ the reliability table
# test module (or test name part) -> the area of the reliability table it belongs to
RELIABILITY = {
    "test_fuzz_cli.py": "command options (hypothesis)",
    "test_fuzz_npz.py": "the user's .npz files (hypothesis)",
    "test_fuzz_runs.py": "damaged run files x commands",
    "test_damaged_runs.py": "damaged files",
    "test_crash.py": "SIGKILLed writers, rerun identical",
    "test_disks.py": "read-only and full disks",
    "test_load.py": "load (8 browser sessions)",
    "hostile": "dashboard hardening",
    "html_or_markdown": "dashboard hardening",
    "unknown_name": "dashboard hardening",
    "damaged": "dashboard hardening",
    "truncated_trace": "dashboard hardening",
    "loopback": "dashboard hardening",
}
_OUTCOMES: dict[str, list[bool]] = {}


def _area(nodeid: str) -> str | None:
    module, _, name = nodeid.partition("::")
    if Path(module).name in RELIABILITY:
        return RELIABILITY[Path(module).name]
    return next((area for part, area in RELIABILITY.items() if part in name), None)


def pytest_runtest_logreport(report) -> None:
    area = _area(report.nodeid)
    if area and (report.when == "call" or report.failed):
        _OUTCOMES.setdefault(area, []).append(report.failed)


def pytest_terminal_summary(terminalreporter) -> None:
    """The table the reliability issue asks for: area, cases tried, failures (goal 0)."""
    import tally

    if not _OUTCOMES:
        return
    write = terminalreporter.write_line
    terminalreporter.section("reliability: cases tried and failures per area")
    write(f"{'area':44} {'cases':>7} {'failed':>7}")
    for area, outcomes in _OUTCOMES.items():
        cases = tally.CASES.get(area) or len(outcomes)
        write(f"{area:44} {cases:>7} {sum(outcomes):>7}")
    for text in tally.LINES:
        write(text)
