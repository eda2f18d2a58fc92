"""The Hugging Face Trainer callback on causal-LM fine-tuning (``task="causal_lm"``), end to
end with the real libraries: a tiny GPT-2 fine-tuned by ``transformers.Trainer`` records a
text run whose traces line up with the Trainer's own loss, whose ``correct`` is greedy
extraction, which analyzes and resumes; and the misuses get one clear message each."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.record.text.scoring import greedy_generate
from memdash.analysis.record.text.tokenize import train_bpe
from memdash.analysis.record.text.training import load_run_lm, run_tokenizer
from memdash.analysis.store import Run
from memdash.integrations import WithIds

README = Path(__file__).resolve().parents[1] / "README.md"
runner = CliRunner()
PREFIX, SUFFIX, BATCH = 8, 4, 4


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


def _texts() -> list[str]:
    """40 texts: 20 runs of one character (a tiny model soon continues them) and 20 random."""
    rng = np.random.default_rng(0)
    runs = [c * (14 + i % 5) for i, c in enumerate("abcdefghijklmnopqrst")]
    noise = ["".join(rng.choice(list("abcdefghijklmnop"), 18)) for _ in range(20)]
    return [t for pair in zip(runs, noise, strict=True) for t in pair]


@pytest.fixture(scope="module")
def tokenizer():
    """A byte-level fast tokenizer: the 256 bytes and ``<bos>`` (id 0), also its padding."""
    bpe = train_bpe(_texts(), 257)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe.tokenizer, bos_token="<bos>", eos_token="<bos>", pad_token="<bos>"
    )


def _items(tok, bos_first: bool = True) -> list[dict]:
    lead = [tok.bos_token_id] if bos_first else []
    return [{"input_ids": lead + tok(t)["input_ids"]} for t in _texts()]


def _tiny_gpt2(tok):
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=len(tok), n_positions=32, n_embd=16, n_layer=1, n_head=2,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.bos_token_id,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    return transformers.GPT2LMHeadModel(config)


def _fit(tmp_path, tok, items, *, epochs=2, resume=None, save="no", **options):
    """Fine-tune a tiny GPT-2 on 32 items (8 held out) with the callback; the run and the
    order the loader read the items in."""
    record = {"task": "causal_lm", "prefix_len": PREFIX, "suffix_len": SUFFIX, **options}
    from memdash.integrations.transformers import TraceCallback

    trace = TraceCallback(tmp_path / "lm", items[:32], items[32:], **record)
    args = transformers.TrainingArguments(
        str(tmp_path / "out"),
        num_train_epochs=epochs,
        per_device_train_batch_size=BATCH,
        learning_rate=1e-2,
        lr_scheduler_type="constant",
        remove_unused_columns=False,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        logging_strategy="no",
        save_strategy=save,
    )
    logged = OrderLog(items[:32])
    trainer = transformers.Trainer(
        _tiny_gpt2(tok),
        args,
        train_dataset=logged,
        data_collator=transformers.DataCollatorForLanguageModeling(tok, mlm=False),
        callbacks=[trace],
    )
    trainer.train(resume_from_checkpoint=resume)
    return Run.open(tmp_path / "lm"), logged.order


def _losses(run: Run, source: str, epoch: int, ids) -> np.ndarray:
    table = run.trace(source, epochs=[epoch]).set_index("example_id")
    return table.loc[list(ids), "loss"].to_numpy()


def _hf_losses(model, rows) -> np.ndarray:
    """The Trainer's own loss of each row (labels = input_ids, shifted inside the model)."""
    with torch.no_grad():
        return np.array([float(model(input_ids=r[None], labels=r[None]).loss) for r in rows])


def _validates_and_analyzes(path: Path) -> None:
    info = runner.invoke(app, ["info", str(path)])
    assert info.exit_code == 0, info.output
    assert "valid: every file matches" in info.output
    analyze = runner.invoke(app, ["analyze", str(path)])
    assert analyze.exit_code == 0, analyze.output
    assert len(Run.open(path).read_derived("scores.parquet")) == Run.open(path).n_examples()
    assert len(Run.open(path).read_derived("extraction.parquet")) > 0


