import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from memdash.analysis.record.grad_accounting import GradientAccountant
from memdash.analysis.record.recorder import TraceRecorder
from memdash.analysis.record.stats import example_stats
from memdash.analysis.store import Run


def test_example_stats_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 3.0], [1.0, 1.0, 0.0]])
    labels = torch.tensor([0, 1, 1])
    s = example_stats(logits, labels)
    # example 0: p = e^2 / (e^2 + 2)
    p0 = np.e**2 / (np.e**2 + 2)
    # example 1: label logit 1, others 0 and 3 -> p = e / (1 + e + e^3), margin 1 - 3
    p1 = np.e / (1 + np.e + np.e**3)
    # example 2: tie between classes 0 and 1; argmax takes the first -> wrong; margin 0
    p2 = np.e / (2 * np.e + 1)
    np.testing.assert_allclose(s["prob_label"], [p0, p1, p2], rtol=1e-6)
    np.testing.assert_allclose(s["loss"], -np.log([p0, p1, p2]), rtol=1e-6)
    np.testing.assert_allclose(s["margin"], [2.0, -2.0, 0.0])
    assert s["pred"].tolist() == [0, 2, 0]
    assert s["correct"].tolist() == [True, False, False]


def test_example_stats_keep_tiny_losses_exact():
    """A dominant label: loss = log(1 + 2 e^-40) = 2 e^-40 + O(e^-80) (about 8.5e-18), where
    logsumexp(z) - z_y rounds to 0 and would tie every memorized canary."""
    logits = torch.tensor([[40.0, 0.0, 0.0], [40.0, 10.0, 0.0]])
    s = example_stats(logits, torch.tensor([0, 0]))
    np.testing.assert_allclose(
        s["loss"], [2 * np.exp(-40.0), np.exp(-30.0) + np.exp(-40.0)], rtol=1e-5
    )
    assert (torch.logsumexp(logits, 1) - logits[:, 0]).tolist() == [0.0, 0.0]


class _Writer:
    """Collects what a recorder writes, in memory."""

    def __init__(self):
        self.trace, self.grads, self.emb, self.ckpt, self.commits = {}, {}, {}, {}, []

    def write_trace(self, source, epoch, table):
        self.trace[source, epoch] = table.to_pandas()

    def write_layer_grads(self, epoch, frame):
        self.grads[epoch] = frame

    def write_embedding(self, epoch, layer, array):
        self.emb[epoch, layer] = array

    def write_checkpoint(self, epoch, state):
        self.ckpt[epoch] = state

    def write_resume_state(self, tensors, meta):
        pass

    def commit_epoch(self, epoch, **extra):
        self.commits.append((epoch, extra))


def _linear_model():
    model = nn.Sequential()
    model.add_module("fc", nn.Linear(2, 3, bias=False))
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]))
    return model


def test_train_source_keeps_the_last_presentation():
    model = _linear_model()
    x = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [3.0, 3.0]])
    y = torch.tensor([0, 1, 2, 0])
    writer = _Writer()
    rec = TraceRecorder(writer, model, x, y, record_train=True, checkpoint_epochs=())
    # example 1 is shown twice: first with logits favouring class 1, then class 0
    rec.log_batch(torch.tensor([0, 1]), torch.tensor([[5.0, 0, 0], [0, 5.0, 0]]))
    rec.log_batch(torch.tensor([1, 2]), torch.tensor([[5.0, 0, 0], [0, 0, 5.0]]))
    rec.end_epoch(1)
    rec.flush()
    frame = writer.trace["train", 1]
    assert frame["example_id"].tolist() == [0, 1, 2]  # example 3 was never presented
    assert frame["correct"].tolist() == [True, False, True]
    assert frame["pred"].tolist() == [0, 0, 2]
    eval_frame = writer.trace["eval", 1]
    # eval pass: logits = x @ W.T; example 2 -> [1, 1, 1] (tie, pred 0), example 3 -> [3, 3, 3]
    assert eval_frame["pred"].tolist() == [0, 1, 0, 0]
    np.testing.assert_allclose(
        eval_frame["prob_label"], [np.e**2 / (np.e**2 + 1 + np.e)] * 2 + [1 / 3, 1 / 3], rtol=1e-6
    )


