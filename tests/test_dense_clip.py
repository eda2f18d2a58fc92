"""DP-SGD's dense path (issue #25): the clip factors by hand, the one-backward clipped sum
against Opacus's per-sample gradients clipped and summed, a DP epoch equal to ghost
clipping's, and the models and inputs it refuses."""

import copy
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_config
from opacus import GradSampleModule
from torch import nn

from memdash.analysis.record import training
from memdash.analysis.record.config import DPConfig, ModelConfig
from memdash.analysis.record.dense_clip import DenseClipping, clip_factors, why_not_dense
from memdash.analysis.record.dp import DPTraining
from memdash.analysis.record.models import mlp
from memdash.analysis.record.tied_dropout import example_ids


def test_clip_factors_by_hand():
    """One layer, three examples: ||a||^2 = 1, 4, 2 and ||g||^2 = 1, 0.25, 25, so the squared
    norms are 1*1+1 = 2, 4*0.25+0.25 = 1.25, 2*25+25 = 75; with C = 1.2 the first and last
    are clipped, the second (norm 1.118) is not."""
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    g = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.0], [3.0, 0.0, 4.0]])
    factors, norms = clip_factors([a], [g], 1.2)
    want = torch.tensor([math.sqrt(2), math.sqrt(1.25), math.sqrt(75)])
    torch.testing.assert_close(norms, want)
    torch.testing.assert_close(
        factors, torch.tensor([1.2 / (want[0] + 1e-6), 1.0, 1.2 / (want[2] + 1e-6)])
    )
    # two layers add their squared norms; a leading model axis and padding (0 there)
    factors, norms = clip_factors([a, a], [g, g], 1.2)
    torch.testing.assert_close(norms, want * math.sqrt(2))
    real = torch.tensor([[True, True, False]])
    factors, norms = clip_factors([a[None]], [g[None]], 1.2, real=real)
    torch.testing.assert_close(norms, torch.tensor([[want[0], want[1], 0.0]]))
    assert factors[0, 1] == 1.0 and factors[0, 2] == 0.0


def test_clip_factors_needs_one_gradient_per_layer():
    a = torch.ones(3, 2)
    with pytest.raises(ValueError, match="one gradient per layer input, got 2 and 1"):
        clip_factors([a, a], [a], 1.0)


def _opacus_clipped_sum(model, x, y, clip, ids):
    """Opacus's per-sample gradients (GradSampleModule), clipped and summed by hand."""
    gsm = GradSampleModule(model, batch_first=True, loss_reduction="sum")
    torch.manual_seed(5)  # the dropout masks of the forward
    with example_ids(model, ids):
        F.cross_entropy(gsm(x), y, reduction="sum").backward()
    samples = [p.grad_sample for p in model.parameters()]
    norms = torch.sqrt(sum(s.flatten(1).square().sum(1) for s in samples))
    factors = (clip / (norms + 1e-6)).clamp(max=1.0)
    sums = [(s * factors.view(-1, *[1] * (s.dim() - 1))).sum(0) for s in samples]
    gsm._close()
    return sums, norms


@pytest.mark.parametrize("dropout", ["none", "dropout", "tied"])
def test_the_one_backward_clipped_sum_is_opacus_per_sample_gradients_clipped(dropout):
    """An MLP 5 -> 4 -> 3 on 6 examples, C between the norms (some clipped, some not): the
    dense path's sums equal Opacus's per-sample gradients clipped and summed, with the
    dropout masks the forward drew."""
    torch.manual_seed(0)
    rate = 0.5 if dropout == "dropout" else 0.0
    tied = (0.5, 0.5, 7) if dropout == "tied" else None
    model = mlp((5,), 3, hidden=(4,), dropout=rate, tied=tied).train()
    twin = copy.deepcopy(model)
    x, y, ids = torch.randn(6, 5) * 2, torch.tensor([0, 1, 2, 0, 1, 2]), torch.arange(6)
    _, norms = _opacus_clipped_sum(copy.deepcopy(model), x, y, 1.0, ids)
    clip = float(norms.median())
    want, want_norms = _opacus_clipped_sum(twin, x, y, clip, ids)
    assert (want_norms > clip).sum() >= 2 and (want_norms < clip).sum() >= 2
    dense = DenseClipping(model, clip=clip)
    torch.manual_seed(5)
    with dense.capture(), example_ids(model, ids):
        logits = model(x)
    got_norms = dense.backward(F.cross_entropy(logits, y, reduction="none"))
    torch.testing.assert_close(got_norms, want_norms, rtol=1e-6, atol=1e-6)
    for p, w in zip(model.parameters(), want, strict=True):
        torch.testing.assert_close(p.grad, w, rtol=1e-6, atol=1e-6)


class _Stub:
    def log_batch(self, ids, logits) -> None:
        pass


