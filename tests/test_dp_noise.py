"""DP-SGD's noise (issue #25): `dp_noise.LeanNoise` adds the very values Opacus's
`DPOptimizerFastGradientClipping.add_noise` adds, from the same generator stream."""

from dataclasses import replace

import pytest
import torch
from conftest import tiny_config
from opacus.optimizers import DPOptimizerFastGradientClipping
from torch import nn

from memdash.analysis.record import training
from memdash.analysis.record.config import DPConfig
from memdash.analysis.record.dp import DPTraining
from memdash.analysis.record.dp_noise import LeanNoise

# sizes below 16, not a multiple of 16 and a multiple of 16 (torch's three normal paths)
SHAPES = [(5, 3), (7,), (20, 4), (33,)]


def _noised(cls, noise_multiplier: float, *, secure_mode: bool = False, steps: int = 2):
    torch.manual_seed(0)
    params = [nn.Parameter(torch.randn(s)) for s in SHAPES]
    opt = cls(
        torch.optim.SGD(params, lr=0.1),
        noise_multiplier=noise_multiplier,
        max_grad_norm=0.7,
        expected_batch_size=4,
        secure_mode=secure_mode,
    )
    opt.generator = torch.Generator().manual_seed(3)
    out = []
    for step in range(steps):
        for p in params:
            p.summed_grad = torch.full(p.shape, float(step + 1))
        opt.add_noise()
        out.append([p.grad.clone() for p in params])
    with pytest.raises(ValueError, match="haven't been cleared"):
        opt.add_noise()  # the same sums twice: Opacus's guard holds
    return out


@pytest.mark.parametrize(("sigma", "secure"), [(1.3, False), (0.0, False), (1.0, True)])
def test_lean_noise_adds_opacus_values_bit_for_bit(sigma, secure):
    want = _noised(DPOptimizerFastGradientClipping, sigma, secure_mode=secure)
    got = _noised(LeanNoise, sigma, secure_mode=secure)
    for step_want, step_got in zip(want, got, strict=True):
        for w, g in zip(step_want, step_got, strict=True):
            assert torch.equal(w, g)
    if sigma == 0:
        assert torch.equal(got[0][0], torch.ones(SHAPES[0]))
    else:
        assert not torch.equal(got[0][0], torch.ones(SHAPES[0]))


def test_dp_training_noises_with_lean_noise():
    config = tiny_config()
    config = replace(config, train=replace(config.train, dp=DPConfig(noise_multiplier=1.0)))
    model = training.make_model(config, (8,), 4)
    private = DPTraining(config, model, training.make_optimizer(config, model), 32)
    assert isinstance(private.optimizer, LeanNoise)