def test_gradient_accounting_splits_the_gradient_by_hand():
    # one-weight "layer": loss_i = (w * x_i); d loss_i / dw = x_i
    model = nn.Sequential()
    model.add_module("w", nn.Linear(1, 1, bias=False))
    with torch.no_grad():
        model.w.weight.fill_(2.0)
    x = torch.tensor([[1.0], [3.0], [-2.0], [4.0]])
    noisy = torch.tensor([False, False, True, False])
    acct = GradientAccountant(model, noisy)
    ids = torch.arange(4)
    losses = model(x).squeeze(1)  # per-example "loss" w * x_i
    acct.backward(ids, losses)
    # clean part: (1 + 3 + 4) / 4 = 2.0; noisy part: -2 / 4 = -0.5; total 1.5
    assert model.w.weight.grad.item() == pytest.approx(1.5)
    frame = acct.frame(1).set_index("subset")
    assert frame.loc["clean", "grad_norm"] == pytest.approx(2.0)
    assert frame.loc["noisy", "grad_norm"] == pytest.approx(0.5)
    assert frame.loc["clean", "share"] == pytest.approx(0.8)
    assert frame.loc["clean", "cosine"] == pytest.approx(-1.0)  # opposite directions
    assert frame.loc["noisy", "n_examples"] == 1


def test_gradient_accounting_equals_plain_backward():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    x, y = torch.randn(12, 5), torch.randint(0, 3, (12,))
    noisy = torch.arange(12) % 4 == 0
    losses = nn.functional.cross_entropy(model(x), y, reduction="none")
    losses.mean().backward(retain_graph=True)
    plain = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    GradientAccountant(model, noisy).backward(torch.arange(12), losses)
    for a, p in zip(plain, model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, a)


def test_user_loop_records_a_readable_run(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(40, 6), torch.randint(0, 3, (40,))
    given = y.clone()
    given[:5] = (given[:5] + 1) % 3
    model = nn.Sequential()
    model.add_module("fc1", nn.Linear(6, 8))
    model.add_module("act", nn.ReLU())
    model.add_module("out", nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = TraceRecorder.create(
        tmp_path / "loop",
        model,
        x[:30],
        given[:30],
        x[30:],
        y[30:],
        true_labels=y[:30],
        embed_layers=["fc1"],
        embed_epochs=[2],
        checkpoint_epochs=[0, 2],
    )
    rec.start()
    for epoch in (1, 2):
        for ids in torch.arange(30).split(10):
            logits = model(x[ids])
            losses = nn.functional.cross_entropy(logits, given[ids], reduction="none")
            rec.log_batch(ids, logits)
            opt.zero_grad()
            rec.backward(ids, losses)
            opt.step()
        rec.end_epoch(epoch)
    rec.finish()
    run = Run.open(tmp_path / "loop")
    run.validate()
    ex = run.examples()
    assert ex["is_noisy"].sum() == 5 and (ex["split"] == "test").sum() == 10
    assert run.trace("eval")["epoch"].unique().tolist() == [0, 1, 2]
    assert len(run.trace("train")) == 60  # 30 training examples at epochs 1 and 2
    assert run.embedding(2, "fc1").shape == (40, 8)
    assert run.checkpoint_epochs() == [0, 2]
    grads = run.layer_grads()
    assert set(grads["layer"]) == {"fc1", "out"} and set(grads["subset"]) == {"clean", "noisy"}
    assert run.meta["last_epoch"]["test_acc"] == pytest.approx(
        run.trace("eval", epochs=[2]).query("example_id >= 30")["correct"].mean()
    )


def test_unknown_embedding_layer_is_named():
    model = _linear_model()
    with pytest.raises(ValueError, match=r"unknown embedding layers \['conv9'\].*\['fc'\]"):
        TraceRecorder(_Writer(), model, torch.zeros(2, 2), torch.zeros(2), embed_layers=["conv9"])


def test_eval_pass_restores_train_mode_and_captures_embeddings():
    torch.manual_seed(1)
    model = nn.Sequential()
    model.add_module("fc1", nn.Linear(2, 4))
    model.add_module("drop", nn.Dropout(0.5))
    model.add_module("out", nn.Linear(4, 2))
    model.train()
    rec = TraceRecorder(
        _Writer(),
        model,
        torch.randn(10, 2),
        torch.zeros(10),
        embed_layers=["fc1", "out"],
        eval_batch_size=3,
    )
    stats, emb = rec.evaluate(with_embeddings=True)
    assert model.training
    assert emb["fc1"].shape == (10, 4) and emb["fc1"].dtype == np.float16
    assert isinstance(stats["loss"], torch.Tensor) and stats["loss"].shape == (10,)
    assert pd.Series(emb["out"].astype(np.float32).argmax(1)).tolist() == stats["pred"].tolist()


def test_a_failed_background_write_surfaces_and_the_epoch_is_not_committed():
    class FullDisk(_Writer):
        def write_trace(self, source, epoch, table):
            raise OSError("No space left on device")

    writer = FullDisk()
    rec = TraceRecorder(writer, _linear_model(), torch.zeros(3, 2), torch.zeros(3))
    rec.end_epoch(1)  # computed now, written in the background
    with pytest.raises(OSError, match="No space left"):
        rec.flush()
    assert writer.commits == []  # run.json is written last, so it never claims epoch 1