@pytest.mark.parametrize(
    "model",
    [ModelConfig(hidden=(8,)), ModelConfig(hidden=(8, 6), dropout=0.3)]
    + [ModelConfig(hidden=(8,), example_tied_dropout=True, p_fixed=0.5, p_mem=0.5)],
)
def test_a_dp_epoch_by_the_dense_path_equals_ghost_clippings(model):
    """The same seeds, noise sigma = 1 and a clip that bites: the same weights after an epoch
    of steps by the dense path as by Opacus's ghost clipping (the same noise draws)."""
    config = tiny_config(model=model)
    config = replace(
        config, train=replace(config.train, dp=DPConfig(clip=0.3, noise_multiplier=1.0))
    )
    gen = torch.Generator().manual_seed(1)
    inputs, labels = torch.randn(40, 8, generator=gen), torch.randint(0, 4, (40,), generator=gen)
    train_ids = torch.arange(32)
    weights = []
    for clipping in ("dense", "ghost"):
        net = training.make_model(config, (8,), 4)
        opt = training.make_optimizer(config, net)
        private = DPTraining(config, net, opt, len(train_ids), clipping=clipping)
        private.train_epoch(net, opt, _Stub(), inputs, labels, train_ids, config, 1)
        weights.append({k: v.detach().clone() for k, v in net.state_dict().items()})
    start = training.make_model(config, (8,), 4).state_dict()
    for key, value in weights[0].items():
        assert not torch.equal(value, start[key])
        torch.testing.assert_close(value, weights[1][key], rtol=1e-6, atol=1e-6)


def test_auto_picks_the_dense_path_for_an_mlp_and_opacus_for_a_cnn():
    config = tiny_config(model=ModelConfig(name="cnn", channels=(2,), hidden=(4,)))
    config = replace(
        config, train=replace(config.train, dp=DPConfig(clip=1.0, noise_multiplier=1.0))
    )
    cnn = training.make_model(config, (8,), 4)
    assert DPTraining(config, cnn, training.make_optimizer(config, cnn), 32).clipping == "ghost"
    net = training.make_model(tiny_config(), (8,), 4)
    assert DPTraining(config, net, training.make_optimizer(config, net), 32).clipping == "dense"
    with pytest.raises(ValueError, match=r"layer 'conv1.conv' is a Conv1d, not an nn.Linear"):
        DPTraining(config, cnn, training.make_optimizer(config, cnn), 32, clipping="dense")
    with pytest.raises(ValueError, match="unknown clipping 'fast'; valid: auto, dense, ghost"):
        DPTraining(config, net, training.make_optimizer(config, net), 32, clipping="fast")


class _Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return self.fc(self.fc(x))


def test_why_not_dense_names_what_the_dense_path_cannot_clip():
    assert why_not_dense(nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2))) is None
    assert "'0' has no trainable bias" in why_not_dense(nn.Sequential(nn.Linear(3, 2, bias=False)))
    frozen = nn.Sequential(nn.Linear(3, 2))
    frozen[0].weight.requires_grad_(False)
    assert "frozen weight" in why_not_dense(frozen)
    shared = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    shared[1].weight = shared[0].weight
    assert "shared between layers" in why_not_dense(shared)
    assert why_not_dense(nn.ReLU()) == "it has no trainable layer"
    with pytest.raises(ValueError, match="clip must be > 0, got 0"):
        DenseClipping(nn.Linear(2, 2), clip=0.0)


def test_a_layer_reused_or_on_3d_inputs_is_refused_in_one_line():
    tied = DenseClipping(_Tied(), clip=1.0)
    with pytest.raises(ValueError, match="each layer called once; 'fc' was reused"), tied.capture():
        tied.layers[0](tied.layers[0](torch.ones(2, 3)))
    seq = DenseClipping(nn.Linear(3, 2), clip=1.0)
    with pytest.raises(ValueError, match=r"layer '' got shape \(2, 4, 3\)"), seq.capture():
        seq.layers[0](torch.ones(2, 4, 3))
    with pytest.raises(ValueError, match="no layer ran inside capture"):
        seq.backward(torch.ones(2, requires_grad=True))
    with torch.no_grad():  # outside capture the hooks keep nothing
        seq.layers[0](torch.ones(2, 4, 3))
    assert seq._kept == []


class _Branch(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.side = nn.Linear(3, 2), nn.Linear(3, 2)

    def forward(self, x):
        self.side(x)  # runs, but the loss never sees it
        return self.fc(x)


def test_a_layer_the_loss_does_not_reach_gets_a_zero_gradient():
    model = _Branch()
    dense = DenseClipping(model, clip=1.0)
    with dense.capture():
        out = model(torch.ones(2, 3))
    dense.backward(F.cross_entropy(out, torch.tensor([0, 1]), reduction="none"))
    assert (model.side.weight.grad == 0).all() and (model.side.bias.grad == 0).all()
    assert model.fc.weight.grad.abs().sum() > 0
