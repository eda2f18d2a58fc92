import copy

import pytest
import torch

from memdash.analysis.localization.rewinding import group_accuracy, layer_state, retrain, rewind
from memdash.analysis.record.models import mlp


@pytest.fixture
def setting():
    torch.manual_seed(0)
    model = mlp((6,), 3, hidden=(8,))
    init = copy.deepcopy(model.state_dict())
    x = torch.randn(90, 6)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[:60]), y[:60]).backward()
        opt.step()
    groups = {
        "clean": torch.arange(0, 50),
        "flipped": torch.arange(50, 60),
        "test": torch.arange(60, 90),
    }

    def evaluate(m):
        return group_accuracy(m, x, y, groups)

    return model, copy.deepcopy(model.state_dict()), init, x, y, groups, evaluate


def test_group_accuracy_by_hand():
    model = mlp((1,), 2, hidden=(2,))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.out.bias.copy_(torch.tensor([0.0, 1.0]))  # always predicts class 1
    labels = torch.tensor([1, 1, 0, 1])
    acc = group_accuracy(
        model, torch.zeros(4, 1), labels, {"a": torch.tensor([0, 2]), "b": torch.tensor([1, 3])}
    )
    assert acc == {"a_acc": 0.5, "b_acc": 1.0}


def test_rewinding_to_the_final_epoch_changes_nothing(setting):
    model, final, init, x, y, groups, evaluate = setting
    rows = rewind(model, final, {0: init, 9: final}, ["fc1", "out"], evaluate)
    assert [(r["layer"], r["epoch"]) for r in rows] == [
        ("fc1", 0),
        ("fc1", 9),
        ("out", 0),
        ("out", 9),
    ]
    untouched = evaluate(model)
    assert {k: rows[1][k] for k in untouched} == untouched
    # rewinding `out` to initialization is the final fc1 under the initial out
    manual = copy.deepcopy(model)
    manual.out.load_state_dict({k[4:]: v for k, v in init.items() if k.startswith("out.")})
    assert {k: rows[2][k] for k in untouched} == evaluate(manual)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in final.items())  # restored


def test_retraining_leaves_every_other_layer_bit_identical(setting):
    model, final, init, x, y, groups, evaluate = setting
    rows = retrain(
        model,
        final,
        init,
        "fc1",
        inputs=x,
        labels=y,
        train_ids=groups["clean"],
        epochs=3,
        batch_size=16,
        make_optimizer=lambda block: torch.optim.SGD(block.parameters(), lr=0.1, momentum=0.9),
        evaluate=evaluate,
        seed=0,
    )
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in layer_state(final, "out").items())
    assert not torch.equal(after["fc1.linear.weight"], init["fc1.linear.weight"])  # it trained
    reset = copy.deepcopy(model)
    reset.load_state_dict(final)
    reset.load_state_dict(layer_state(init, "fc1"), strict=False)
    assert {k: rows[0][k] for k in evaluate(reset)} == evaluate(reset)
    assert all(p.requires_grad for p in model.parameters())  # unfrozen afterwards