# ---------------------------------------------------------------- the run
@pytest.mark.slow
def test_causal_lm_run_is_a_text_run_aligned_with_the_trainer(tmp_path, tokenizer):
    items = _items(tokenizer)
    run, order = _fit(
        tmp_path,
        tokenizer,
        items,
        tokenizer=tokenizer,
        embed_layers=["block1", "out"],
        embed_epochs=[2],
        checkpoint_epochs=[0, 1, 2],
    )
    assert run.is_text and run.status == "complete" and run.epochs_completed == 2
    text = {"tokenizer": "hf", "vocab_size": 257, "bos_id": 0, "entropy_bits": None}
    assert run.meta["text"] == text
    assert run.layers == ["embed", "block1", "out"] and run.config["model"]["name"] == "gpt"
    # the tokens without the BOS every item begins with, -1 after their end
    tokens = np.asarray(run.inputs())
    assert tokens.dtype == np.int32 and tokens.shape == (40, 18)
    for row, item in zip(tokens, items, strict=True):
        n = len(item["input_ids"]) - 1
        assert row[:n].tolist() == item["input_ids"][1:] and (row[n:] == -1).all()
    examples = run.examples()
    assert examples["text"].tolist() == _texts()
    assert examples["split"].tolist() == ["train"] * 32 + ["test"] * 8
    assert (examples["n_tokens"] == (tokens >= 0).sum(1)).all()
    assert (examples["prefix_len"] == PREFIX).all() and (examples["suffix_len"] == SUFFIX).all()
    assert examples["duplicates"].tolist() == [1] * 32 + [0] * 8
    assert (examples["secret"] == "").all()
    assert run_tokenizer(run).decode(tokens[1][tokens[1] >= 0].tolist()) == _texts()[1]
    # both sources; per-token losses at the checkpoint epochs; embeddings
    parts = run.trace_parts()
    assert sorted(e for s, e in parts if s == "eval") == [0, 1, 2]
    assert sorted(e for s, e in parts if s == "train") == [1, 2]
    assert run.token_loss_epochs() == [0, 1, 2]
    per_token = run.token_losses(2).astype(np.float32)
    np.testing.assert_allclose(
        np.nanmean(per_token, 1), _losses(run, "eval", 2, range(40)), rtol=2e-3
    )
    assert run.embedding(2, "block1").shape == (40, 16)
    assert run.embedding(2, "out").shape == (40, 257)
    # the first batch trained on the initial weights: its minibatch statistics, the eval pass
    # before training and the Trainer's own loss agree (the logits are aligned)
    first = order[:BATCH]
    initial = _hf_losses(
        load_run_lm(run, 0).wrapped, [torch.tensor(items[i]["input_ids"]) for i in first]
    )
    np.testing.assert_allclose(_losses(run, "train", 1, first), initial, rtol=1e-4)
    np.testing.assert_allclose(_losses(run, "eval", 0, first), initial, rtol=1e-4)
    # `correct` is greedy extraction from the run's own checkpoints
    x, seen = torch.from_numpy(tokens.astype(np.int64)), []
    for epoch in (0, 1, 2):
        model = load_run_lm(run, epoch)
        generated = greedy_generate(model, x[:, :PREFIX], SUFFIX, bos=0)
        extracted = (generated == x[:, PREFIX : PREFIX + SUFFIX]).all(1).numpy()
        correct = run.trace("eval", epochs=[epoch]).sort_values("example_id")["correct"]
        np.testing.assert_array_equal(correct.to_numpy(), extracted)
        seen.append(extracted)
    assert np.any(seen) and not np.all(seen)
    _validates_and_analyzes(tmp_path / "lm")


