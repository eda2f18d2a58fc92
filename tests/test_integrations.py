"""The trainer callbacks (Lightning and the Hugging Face Trainer), end to end with the real
libraries: their runs validate and analyze, their traces equal what a plain loop with
`TraceRecorder` records for the same initial weights and batches, and they resume."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import lightning
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.record.recorder import TraceRecorder
from memdash.analysis.store import Run
from memdash.integrations import WithIds, batch_ids

README = Path(__file__).resolve().parents[1] / "README.md"
runner = CliRunner()


def _readme_block(first_line: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return next(b for b in blocks if b.startswith(first_line))


class OrderLog(WithIds):
    """`WithIds` that notes the order in which the loader reads its items."""

    def __init__(self, dataset) -> None:
        super().__init__(dataset)
        self.order: list[int] = []

    def __getitem__(self, index: int):
        self.order.append(int(index))
        return super().__getitem__(index)


def _batches(order: list[int], batch_size: int, epochs: int) -> list[list[torch.Tensor]]:
    """The ids of each epoch's batches, from the order the loader read the items."""
    per_epoch = len(order) // epochs
    return [
        list(torch.tensor(order[e * per_epoch : (e + 1) * per_epoch]).split(batch_size))
        for e in range(epochs)
    ]


def _plain_run(path, net, forward, x_tr, y_tr, x_te, y_te, opt, batches, **options) -> Run:
    """The same training with the plain TraceRecorder, batch by batch."""
    rec = TraceRecorder.create(path, net, x_tr, y_tr, x_te, y_te, **options)
    rec.start()
    for epoch, ids_list in enumerate(batches, start=1):
        net.train()
        for ids in ids_list:
            logits = forward(x_tr[ids])
            rec.log_batch(ids, logits)
            opt.zero_grad()
            rec.backward(ids, F.cross_entropy(logits, y_tr[ids], reduction="none"))
            opt.step()
        rec.end_epoch(epoch)
    rec.finish()
    return Run.open(path)


def _assert_same_trace(a: Run, b: Run) -> None:
    assert a.epochs_completed == b.epochs_completed
    for source in ("eval", "train"):
        ta = a.trace(source).sort_values(["epoch", "example_id"], ignore_index=True)
        tb = b.trace(source).sort_values(["epoch", "example_id"], ignore_index=True)
        assert len(ta) == len(tb) > 0
        np.testing.assert_array_equal(ta["example_id"], tb["example_id"])
        np.testing.assert_array_equal(ta["epoch"], tb["epoch"])
        for column in ("loss", "prob_label", "margin"):
            np.testing.assert_allclose(ta[column], tb[column], rtol=1e-4, atol=1e-5)
        # predictions may differ only where two logits tie to within float noise
        differ = ta["pred"].to_numpy() != tb["pred"].to_numpy()
        assert differ.sum() <= 2, f"{source}: {differ.sum()} predictions differ"


def _validates_and_analyzes(path: Path) -> None:
    info = runner.invoke(app, ["info", str(path)])
    assert info.exit_code == 0, info.output
    assert "valid: every file matches" in info.output
    analyze = runner.invoke(app, ["analyze", str(path)])
    assert analyze.exit_code == 0, analyze.output
    scores = Run.open(path).read_derived("scores.parquet")
    assert len(scores) == Run.open(path).n_examples()


# ----------------------------------------------------------------- WithIds
def test_with_ids_adds_the_index_to_tuples_and_dicts():
    assert WithIds([(0.5, 1), (0.25, 0)])[1] == (0.25, 0, 1)
    assert WithIds([{"input_ids": [3, 4], "labels": 1}])[0] == {
        "input_ids": [3, 4],
        "labels": 1,
        "example_id": 0,
    }
    with pytest.raises(TypeError, match="item 0 is a int"):
        WithIds([7])[0]


def test_batch_ids_names_the_fix():
    assert batch_ids((torch.zeros(2, 3), torch.tensor([1, 0]), torch.tensor([4, 9]))).tolist() == [
        4,
        9,
    ]
    assert batch_ids({"example_id": torch.tensor([2], dtype=torch.int32)}).dtype == torch.int64
    with pytest.raises(ValueError, match="wrap the training dataset in .*WithIds"):
        batch_ids((torch.zeros(2, 3), torch.zeros(2, 5)))  # (x, y) without ids: y is 2-D float
    with pytest.raises(ValueError, match="keys \\['input_ids'\\]"):
        batch_ids({"input_ids": torch.zeros(2, 3)})


# --------------------------------------------------------------- Lightning
def _digits(n_train=300, n_test=100):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data[: n_train + n_test] / 16, dtype=torch.float32)
    y = torch.tensor(d.target[: n_train + n_test])
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


