import pytest
import torch

from memdash.analysis.models import build_model, layer_names, layer_parameters


@pytest.mark.parametrize(
    ("name", "shape", "layers"),
    [
        ("mlp", (1, 8, 8), ["fc1", "fc2", "out"]),
        ("cnn", (1, 8, 8), ["conv1", "conv2", "fc1", "out"]),
        ("cnn", (1, 40), ["conv1", "conv2", "fc1", "out"]),
        ("cnn", (16,), ["conv1", "conv2", "fc1", "out"]),
    ],
)
def test_models_have_named_layers_and_logits(name, shape, layers):
    model = build_model(name, shape, 7, hidden=(12, 6), channels=(4, 8), dropout=0.1)
    assert layer_names(model) == layers
    assert model(torch.zeros(3, *shape)).shape == (3, 7)
    params = layer_parameters(model)
    assert sum(p.numel() for ps in params.values() for p in ps) == sum(
        p.numel() for p in model.parameters()
    )


def test_mlp_widths():
    model = build_model("mlp", (1, 8, 8), 10, hidden=(512, 256), channels=(), dropout=0.0)
    assert model.fc1.linear.weight.shape == (512, 64)
    assert model.fc2.linear.weight.shape == (256, 512)
    assert model.out.weight.shape == (10, 256)


def test_cnn_rejects_too_small_inputs_and_unknown_models():
    with pytest.raises(ValueError, match="spatial size >= 8"):
        build_model("cnn", (1, 4), 3, hidden=(8,), channels=(2, 2, 2), dropout=0.0)
    with pytest.raises(ValueError, match="unknown model 'resnet'; valid: mlp, cnn"):
        build_model("resnet", (4,), 3, hidden=(8,), channels=(2,), dropout=0.0)
