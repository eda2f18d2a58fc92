import numpy as np
import pytest
import torch

from memdash.analysis.record.models import mlp
from memdash.analysis.record.tied_dropout import (
    ExampleTiedDropout,
    channel_uniforms,
    example_ids,
    tied_mask,
    tied_mode,
)


def test_masks_are_deterministic_per_example_and_equal_in_torch_and_numpy():
    ids = torch.tensor([0, 5, 5, 123_456])
    a = tied_mask(ids, 40, p_fixed=0.2, p_mem=0.1, seed=7)
    b = tied_mask(ids.numpy(), 40, p_fixed=0.2, p_mem=0.1, seed=7)
    np.testing.assert_array_equal(a.numpy(), b)
    assert torch.equal(a[1], a[2])  # the same example, the same mask
    assert (a[:, :8] == 1).all()  # int(0.2 * 40) generalization channels always kept
    assert not torch.equal(tied_mask(ids, 40, p_fixed=0.2, p_mem=0.1, seed=8), a)


def test_memorization_channels_are_kept_with_probability_p_mem():
    u = channel_uniforms(np.arange(20_000), 50, seed=0)
    assert u.min() >= 0 and u.max() < 1
    kept = tied_mask(np.arange(20_000), 50, p_fixed=0.2, p_mem=0.1, seed=0)[:, 10:]
    assert kept.mean() == pytest.approx(0.1, abs=0.003)
    # channels and examples are not correlated: each channel, each example near p_mem
    assert np.abs(kept.mean(axis=0) - 0.1).max() < 0.015


def test_the_same_mask_in_training_and_evaluation_and_drop_mode_by_hand():
    layer = ExampleTiedDropout(0.5, 0.25, seed=3)
    x = torch.arange(1.0, 9.0).repeat(2, 1)  # 2 examples, 8 channels
    ids = torch.tensor([10, 11])
    layer.ids = ids
    layer.train()
    trained = layer(x)
    layer.eval()
    assert torch.equal(layer(x), trained)
    expect = x * tied_mask(ids, 8, p_fixed=0.5, p_mem=0.25, seed=3)
    assert torch.equal(trained, expect)
    layer.mode = "drop"
    # channels 0-3 kept and scaled by (0.5 + 0.25) / 0.5, channels 4-7 zeroed
    assert torch.equal(layer(x)[0], torch.tensor([1.5, 3.0, 4.5, 6.0, 0, 0, 0, 0]))


def test_convolution_channels_share_one_mask_over_positions():
    layer = ExampleTiedDropout(0.25, 0.5, seed=0)
    layer.ids = torch.tensor([4])
    out = layer(torch.ones(1, 8, 5))
    assert (out == out[:, :, :1]).all()  # constant along the length
    assert torch.equal(out[0, :, 0], tied_mask(layer.ids, 8, p_fixed=0.25, p_mem=0.5, seed=0)[0])


def test_without_ids_the_layer_says_how_to_give_them_and_stores_nothing():
    model = mlp((4,), 3, hidden=(8,), tied=(0.2, 0.1, 0))
    with pytest.raises(RuntimeError, match="example_ids"):
        model(torch.zeros(2, 4))
    with example_ids(model, torch.tensor([0, 1])):
        assert model(torch.zeros(2, 4)).shape == (2, 3)
    assert model.fc1.drop.ids is None  # cleared afterwards
    assert not [k for k in model.state_dict() if "drop" in k]  # masks are never stored
    with tied_mode(model, "drop"):
        assert model(torch.zeros(2, 4)).shape == (2, 3)  # drop mode needs no ids
    assert model.fc1.drop.mode == "keep"
    with (
        pytest.raises(ValueError, match="unknown example-tied dropout mode 'half'"),
        tied_mode(model, "half"),
    ):
        pass


def test_example_ids_is_a_no_op_for_other_models():
    model = mlp((4,), 3, hidden=(8,))
    with example_ids(model, torch.tensor([0])):
        assert model(torch.zeros(1, 4)).shape == (1, 3)
