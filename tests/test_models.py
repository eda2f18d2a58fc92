import pytest
import torch

from memdash.analysis.record.models import build_model, layer_names, layer_parameters


@pytest.mark.parametrize(
    ("name", "shape", "layers"),
    [
        ("mlp", (1, 8, 8), ["fc1", "fc2", "out"]),
        ("cnn", (1, 8, 8), ["conv1", "conv2", "fc1", "out"]),
        ("cnn", (1, 40), ["conv1", "conv2", "fc1", "out"]),
        ("cnn", (16,), ["conv1", "conv2", "fc1", "out"]),
        ("resnet", (3, 16, 16), ["prep", "layer1", "layer2", "layer3", "out"]),
        ("resnet", (1, 40), ["prep", "layer1", "layer2", "layer3", "out"]),
        ("resnet", (8,), ["prep", "layer1", "layer2", "layer3", "out"]),
    ],
)
def test_models_have_named_layers_and_logits(name, shape, layers):
    model = build_model(name, shape, 7, hidden=(12, 6), channels=(4, 8), dropout=0.1, width=4)
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
    with pytest.raises(ValueError, match="unknown model 'vit'; valid: mlp, cnn, resnet"):
        build_model("vit", (4,), 3, hidden=(8,), channels=(2,), dropout=0.0)
    with pytest.raises(ValueError, match="spatial size >= 8"):
        build_model("resnet", (3, 4, 4), 3, hidden=(8,), channels=(2,), dropout=0.0)


def test_resnet9_widths_residuals_and_batch_independent_logits():
    """ResNet-9's shape (Page's DAWNBench net: w, 2w pooled + residual, 4w pooled, 8w pooled +
    residual, global max pool); GroupNorm makes an example's logits its own, whatever else
    is in the batch."""
    torch.manual_seed(0)
    model = build_model("resnet", (3, 32, 32), 10, hidden=(), channels=(), dropout=0.0, width=8)
    assert model.prep[0].conv.weight.shape == (8, 3, 3, 3)
    assert model.layer1.conv.conv.weight.shape == (16, 8, 3, 3)
    assert model.layer1.residual is not None and model.layer2.residual is None
    assert model.layer3.residual[1].conv.weight.shape == (64, 64, 3, 3)
    assert model.out.weight.shape == (10, 64)
    x = torch.randn(5, 3, 32, 32)
    hidden = model.layer3(model.layer2(model.layer1(model.prep(x))))
    assert hidden.shape == (5, 64, 4, 4)  # 32 halved three times
    model.eval()
    together = model(x)
    alone = torch.cat([model(x[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    # the residual adds the block's input: with the residual's weights zeroed, relu(norm(0)) = 0
    # and layer1 is its pooled ConvNorm alone
    with torch.no_grad():
        for p in model.layer1.residual.parameters():
            p.zero_()
        h = model.prep(x)
        torch.testing.assert_close(model.layer1(h), model.layer1.conv(h))
