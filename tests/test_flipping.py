import pytest
import torch
from torch import nn

from memdash.analysis.localization.flipping import (
    UnitMasks,
    flip_batched,
    flip_one,
    masked_correct,
    units,
)
from memdash.analysis.record.models import Classifier, Dense, cnn, mlp


def _hand_network() -> Classifier:
    """x -> relu(x) (fc1, identity weights) -> logits = hidden (out, identity)."""
    net = Classifier({"fc1": Dense(2, 2, 0.0), "out": nn.Linear(2, 2)}, (2,))
    with torch.no_grad():
        for layer in (net.fc1.linear, net.out):
            layer.weight.copy_(torch.eye(2))
            layer.bias.zero_()
    return net


def test_flipping_a_hand_made_network_zeroes_the_unit_the_example_rests_on():
    # example 0 is class 1 because of hidden unit 1; example 1 (the "others") is
    # class 0 through unit 0. Zeroing unit 1 raises example 0's loss (importance
    # +) and barely touches example 1's; zeroing unit 0 would lower example 0's
    # loss and raise example 1's (importance -).
    net = _hand_network()
    inputs = torch.tensor([[0.2, 1.0], [1.0, 0.1]])
    labels = torch.tensor([1, 0])
    result = flip_batched(
        net, inputs, labels, torch.tensor([0]), torch.tensor([1]), max_units=1, layers=["fc1"]
    )
    assert result.layers == ["fc1"]
    assert result.masks["fc1"][0].tolist() == [True, False]
    assert result.flipped.tolist() == [True] and result.per_layer.tolist() == [[1]]
    assert result.order.tolist() == [[1]] and result.zeroed(0) == [("fc1", 1)]
    assert flip_one(net, inputs, labels, 0, torch.tensor([1]), max_units=1, layers=["fc1"]) == (
        [("fc1", 1)],
        True,
    )
    assert torch.equal(net.fc1.linear.weight, torch.eye(2))  # the model itself is untouched


def _random(kind: str):
    torch.manual_seed(0)
    if kind == "mlp":
        model, x = mlp((12,), 4, hidden=(16, 8)), torch.randn(60, 12)
    else:
        model, x = cnn((1, 16), 4, channels=(4, 6), hidden=(8,)), torch.randn(60, 1, 16)
    with torch.no_grad():
        y = model(x).argmax(1)  # every example starts predicted with its label
    return model, x, y


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_batched_flipping_equals_the_one_example_definition(kind):
    model, x, y = _random(kind)
    examples, others = torch.arange(12), torch.arange(5, 25)  # 5..11 are among the others
    result = flip_batched(model, x, y, examples, others, max_units=12, max_rows=60)  # 2 per chunk
    assert result.neurons_zeroed.max() > 1  # not all trivial
    for i in range(12):
        order, flipped = flip_one(model, x, y, i, others, max_units=12)
        zeroed = {(n, int(u)) for n in result.layers for u in torch.nonzero(~result.masks[n][i])}
        assert set(order) == zeroed and len(order) == result.neurons_zeroed[i]
        assert result.zeroed(i) == order  # the same units in the same order
        assert (result.order[i] >= 0).sum() == len(order)
        assert flipped == result.flipped[i]
        assert [sum(n == layer for n, _ in order) for layer in result.layers] == list(
            result.per_layer[i]
        )


def test_the_cap_stops_flipping():
    model, x, y = _random("mlp")
    result = flip_batched(model, x, y, torch.arange(5), torch.arange(10, 20), max_units=0)
    assert result.neurons_zeroed.tolist() == [0] * 5 and not result.flipped.any()
    with pytest.raises(ValueError, match=r"max_units must lie in 0..27"):
        flip_batched(model, x, y, torch.arange(5), torch.arange(10, 20), max_units=28)
    with pytest.raises(ValueError, match=r"unknown layer\(s\) \['fc9'\]"):
        flip_batched(model, x, y, torch.arange(5), torch.arange(10, 20), layers=["fc9"])


def test_masked_correct_equals_zeroing_the_weights():
    model, x, y = _random("mlp")
    masks = {"fc1": torch.ones(2, 16, dtype=torch.bool), "fc2": torch.ones(2, 8, dtype=torch.bool)}
    masks["fc2"][1, [0, 3, 5]] = False
    ids = torch.arange(60)
    got = masked_correct(model, x, y, masks, ids, max_rows=50)
    assert got.shape == (2, 60) and got[0].all()  # unmasked: labels are the predictions
    with torch.no_grad():
        model.fc2.linear.weight[[0, 3, 5]] = 0
        model.fc2.linear.bias[[0, 3, 5]] = 0
        expect = model(x).argmax(1) == y
    assert torch.equal(got[1], expect) and not expect.all()


def _rows_per_pass(model: nn.Module) -> tuple[list[int], torch.utils.hooks.RemovableHandle]:
    rows: list[int] = []
    handle = model.register_forward_hook(lambda _m, inputs, _out: rows.append(len(inputs[0])))
    return rows, handle


def test_examples_with_one_mask_share_the_others_pass():
    # the same example three times: its three masks stay identical, so each step runs
    # the three own rows, then the one other once (not once per example):
    # step 0: 3 own rows, 1 other row; step 1: 3 own rows, all flipped
    net = _hand_network()
    inputs, labels = torch.tensor([[0.2, 1.0], [1.0, 0.1]]), torch.tensor([1, 0])
    rows, handle = _rows_per_pass(net)
    result = flip_batched(
        net, inputs, labels, torch.tensor([0, 0, 0]), torch.tensor([1]), max_units=1, layers=["fc1"]
    )
    handle.remove()
    assert rows == [3, 1, 3]
    assert result.order.tolist() == [[1]] * 3 and result.flipped.tolist() == [True] * 3


def test_at_step_0_every_mask_is_empty_and_one_others_pass_serves_all():
    model, x, y = _random("mlp")
    rows, handle = _rows_per_pass(model)
    flip_batched(model, x, y, torch.arange(4), torch.arange(10, 30), max_units=1)
    handle.remove()
    # step 0: the 4 own rows, then the 20 others once; step 1: the 4 own rows (cap)
    assert rows == [4, 20, 4]


def test_unit_masks_by_block_equal_masks_by_row():
    model, x, _ = _random("cnn")
    modules = units(model)
    masks = {
        n: torch.rand(3, m.out_channels if hasattr(m, "out_channels") else m.out_features) > 0.3
        for n, m in modules.items()
    }
    hooks = UnitMasks(modules)
    with torch.no_grad():
        with hooks.applied(masks, None):
            by_block = model(x[:12])
        with hooks.applied(masks, torch.arange(3).repeat_interleave(4)):
            by_row = model(x[:12])
    assert torch.equal(by_block, by_row)


def test_examples_must_be_one_dimensional():
    model, x, y = _random("mlp")
    with pytest.raises(
        ValueError, match=r"examples must be a 1-D tensor of ids, got shape \(2, 2\)"
    ):
        flip_batched(
            model, x, y, torch.zeros(2, 2, dtype=torch.long), torch.arange(10, 20), max_units=5
        )