class LitMLP(lightning.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.out = torch.nn.Linear(64, 32), torch.nn.Linear(32, 10)

    def forward(self, x):
        return self.out(torch.relu(self.fc1(x)))

    def training_step(self, batch, batch_idx):
        x, y, _ids = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _lit_fit(module, loader, callbacks, epochs, ckpt_path=None):
    trainer = lightning.Trainer(
        max_epochs=epochs,
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=any(
            isinstance(c, lightning.pytorch.callbacks.ModelCheckpoint) for c in callbacks
        ),
    )
    trainer.fit(module, loader, ckpt_path=ckpt_path)
    return trainer


@pytest.mark.slow
def test_lightning_trace_equals_the_plain_recorder(tmp_path):
    from torch.utils.data import DataLoader, TensorDataset

    from memdash.integrations.lightning import TraceCallback

    x_tr, y_tr, x_te, y_te = _digits()
    train_set, test_set = TensorDataset(x_tr, y_tr), TensorDataset(x_te, y_te)
    torch.manual_seed(0)
    module = LitMLP()
    start = copy.deepcopy(module.state_dict())
    logged = OrderLog(train_set)
    loader = DataLoader(logged, batch_size=32, shuffle=True)
    options = dict(embed_layers=["fc1"], embed_epochs=[0, 3], checkpoint_epochs=[0, 3])
    cb = TraceCallback(tmp_path / "lit", train_set, test_set, **options)
    _lit_fit(module, loader, [cb], epochs=3)
    lit = Run.open(tmp_path / "lit")

    plain_net = LitMLP()
    plain_net.load_state_dict(start)
    opt = torch.optim.SGD(plain_net.parameters(), lr=0.1)
    batches = _batches(logged.order, 32, 3)
    plain = _plain_run(
        tmp_path / "plain", plain_net, plain_net, x_tr, y_tr, x_te, y_te, opt, batches, **options
    )
    _assert_same_trace(lit, plain)
    assert lit.status == "complete" and lit.layers == ["fc1", "out"]
    assert lit.config["trainer"] == "lightning" and lit.config["train"]["epochs"] == 3
    np.testing.assert_allclose(
        lit.embedding(3, "fc1").astype(np.float32),
        plain.embedding(3, "fc1").astype(np.float32),
        atol=2e-3,
    )
    torch.testing.assert_close(lit.checkpoint(0)["fc1.weight"], start["fc1.weight"])
    torch.testing.assert_close(lit.checkpoint(3)["out.bias"], module.state_dict()["out.bias"])
    _validates_and_analyzes(tmp_path / "lit")


@pytest.mark.slow
def test_lightning_resumes_from_its_checkpoints(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader, TensorDataset

    from memdash.integrations.lightning import TraceCallback

    x_tr, y_tr, x_te, y_te = _digits(200, 50)
    train_set, test_set = TensorDataset(x_tr, y_tr), TensorDataset(x_te, y_te)

    def fit(out, epochs, ckpt_path=None, seed=0):
        torch.manual_seed(seed)
        module = LitMLP()
        loader = DataLoader(
            WithIds(train_set), batch_size=50, shuffle=True, generator=torch.Generator()
        )
        loader.generator.manual_seed(7)
        checkpoints = ModelCheckpoint(dirpath=tmp_path / f"ckpt-{out}", save_top_k=-1)
        cb = TraceCallback(tmp_path / out, train_set, test_set, checkpoint_epochs=[0, 3])
        _lit_fit(module, loader, [cb, checkpoints], epochs, ckpt_path)
        return Run.open(tmp_path / out)

    whole = fit("whole", 3)
    first = fit("resumed", 2)
    assert first.epochs_completed == 2 and first.status == "complete"
    # the shuffling generator is part of Lightning's restored state only through the
    # loader's epoch; the resumed fit draws epoch 3 from the same seeded generator
    resumed = fit("resumed", 3, ckpt_path=tmp_path / "ckpt-resumed" / "epoch=1-step=8.ckpt")
    assert resumed.epochs_completed == 3 and resumed.status == "complete"
    assert resumed.meta["epochs_planned"] == 3
    # epochs 0..2 are the first fit's; epoch 3 trained from its checkpoint
    eval_whole = whole.trace("eval", epochs=[2]).sort_values("example_id")
    eval_resumed = resumed.trace("eval", epochs=[2]).sort_values("example_id")
    np.testing.assert_allclose(eval_whole["loss"], eval_resumed["loss"], rtol=1e-5)
    # resuming from an older checkpoint records the later epochs again
    again = fit("resumed", 3, ckpt_path=tmp_path / "ckpt-resumed" / "epoch=0-step=4.ckpt")
    assert again.epochs_completed == 3
    with pytest.raises(FileExistsError, match="resume the trainer from its checkpoint"):
        fit("resumed", 3)  # from scratch onto a recorded run
    again.validate()
    assert sorted(e for s, e in again.trace_parts() if s == "eval") == [0, 1, 2, 3]


@pytest.mark.slow
def test_lightning_without_ids_says_how_to_add_them(tmp_path):
    from torch.utils.data import DataLoader, TensorDataset

    from memdash.integrations.lightning import TraceCallback

    x_tr, y_tr, x_te, y_te = _digits(64, 16)
    train_set = TensorDataset(x_tr, y_tr)

    class NoIds(LitMLP):
        def training_step(self, batch, batch_idx):
            x, y = batch
            return F.cross_entropy(self(x), y)

    cb = TraceCallback(tmp_path / "lit", train_set)
    with pytest.raises(
        ValueError, match="wrap the training dataset in memdash.integrations.WithIds"
    ):
        _lit_fit(NoIds(), DataLoader(train_set, batch_size=32), [cb], epochs=1)
    assert not (tmp_path / "lit").exists()  # refused before anything was written


@pytest.mark.slow
def test_lightning_readme_example_runs_as_written(tmp_path):
    (tmp_path / "lightning_loop.py").write_text(_readme_block("# lightning_loop.py"))
    subprocess.run(
        [sys.executable, "lightning_loop.py"],
        cwd=tmp_path,
        check=True,
        timeout=600,
        capture_output=True,
    )
    run = Run.open(tmp_path / "runs" / "lightning")
    assert run.status == "complete" and run.epochs_completed == 10
    assert run.embedding(10, "fc1").shape == (1797, 256)
    assert run.checkpoint_epochs() == [0, 10]
    last = run.trace("eval", epochs=[10]).merge(run.examples(), on="example_id")
    assert last[last.split == "test"]["correct"].mean() > 0.9
    _validates_and_analyzes(tmp_path / "runs" / "lightning")


# ---------------------------------------------------- Hugging Face Trainer
def _sequences(n: int, generator: torch.Generator) -> list[dict]:
    ids = torch.randint(5, 50, (n, 12), generator=generator)
    labels = torch.randint(0, 2, (n,), generator=generator)
    ids[labels == 1, torch.randint(0, 12, (int(labels.sum()),), generator=generator)] = 3
    return [{"input_ids": i, "labels": int(label)} for i, label in zip(ids, labels, strict=True)]


def _tiny_bert():
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return transformers.BertForSequenceClassification(config)


def _hf_args(out: Path, epochs: int, **extra):
    return transformers.TrainingArguments(
        str(out),
        num_train_epochs=epochs,
        per_device_train_batch_size=16,
        learning_rate=0.05,
        optim="sgd",
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        remove_unused_columns=False,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        logging_strategy="no",
        **{"save_strategy": "no", **extra},
    )


@pytest.mark.slow
def test_transformers_trace_equals_the_plain_recorder(tmp_path):
    from memdash.integrations.transformers import SequenceClassifier, TraceCallback

    g = torch.Generator().manual_seed(0)
    train_set, test_set = _sequences(96, g), _sequences(32, g)
    torch.manual_seed(0)
    model = _tiny_bert()
    start = copy.deepcopy(model.state_dict())
    options = dict(embed_layers=["bert"], embed_epochs=[2], checkpoint_epochs=[0, 2])
    cb = TraceCallback(tmp_path / "hf", train_set, test_set, **options)
    logged = OrderLog(train_set)
    trainer = transformers.Trainer(
        model, _hf_args(tmp_path / "out", 2), train_dataset=logged, callbacks=[cb]
    )
    trainer.train()
    hf = Run.open(tmp_path / "hf")

    plain_model = _tiny_bert()
    plain_model.load_state_dict(start)
    net = SequenceClassifier(plain_model, pad_token_id=0)
    opt = torch.optim.SGD(plain_model.parameters(), lr=0.05)
    x_tr = torch.stack([item["input_ids"] for item in train_set])
    y_tr = torch.tensor([item["labels"] for item in train_set])
    x_te = torch.stack([item["input_ids"] for item in test_set])
    y_te = torch.tensor([item["labels"] for item in test_set])
    batches = _batches(logged.order, 16, 2)
    plain = _plain_run(
        tmp_path / "plain", net, net, x_tr, y_tr, x_te, y_te, opt, batches, **options
    )
    _assert_same_trace(hf, plain)
    assert hf.layers == ["bert", "classifier"] and hf.config["trainer"] == "transformers"
    pooled = hf.embedding(2, "bert")
    assert pooled.shape == (128, 16)
    np.testing.assert_allclose(
        pooled.astype(np.float32), plain.embedding(2, "bert").astype(np.float32), atol=2e-3
    )
    # checkpoints hold the model's own state-dict keys
    assert set(hf.checkpoint(0)) == set(start)
    torch.testing.assert_close(hf.checkpoint(0)["classifier.weight"], start["classifier.weight"])
    _validates_and_analyzes(tmp_path / "hf")


@pytest.mark.slow
def test_transformers_resumes_and_needs_the_ids_column(tmp_path):
    from memdash.integrations.transformers import TraceCallback

    g = torch.Generator().manual_seed(1)
    train_set = _sequences(64, g)

    def fit(epochs, resume=None, **extra):
        torch.manual_seed(0)
        cb = TraceCallback(tmp_path / "hf", train_set, checkpoint_epochs=[0, 3])
        args = _hf_args(tmp_path / "out", epochs, save_strategy="epoch", **extra)
        trainer = transformers.Trainer(
            _tiny_bert(), args, train_dataset=WithIds(train_set), callbacks=[cb]
        )
        trainer.train(resume_from_checkpoint=resume)
        return Run.open(tmp_path / "hf")

    assert fit(2).epochs_completed == 2
    resumed = fit(3, resume=str(tmp_path / "out" / "checkpoint-8"))  # 4 steps an epoch
    assert resumed.epochs_completed == 3 and resumed.status == "complete"
    assert resumed.checkpoint_epochs() == [0, 3]
    assert sorted(e for s, e in resumed.trace_parts() if s == "train") == [1, 2, 3]

    cb = TraceCallback(tmp_path / "dropped", train_set, overwrite=True)
    args = _hf_args(tmp_path / "out2", 1)
    args.remove_unused_columns = True  # the Trainer drops example_id before the model
    trainer = transformers.Trainer(
        _tiny_bert(), args, train_dataset=WithIds(train_set), callbacks=[cb]
    )
    with pytest.raises(ValueError, match="remove_unused_columns=False"):
        trainer.train()
    assert Run.open(tmp_path / "dropped").status == "failed"


@pytest.mark.slow
def test_transformers_readme_example_runs_as_written(tmp_path):
    (tmp_path / "hf_trainer.py").write_text(_readme_block("# hf_trainer.py"))
    subprocess.run(
        [sys.executable, "hf_trainer.py"],
        cwd=tmp_path,
        check=True,
        timeout=600,
        capture_output=True,
    )
    run = Run.open(tmp_path / "runs" / "bert")
    assert run.status == "complete" and run.epochs_completed == 3
    assert run.embedding(3, "bert").shape == (640, 32)
    last = run.trace("eval", epochs=[3]).merge(run.examples(), on="example_id")
    assert last[last.split == "test"]["correct"].mean() > 0.9
    _validates_and_analyzes(tmp_path / "runs" / "bert")


class LitDropoutMLP(LitMLP):
    """`LitMLP` with dropout: its eval pass differs from its training forward."""

    def forward(self, x):
        return self.out(F.dropout(torch.relu(self.fc1(x)), 0.5, self.training))


@pytest.mark.slow
def test_lightning_eval_trace_is_the_eval_mode_forward_of_each_checkpoint(tmp_path):
    from torch.utils.data import DataLoader, TensorDataset

    from memdash.integrations.lightning import TraceCallback

    x_tr, y_tr, x_te, y_te = _digits(60, 20)
    torch.manual_seed(0)
    module = LitDropoutMLP()
    loader = DataLoader(WithIds(TensorDataset(x_tr, y_tr)), batch_size=16, shuffle=True)
    cb = TraceCallback(
        tmp_path / "lit",
        TensorDataset(x_tr, y_tr),
        TensorDataset(x_te, y_te),
        checkpoint_epochs=[0, 1, 2],
    )
    _lit_fit(module, loader, [cb], epochs=2)
    run = Run.open(tmp_path / "lit")
    # the automatic eval batch: this MLP's 4 x (64 + 32 + 10) bytes an example fit
    # any budget, so every one of the 80 examples goes in one batch
    assert run.config["record"]["eval_batch_size"] == 80
    x, y = torch.cat([x_tr, x_te]), torch.cat([y_tr, y_te])
    for epoch in (0, 1, 2):
        net = LitDropoutMLP()
        net.load_state_dict(run.checkpoint(epoch))
        logits = net.eval()(x).detach()
        p = logits.softmax(1)
        others = logits.scatter(1, y[:, None], float("-inf"))
        trace = run.trace("eval", epochs=[epoch]).sort_values("example_id")
        np.testing.assert_array_equal(trace["example_id"], np.arange(80))
        np.testing.assert_allclose(
            trace["loss"], F.cross_entropy(logits, y, reduction="none"), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(trace["prob_label"], p[torch.arange(80), y], rtol=1e-5)
        np.testing.assert_allclose(
            trace["margin"], logits[torch.arange(80), y] - others.amax(1), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_array_equal(trace["pred"], logits.argmax(1))
