"""Input-loss curvature (Garg, Roy et al. 2023): a hand-computed quadratic loss, a naive
loop over examples and directions, its per-example directions, and the recorded trace column
(the training split's examples only), timing and score."""

import math
import warnings

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.measures.curvature import (
    input_curvature,
    input_gradient,
    mean_over_epochs,
    rademacher,
)
from memdash.analysis.record import timing
from memdash.analysis.record.config import (
    DataConfig,
    ModelConfig,
    RecordConfig,
    RunConfig,
    validate,
)
from memdash.analysis.record.eval_pass import (
    curvature_seed,
    epoch_measures,
    eval_logits,
    train_rows,
)
from memdash.analysis.steps.scores import compute_scores
from memdash.analysis.store import Run

# per label a symmetric A: the loss 0.5 x^T A x has gradient A x, so along v the gradient
# changes by exactly h A v and Curv = h^2 mean ||A v||^2
A = torch.tensor(
    [
        [[2.0, 0.0], [0.0, 3.0]],  # ||A v||^2 = 4 + 9 = 13 for every +-1 direction
        [[1.0, 0.0], [0.0, 0.0]],  # = 1 for every direction
        [[2.0, 1.0], [1.0, 3.0]],  # (3, 4) -> 25 when v1 = v2, (1, -2) -> 5 otherwise
    ],
    dtype=torch.float64,
)
X = torch.tensor([[0.5, -1.0], [2.0, 0.0], [-1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
Y = torch.tensor([0, 1, 2, 2])
IDS = torch.arange(4)


def _identity(x, ids):
    return x


def _quadratic(x, y):
    return 0.5 * torch.einsum("bi,bij,bj->b", x, A[y], x)


def _curvature(seed=0, **options):
    options = {"directions": 6, "step": 0.5, "loss_fn": _quadratic} | options
    return input_curvature(_identity, X, Y, IDS, seed=seed, **options)


def test_a_quadratic_loss_has_curvature_h_squared_times_the_mean_of_a_v_squared():
    curv = _curvature()
    h = 0.5
    # the same directions, drawn again from the same seed and ids: (directions, B, D)
    v = rademacher(0, IDS, 0, 6, (2,))
    same_sign = (v[:, :, 0] == v[:, :, 1]).double()  # (directions, examples)
    third = (25 * same_sign + 5 * (1 - same_sign)).mean(0)  # example i's mean ||A v||^2
    expected = [h**2 * 13, h**2 * 1, h**2 * third[2].item(), h**2 * third[3].item()]
    assert curv.dtype == torch.float32 and curv.shape == (4,)
    assert torch.allclose(curv.double(), torch.tensor(expected, dtype=torch.float64))
    assert curv[0].item() == pytest.approx(3.25) and curv[1].item() == pytest.approx(0.25)


def test_the_stacked_passes_equal_a_naive_loop_over_examples_and_directions():
    """Cross-entropy of a small tanh network: per example and direction, two gradients
    computed one at a time."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 4))
    for p in net.parameters():
        p.requires_grad_(False)
    x, y = torch.randn(5, 3), torch.tensor([0, 3, 1, 2, 0])
    curv = input_curvature(
        lambda x, ids: net(x),
        x,
        y,
        torch.arange(5),
        seed=7,
        directions=3,
        step=1e-2,
        max_rows=7,  # one direction a pass (5 rows): the directions are the same
    )
    v = rademacher(7, torch.arange(5), 0, 3, (3,))

    def grad(point, label):
        point = point.clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(net(point[None]), label[None])
        return torch.autograd.grad(loss, point)[0]

    naive = [
        np.mean(
            [(grad(x[i] + 1e-2 * v[d, i], y[i]) - grad(x[i], y[i])).pow(2).sum() for d in range(3)]
        )
        for i in range(5)
    ]
    assert np.allclose(curv.numpy(), naive, rtol=1e-4, atol=1e-12)


def test_the_directions_come_from_the_seed_alone():
    before = torch.get_rng_state()
    first, again, other = _curvature(seed=1), _curvature(seed=1), _curvature(seed=2, directions=40)
    assert torch.equal(torch.get_rng_state(), before)  # the global random state is untouched
    assert torch.equal(first, again)
    assert not torch.equal(first[2:], _curvature(seed=3)[2:])  # other draws, other means
    # many directions approach the expectation h^2 ||A||_F^2 = 0.25 * 15 for the third A
    assert other[2].item() == pytest.approx(0.25 * 15, rel=0.1)
    # how the directions are grouped into passes changes nothing
    assert torch.equal(first, _curvature(seed=1, max_rows=2))
    # a shared gradient at x gives the same result
    _, grad = input_gradient(_identity, X, Y, IDS, loss_fn=_quadratic)
    assert torch.equal(first, _curvature(seed=1, gradient=grad))


def test_each_examples_directions_depend_on_the_seed_its_id_and_the_direction_alone():
    ids = torch.tensor([0, 1, 2, 7, 2**32 + 1])
    v = rademacher(3, ids, 0, 4, (5, 7))
    assert v.shape == (4, 5, 5, 7) and v.dtype == torch.float32
    assert set(v.unique().tolist()) == {-1.0, 1.0}
    # the same example and direction drawn alone, among others, or from a later first
    assert torch.equal(rademacher(3, ids[[3, 1]], 0, 4, (5, 7)), v[:, [3, 1]])
    assert torch.equal(rademacher(3, torch.tensor([7, 9, 11]), 2, 2, (5, 7))[:, 0], v[2:, 3])
    assert not torch.equal(v[:, 1], v[:, 2]) and not torch.equal(v[0], v[1])
    assert not torch.equal(rademacher(4, ids, 0, 4, (5, 7)), v)  # another seed, other signs
    assert not torch.equal(v[:, 1], v[:, 4])  # ids differing above 2**32
    # fair and uncorrelated signs: 2000 examples x 10 directions x 64 inputs
    many = rademacher(5, torch.arange(2000), 0, 10, (64,))
    assert abs(many.mean().item()) < 0.01  # 1.28M signs: sd 0.0009
    flat = many.reshape(-1, 64)
    corr = (flat.T @ flat) / len(flat) - torch.eye(64)
    # 20000 rows: each pair's correlation has sd 1/sqrt(20000) = 0.0071 when independent
    assert corr.abs().max().item() < 5 * 0.0071
    assert corr.pow(2).sum().div(64 * 63).sqrt().item() < 1.15 * 0.0071  # no excess overall
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        rademacher(-1, ids, 0, 1, (2,))


def test_an_epochs_seed_depends_on_the_run_seed_and_the_epoch():
    assert curvature_seed(0, 1) == curvature_seed(0, 1)
    assert len({curvature_seed(0, 1), curvature_seed(0, 2), curvature_seed(1, 1)}) == 3
    assert 0 <= curvature_seed(0, 1) < 2**64


def test_leaving_examples_out_changes_no_others_curvature():
    first = _curvature(seed=1)
    alone = input_curvature(
        _identity,
        X[[3, 1]],
        Y[[3, 1]],
        IDS[[3, 1]],
        seed=1,
        directions=6,
        step=0.5,
        loss_fn=_quadratic,
    )
    assert torch.equal(alone, first[[3, 1]])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"directions": 0}, "directions must be an integer >= 1, got 0"),
        ({"directions": True}, "directions must be an integer >= 1, got True"),
        ({"directions": 2.0}, "directions must be an integer >= 1, got 2.0"),
        ({"step": 0.0}, "step must be a finite number > 0, got 0.0"),
        ({"step": math.nan}, "step must be a finite number > 0, got nan"),
        ({"step": -1}, "step must be a finite number > 0, got -1"),
        ({"max_rows": 0}, "max_rows must be an integer >= 1, got 0"),
        ({"gradient": torch.zeros(4, 3)}, r"gradient has shape \(4, 3\)"),
        ({"seed": -2}, "seed must be an integer >= 0, got -2"),
        ({"seed": True}, "seed must be an integer >= 0, got True"),
    ],
)
def test_bad_settings_get_one_message(options, message):
    with pytest.raises(ValueError, match=message):
        _curvature(**options)


def test_mismatched_labels_and_no_examples():
    with pytest.raises(ValueError, match="4 inputs but 3 labels and 4 ids"):
        input_curvature(_identity, X, Y[:3], IDS, seed=0)
    empty = input_curvature(_identity, X[:0], Y[:0], IDS[:0], seed=0, loss_fn=_quadratic)
    assert empty.shape == (0,)


def test_mean_over_epochs_skips_missing_epochs():
    per_epoch = np.array([[1.0, np.nan, 2.0, 4.0], [3.0, np.nan, np.nan, 0.0]])
    assert np.allclose(mean_over_epochs(per_epoch), [2.0, np.nan, 2.0, 2.0], equal_nan=True)
    assert mean_over_epochs(np.zeros((0, 3))).shape == (3,)
    with pytest.raises(ValueError, match="an \\(epochs, examples\\) array"):
        mean_over_epochs(np.zeros(3))


def test_mean_over_epochs_of_never_recorded_examples_is_nan_without_a_warning():
    per_epoch = np.array([[np.nan, 1.0, np.nan], [np.nan, 3.0, 5.0]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        means = mean_over_epochs(per_epoch)
    assert means.dtype == np.float64
    assert np.isnan(means[0]) and means[1:].tolist() == [2.0, 5.0]


def test_the_recorders_measures_freeze_the_parameters_and_share_the_gradient():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    net.train()
    seen = []
    net.register_forward_hook(
        lambda m, i, o: seen.append(any(p.requires_grad for p in m.parameters()))
    )
    x, y = torch.randn(6, 2), torch.tensor([0, 1, 0, 1, 1, 0])
    clock = timing.Clock()
    with clock.part("eval_pass"):
        logits, grads = eval_logits(net.eval(), x, y, 4, gradients=True, clock=clock)
    net.train()
    found = epoch_measures(net, x, y, 4, epoch=3, curvature=(2, 1e-3, 5), gradients=grads)
    assert seen and not any(seen)  # no pass asked for the parameters' gradients
    assert all(p.requires_grad and p.grad is None for p in net.parameters()) and net.training
    assert torch.allclose(logits, net(x).detach())
    assert set(found) == {"curvature"} and found["curvature"].shape == (6,)
    assert set(clock.totals()) == {"eval_pass", "input_gradient"}
    # without the eval pass's gradients, computed again: the same curvature
    again = epoch_measures(net, x, y, 4, epoch=3, curvature=(2, 1e-3, 5))
    assert torch.equal(found["curvature"], again["curvature"])  # reproducible
    later = epoch_measures(net, x, y, 4, epoch=4, curvature=(2, 1e-3, 5))
    assert not torch.equal(found["curvature"], later["curvature"])  # each epoch its draws
    # the training rows only: NaN elsewhere, the same values where computed (batches of
    # other examples, the same directions)
    rows = train_rows(np.array(["train", "test", "train", "reference", "test", "train"]), "cpu")
    assert rows.tolist() == [0, 2, 5] and train_rows(None, "cpu") is None
    some = epoch_measures(
        net, x, y, 4, epoch=3, curvature=(2, 1e-3, 5), curvature_rows=rows, gradients=grads
    )["curvature"]
    assert torch.isnan(some).tolist() == [False, True, False, True, True, False]
    assert torch.allclose(some[rows], found["curvature"][rows], rtol=1e-5, atol=0)


def test_the_clock_sums_parts_and_leaves_inner_parts_out(monkeypatch):
    ticks = iter([0.0, 1.0, 3.0, 10.0, 20.0, 21.5])
    monkeypatch.setattr(timing, "perf_counter", lambda: next(ticks))
    clock = timing.Clock(totals={"train": 4.0})
    with clock.part("eval_pass"), clock.part("curvature"):
        pass
    with clock.part("train"):
        pass
    assert clock.totals() == {"train": 5.5, "eval_pass": 8.0, "curvature": 2.0}


TINY = ["--dataset", "synthetic", "--n-examples", "120", "--shape", "8", "--n-classes", "3"]
TINY += ["--noise", "0.2", "--hidden", "8", "--epochs", "2"]


def _train(tmp_path, name, *extra):
    result = CliRunner().invoke(app, ["train", *TINY, *extra, "--out", str(tmp_path / name)])
    assert result.exit_code == 0, result.output
    return Run.open(tmp_path / name)


def test_a_run_records_curvature_without_changing_its_training(tmp_path):
    run = _train(
        tmp_path,
        "curved",
        "--record-curvature",
        "--record-loss-sensitivity",
        "--curvature-directions",
        "3",
        "--curvature-step",
        "0.01",
    )
    plain = _train(tmp_path, "plain")
    trace = run.trace("eval", columns=["epoch", "example_id", "curvature", "loss_sensitivity"])
    assert trace.groupby("epoch").size().tolist() == [run.n_examples()] * 3  # epochs 0..2
    assert trace["curvature"].dtype == np.float32
    # the training split's examples only: finite there, NaN exactly off it; loss sensitivity
    # for every example
    split = run.examples(["split"])["split"].to_numpy()
    trained = split[trace["example_id"].to_numpy()] == "train"
    assert 0 < trained.sum() < len(trace) and set(split) == {"train", "test"}
    assert np.isfinite(trace["curvature"][trained]).all()
    assert trace["curvature"][~trained].isna().all()
    assert (trace["curvature"][trained] >= 0).all() and trace["curvature"].gt(0).any()
    assert np.isfinite(trace["loss_sensitivity"]).all()
    assert "curvature" not in run.trace_columns("train")  # eval only, as loss sensitivity
    record = run.config["record"]
    assert record["curvature"] and record["curvature_directions"] == 3
    assert record["curvature_step"] == 0.01
    assert set(run.meta["timing"]) == {"train", "eval_pass", "loss_sensitivity", "curvature"}
    assert all(s >= 0 for s in run.meta["timing"].values())
    assert set(plain.meta["timing"]) == {"train", "eval_pass"}
    # the same training, to the bit: minibatch losses, eval losses and final weights
    for source in ("train", "eval"):
        a = run.trace(source, columns=["epoch", "example_id", "loss", "correct"])
        b = plain.trace(source, columns=["epoch", "example_id", "loss", "correct"])
        assert a.equals(b)
    final_a, final_b = run.checkpoint(2), plain.checkpoint(2)
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)
    # the scores: each measure's mean over epochs 1..2, absent where not recorded
    scores = compute_scores(run)["scores.parquet"]
    late = trace[trace["epoch"] >= 1].groupby("example_id")
    assert np.allclose(scores["curvature"], late["curvature"].mean(), rtol=1e-6, equal_nan=True)
    assert scores["curvature"].isna().to_numpy().tolist() == (split != "train").tolist()
    assert np.allclose(scores["loss_sensitivity"], late["loss_sensitivity"].mean(), rtol=1e-6)
    assert not {"curvature", "loss_sensitivity"} & set(compute_scores(plain)["scores.parquet"])


@pytest.mark.parametrize(
    "bad",
    [["--curvature-directions", "0"], ["--curvature-directions", "1.5"], ["--curvature-step", "0"]],
)
def test_bad_curvature_options_get_one_message(bad, tmp_path):
    args = ["train", *TINY, "--record-curvature", *bad, "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and f"error: {bad[0]} must be" in result.output
    assert not (tmp_path / "r").exists()


def test_text_runs_refuse_curvature():
    config = RunConfig(
        data=DataConfig(dataset="text"),
        model=ModelConfig(name="gpt"),
        record=RecordConfig(curvature=True),
    )
    with pytest.raises(ValueError, match="--record-curvature needs inputs to differentiate"):
        validate(config)
