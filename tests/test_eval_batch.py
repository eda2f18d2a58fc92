"""The eval pass's automatic batch size (memdash/integrations/eval_batch.py): bytes per
example counted by hand on a two-module network, the power of two under the budget, its
bounds, and the refusals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from memdash.integrations.eval_batch import (
    MAX_BATCH,
    MIN_BATCH,
    bytes_per_example,
    eval_batch_size,
)
from memdash.integrations.recording import CallbackRecording


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU())


def test_bytes_per_example_sums_the_input_and_every_leaf_output():
    # per example: input 4 floats, Linear 3, ReLU 3 (the Sequential is no leaf) = 10 x 4 bytes
    net = _net().train()
    assert bytes_per_example(net, torch.ones(3, 4)) == 40.0
    assert net.training  # the probe runs in eval mode and restores the mode


@pytest.mark.parametrize(
    ("budget", "n", "expected"),
    [
        (10_000, 1000, 128),  # 10_000 / 40 = 250 examples fit: 128 the power of two below
        (40 * 4096, 1000, 1000),  # 4096 fit, but there are only 1000 examples
        (40 * 1_000_000, 100_000, MAX_BATCH),  # a million fit: capped
        (100, 1000, MIN_BATCH),  # 2 fit: at least MIN_BATCH
    ],
)
def test_eval_batch_size_is_the_largest_power_of_two_that_fits(budget, n, expected):
    assert eval_batch_size(_net(), torch.ones(n, 4), budget=budget) == expected


def test_eval_batch_size_refuses_no_examples_and_no_budget():
    with pytest.raises(ValueError, match="no examples"):
        eval_batch_size(_net(), torch.ones(0, 4))
    with pytest.raises(ValueError, match="budget must be positive, got 0 bytes"):
        eval_batch_size(_net(), torch.ones(5, 4), budget=0)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_callback_recording_refuses_a_batch_that_is_no_positive_count(tmp_path, bad):
    with pytest.raises(ValueError, match=f"eval_batch_size must be a positive .*got {bad!r}"):
        CallbackRecording(
            tmp_path / "r", torch.ones(3, 4), torch.tensor([0, 1, 2]), 3, eval_batch_size=bad
        )
    assert not (tmp_path / "r").exists()