@pytest.mark.slow
def test_causal_lm_items_without_bos_and_without_tokenizer(tmp_path, tokenizer):
    """GPT-2's way: no BOS in the items. The run stores them as they are; the eval pass reads
    BOS first, the minibatch statistics score tokens 1.. as the Trainer does."""
    items = _items(tokenizer, bos_first=False)
    run, order = _fit(tmp_path, tokenizer, items, bos_token_id=tokenizer.bos_token_id)
    assert run.status == "complete" and "tokenizer" not in run.meta["text"]
    assert (run.examples()["text"] == "").all()
    assert (
        np.asarray(run.inputs())[0, : len(items[0]["input_ids"])].tolist() == items[0]["input_ids"]
    )
    first = order[:BATCH]
    rows = [torch.tensor(items[i]["input_ids"]) for i in first]
    model = load_run_lm(run, 0).wrapped
    np.testing.assert_allclose(_losses(run, "train", 1, first), _hf_losses(model, rows), rtol=1e-4)
    with_bos = [torch.cat([torch.tensor([tokenizer.bos_token_id]), r]) for r in rows]
    np.testing.assert_allclose(
        _losses(run, "eval", 0, first), _hf_losses(model, with_bos), rtol=1e-4
    )


@pytest.mark.slow
def test_causal_lm_resumes_from_the_trainer_checkpoint(tmp_path, tokenizer):
    items = _items(tokenizer)
    options = {"tokenizer": tokenizer, "checkpoint_epochs": [0, 2], "save": "epoch"}
    assert _fit(tmp_path, tokenizer, items, epochs=1, **options)[0].epochs_completed == 1
    resume = str(tmp_path / "out" / "checkpoint-8")  # 32 items, 4 a batch
    run, _ = _fit(tmp_path, tokenizer, items, resume=resume, **options)
    assert run.status == "complete" and run.epochs_completed == 2
    assert run.checkpoint_epochs() == [0, 2]
    assert sorted(e for s, e in run.trace_parts() if s == "train") == [1, 2]
    assert sorted(e for s, e in run.trace_parts() if s == "eval") == [0, 1, 2]


@pytest.mark.slow
def test_causal_lm_refuses_batches_it_cannot_align(tmp_path, tokenizer):
    left = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer.backend_tokenizer, bos_token="<bos>", pad_token="<bos>",
        padding_side="left",
    )  # fmt: skip
    with pytest.raises(ValueError, match="misalign"):
        _fit(tmp_path, left, _items(tokenizer), tokenizer=tokenizer)
    assert Run.open(tmp_path / "lm").status == "failed"


# ---------------------------------------------------------------- misuse
def test_callback_options_get_one_clear_message(tmp_path, tokenizer):
    from memdash.integrations.transformers import TraceCallback

    items = _items(tokenizer)
    lm = {"task": "causal_lm", "tokenizer": tokenizer}
    with pytest.raises(ValueError) as err:
        TraceCallback(tmp_path / "a", items, prefix_len=30, **lm)
    assert "\n" not in str(err.value)
    assert str(err.value) == (
        "TraceCallback: 40 of 40 sequences are shorter than prefix_len + suffix_len = 46 "
        "tokens (after the BOS they begin with); the shortest has 14: pass a smaller "
        "prefix_len or suffix_len"
    )
    cases = [
        ({"task": "lm"}, "unknown task 'lm'; valid: sequence_classification, causal_lm"),
        ({**lm, "pad_token_id": 0}, "pad_token_id: only for task='sequence_classification'"),
        ({"prefix_len": 4}, "prefix_len: only for task='causal_lm'"),
        ({}, "no labels or label.*pass task='causal_lm'"),
        ({"task": "causal_lm"}, "needs the BOS id.*bos_token_id="),
        (
            {**lm, "prefix_len": 4, "suffix_len": 4, "embed_pool": "max"},
            "unknown embed_pool 'max'; valid: last, mean",
        ),
    ]
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            TraceCallback(tmp_path / "a", items, **options)
    classified = [{"input_ids": [1, 2, 3], "labels": 1}]
    with pytest.raises(ValueError, match="class label"):
        TraceCallback(tmp_path / "a", classified, **lm)


@pytest.mark.slow
def test_causal_lm_readme_example_runs_as_written(tmp_path):
    (tmp_path / "hf_causal_lm.py").write_text(_readme_block("# hf_causal_lm.py"))
    subprocess.run(
        [sys.executable, "hf_causal_lm.py"],
        cwd=tmp_path,
        check=True,
        timeout=600,
        capture_output=True,
    )
    run = Run.open(tmp_path / "runs" / "lm")
    assert run.is_text and run.status == "complete" and run.epochs_completed == 5
    _validates_and_analyzes(tmp_path / "runs" / "lm")
