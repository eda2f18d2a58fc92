"""The recorder's eval pass (analysis/record/eval_pass.py) under torch.inference_mode: its
logits equal a hand-written eval-mode forward in any batch size, and a buffer the pass
creates lazily is left usable by training."""

from __future__ import annotations

import torch
from torch import nn

from memdash.analysis.record.eval_pass import channels_last_pools, eval_logits, normal_buffers


class LazyScale(nn.Module):
    """Scales its input by a buffer built on the first forward (a lazily made cache)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 3)
        self.register_buffer("scale", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale is None:
            self.scale = torch.full((3,), 2.0)
        return self.fc(x) * self.scale


def test_eval_logits_equal_the_eval_mode_forward_in_any_batch_size():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2)).eval()
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    expected = net[2](net[0](x)).detach()  # dropout is the identity in eval mode
    for batch in (1, 2, 5):
        logits, grads = eval_logits(net, x, y, batch)
        torch.testing.assert_close(logits, expected)
        assert grads is None and logits.is_inference()


def test_a_buffer_made_by_the_inference_pass_can_be_trained_with():
    torch.manual_seed(0)
    net = LazyScale().eval()
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    logits, _ = eval_logits(net, x, torch.tensor([0, 1, 2]), 2)
    assert not net.scale.is_inference()
    torch.testing.assert_close(logits, 2.0 * net.fc(x).detach())
    net.train()
    net(x).sum().backward()  # autograd would refuse an inference-mode buffer
    torch.testing.assert_close(net.fc.bias.grad, torch.full((3,), 6.0))  # 3 rows x scale 2


def test_normal_buffers_leaves_normal_buffers_as_they_are():
    bn = nn.BatchNorm1d(2)
    before = bn.running_mean
    normal_buffers(bn)
    assert bn.running_mean is before


def test_max_pools_in_channels_last_give_the_same_values_in_the_usual_layout():
    pool = nn.MaxPool2d(2)
    x = torch.arange(32.0).reshape(1, 2, 4, 4)  # two channels, each plane 0..15 and 16..31
    with channels_last_pools(pool):
        out = pool(x)
    expected = torch.tensor([[[[5.0, 7.0], [13.0, 15.0]], [[21.0, 23.0], [29.0, 31.0]]]])
    assert torch.equal(out, expected) and out.is_contiguous()
    assert not pool._forward_pre_hooks and not pool._forward_hooks  # removed on leaving


def test_channels_last_pools_leave_other_layouts_and_index_pools_alone():
    x = torch.arange(32.0).reshape(1, 2, 4, 4).contiguous(memory_format=torch.channels_last)
    pool, with_indices = nn.MaxPool2d(2), nn.MaxPool2d(2, return_indices=True)
    with channels_last_pools(pool), channels_last_pools(with_indices):
        out = pool(x)
        values, indices = with_indices(x.contiguous())
    assert out.is_contiguous(memory_format=torch.channels_last)  # the user's layout kept
    assert not with_indices._forward_pre_hooks
    torch.testing.assert_close(indices[0, 0], torch.tensor([[5, 7], [13, 15]]))


def test_a_cnn_eval_pass_equals_its_plain_forward_bit_for_bit():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 2)
    ).eval()
    x, y = torch.randn(4, 1, 4, 4), torch.tensor([0, 1, 1, 0])
    for batch in (1, 3, 4):
        with torch.no_grad():  # the pass before issue 28: no_grad, the default layout
            expected = torch.cat([net(part) for part in torch.split(x, batch)])
        logits, _ = eval_logits(net, x, y, batch)
        assert torch.equal(logits, expected)
    assert not net[2]._forward_pre_hooks
