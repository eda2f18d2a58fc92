"""The recorder's eval pass (analysis/record/eval_pass.py) under torch.inference_mode: its
logits equal a hand-written eval-mode forward in any batch size, and a buffer the pass
creates lazily is left usable by training."""

from __future__ import annotations

import torch
from torch import nn

from memdash.analysis.record.eval_pass import eval_logits, normal_buffers


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
