"""A text run end to end: `memdash train --dataset text`, the per-sequence trace, per-token
losses, the exact exposure against a hand ranking, extraction, the findings' role, and the
bad inputs refused before anything is written."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from memdash.analysis.cli import app
from memdash.analysis.findings.selection import roles
from memdash.analysis.record.text.formats import parse_format
from memdash.analysis.record.text.scoring import candidate_logperplexity, greedy_generate
from memdash.analysis.record.text.training import load_run_lm, run_tokenizer
from memdash.analysis.steps.pipeline import analyze
from memdash.analysis.store import Run

runner = CliRunner()
TINY = [
    *("--dataset", "text", "--model", "gpt", "--width", "16", "--layers", "1"),
    *("--heads", "2", "--epochs", "2", "--n-examples", "60", "--seq-len", "24"),
    *("--prefix-len", "8", "--suffix-len", "4", "--batch-size", "16"),
]
CANARIES = [
    *("--canaries", "1", "--canary-repeats", "1,8", "--reference-canaries", "6"),
    *("--canary-format", "pin {d}{d}{d}"),
    *("--duplicate-sequences", "2", "--duplicate-counts", "1,4"),
    *("--embed-layers", "block1,out", "--embed-epochs", "0,2", "--checkpoint-epochs", "0,1"),
]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("text") / "run"
    result = runner.invoke(app, ["train", *TINY, *CANARIES, "--out", str(out)])
    assert result.exit_code == 0, result.output
    analyze(out)
    return Run.open(out)


def test_a_text_run_stores_sequences_and_their_trace(text_run):
    run = text_run
    assert run.is_text and run.status == "complete"
    assert run.meta["text"] == {"tokenizer": "byte", "vocab_size": 257, "bos_id": 256} | {
        "entropy_bits": run.meta["text"]["entropy_bits"]
    }
    tokens = np.asarray(run.inputs())
    examples = run.examples()
    assert tokens.dtype == np.int32 and tokens.shape == (len(examples), 24)
    n_tokens = examples["n_tokens"].to_numpy()
    assert ((tokens >= 0).sum(1) == n_tokens).all()  # -1 after each sequence's end
    # a canary is the format with its secret, its prefix the format's text before the slots
    canary = examples[examples["is_canary"] & (examples["split"] == "train")].iloc[0]
    assert canary["text"] == f"pin {canary['secret']}" and canary["prefix_len"] == 4
    assert canary["suffix_len"] == 3
    ids = tokens[canary["example_id"], : canary["n_tokens"]]
    assert bytes(ids.astype(np.uint8)).decode() == canary["text"]
    # copies per epoch: a duplicated sequence 1 or 4 times, a canary 1 or 8 times
    dup = examples[examples["corruption"] == "duplicate"]
    assert sorted(dup["duplicates"]) == [1, 1, 4, 4]
    columns = ["epoch", "example_id", "loss", "pred", "log_perplexity", "token_accuracy"]
    trace = run.trace("eval", columns=columns)
    assert list(trace.columns) == columns
    assert (trace["pred"] == -1).all()
    # log-perplexity is the sum of the token losses in bits; loss their mean in nats
    last = trace[trace["epoch"] == 2].set_index("example_id").sort_index()
    per_token = run.token_losses(2).astype(np.float64)
    np.testing.assert_allclose(np.nanmean(per_token, 1), last["loss"], rtol=2e-3)
    np.testing.assert_allclose(
        np.nansum(per_token, 1) / np.log(2), last["log_perplexity"], rtol=2e-3
    )
    assert np.isnan(per_token[canary["example_id"], canary["n_tokens"] :]).all()
    assert run.token_loss_epochs() == [0, 1, 2]  # the embedding and checkpoint epochs
    assert run.embedding(2, "block1").shape == (len(examples), 16)  # the width
    assert run.embedding(2, "out").shape == (len(examples), 257)  # logits over the bytes


def test_extractable_is_what_greedy_decoding_reproduces(text_run):
    run = text_run
    model, tok = load_run_lm(run, 2), run_tokenizer(run)
    examples = run.examples()
    trace = run.trace("eval")
    last = trace[trace["epoch"] == 2].set_index("example_id")["correct"]
    tokens = np.asarray(run.inputs())
    for i in range(0, len(examples), 7):
        p, s = int(examples.at[i, "prefix_len"]), int(examples.at[i, "suffix_len"])
        prefix = torch.tensor(tokens[i, :p], dtype=torch.long)
        generated = greedy_generate(model, prefix, s, tok.bos_id)
        assert bool(last[i]) == bool((generated.numpy() == tokens[i, p : p + s]).all())


def test_exact_exposure_ranks_each_secret_among_every_candidate(text_run):
    run = text_run
    table = run.read_derived("exposure.parquet")
    model, tok = load_run_lm(run, 1), run_tokenizer(run)
    fmt = parse_format("pin {d}{d}{d}")
    prefix = torch.tensor([tok.bos_id, *tok.encode("pin ")])
    candidates = torch.tensor([tok.encode(f"{i:03d}") for i in range(1000)])
    px = candidate_logperplexity(model, prefix, candidates, 500)  # the naive way, by hand
    at = table[table["epoch"] == 1]
    assert fmt.space_size == 1000 and (at["ceiling"] == np.log2(1000)).all()
    for row in at.itertuples():
        mine = px[int(row.secret)]
        rank = 1 + int((px < mine - 1e-9).sum())
        assert row.rank == rank
        assert row.exposure_exact == pytest.approx(np.log2(1000) - np.log2(rank))
        assert row.log_perplexity == pytest.approx(mine, rel=1e-6)
    assert at["exact_available"].all()
    assert set(at["kind"]) == {"canary", "reference"} and len(at) == 2 + 6


def test_extraction_counts_the_trace_by_group(text_run):
    run = text_run
    table = run.read_derived("extraction.parquet")
    examples = run.examples()
    trace = run.trace("eval")
    correct = trace[trace["epoch"] == 2].set_index("example_id").sort_index()["correct"]
    at = table[table["epoch"] == 2].set_index(["kind", "copies"])
    dup4 = examples.index[(examples["corruption"] == "duplicate") & (examples["duplicates"] == 4)]
    assert at.loc[("duplicate", 4), "n"] == 2
    assert at.loc[("duplicate", 4), "extracted"] == int(correct.loc[dup4].sum())
    assert at.loc[("reference", 0), "n"] == 6
    assert at.loc[("canary", 8), "n"] == 1


def test_classifier_steps_do_not_apply_and_the_run_has_the_text_role(text_run):
    done = analyze(text_run.path, only=["knn", "scores"])
    assert done == {"knn": "not for text runs", "scores": "up to date"}
    assert roles([text_run]) == {"text": text_run}


def _refused(tmp_path, *options: str) -> str:
    out = tmp_path / "refused"
    result = runner.invoke(app, ["train", *TINY, *options, "--out", str(out)])
    assert result.exit_code != 0 and not out.exists(), result.output
    return " ".join(result.output.split())


def test_bad_text_inputs_are_refused_with_one_line_and_nothing_on_disk(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert "empty.txt" in _refused(tmp_path, "--data-path", str(empty))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café au lait\n".encode("latin-1") * 40)
    assert "UTF-8" in _refused(tmp_path, "--data-path", str(latin))
    short = tmp_path / "short.txt"
    short.write_text("tiny line\n" * 80)
    said = _refused(tmp_path, "--data-path", str(short), "--chunking", "lines")
    assert "shorter than" in said and "12" in said  # P + S = 8 + 4
    said = _refused(tmp_path, "--canaries", "1", "--canary-format", "my pin is secret")
    assert "{d}" in said
    not_lm = tmp_path / "not_a_model"
    not_lm.mkdir()
    (not_lm / "config.json").write_text(json.dumps({"model_type": "bert"}))
    said = _refused(tmp_path, "--model", "hf", "--model-path", str(not_lm))
    assert "--model-path" in said
    said = _refused(tmp_path, "--model", "mlp")
    assert "language model" in said
    said = _refused(tmp_path, "--embed-layers", "fc1")
    assert "unknown embedding layers ['fc1']" in said and "block1" in said
    # sizes that cannot fit: GPT-2's 12 W^2 per block, 2 blocks at W = 60,000
    said = _refused(tmp_path, "--width", "60000", "--layers", "2")
    assert "--width 60000 with --layers 2" in said and "86,4" in said


def test_a_format_too_large_to_rank_is_extrapolated_and_says_so(tmp_path):
    out = tmp_path / "wide"
    fmt = "id {d}{d}{d}{d}{d}{d}{d}{d}{d}{d}"  # 10^10 candidates
    options = ["--canaries", "1", "--canary-repeats", "2", "--reference-canaries", "4"]
    result = runner.invoke(
        app, ["train", *TINY, *options, "--canary-format", fmt, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "will extrapolate its exposure" in " ".join(result.output.split())
    analyze(out, only=["exposure"])
    table = pd.read_parquet(out / "derived" / "exposure.parquet")
    assert not table["exact_available"].any() and table["exposure_exact"].isna().all()
    assert table["exposure_extrapolation"].notna().all()
    assert (table["ceiling"] == 10 * np.log2(10)).all()


def _saved_causal_lm(folder):
    """A tiny GPT-2 saved with save_pretrained, with a GPT-2-style byte-level BPE (a space
    joins the digit after it) and its tokenizer_config.json naming the EOS token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([f"the quick brown fox {i}" for i in range(200)], trainer)
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>"}))
    config = GPT2Config(vocab_size=tok.get_vocab_size(), n_positions=32, n_embd=16, n_layer=1)
    config.n_head, config.bos_token_id = 2, tok.token_to_id("<|endoftext|>")
    config.eos_token_id = config.bos_token_id
    GPT2LMHeadModel(config).save_pretrained(folder)
    return tok


def test_a_causal_lm_checkpoint_is_fine_tuned_with_its_own_tokenizer(tmp_path):
    tok = _saved_causal_lm(tmp_path / "lm")
    out = tmp_path / "tuned"
    options = ["--model", "hf", "--model-path", str(tmp_path / "lm"), "--epochs", "1"]
    options += ["--canaries", "1", "--canary-repeats", "2", "--reference-canaries", "3"]
    result = runner.invoke(app, ["train", *TINY, *options, "--out", str(out)])
    assert result.exit_code == 0, result.output
    run = Run.open(out)
    assert run.meta["text"]["tokenizer"] == "hf"
    assert run.meta["text"]["bos_id"] == tok.token_to_id("<|endoftext|>")
    assert run.tokenizer_json() == tok.to_str()
    examples = run.examples()
    canary = examples[examples["is_canary"]].iloc[0]
    # "my pin is" then " 4...": the space goes with the secret's first digit
    tokens = run.inputs()[canary["example_id"]]
    assert run_tokenizer(run).decode(tokens[: canary["prefix_len"]]) == "my pin is"
    assert (
        run_tokenizer(run).decode(tokens[canary["prefix_len"] :][:1]) == " " + canary["secret"][0]
    )
    analyze(out, only=["exposure"])
    table = run.read_derived("exposure.parquet")
    assert not table["exact_available"].any() and table["exposure_extrapolation"].notna().all()
    # sequences longer than the checkpoint's 32 positions are refused before anything is written
    said = _refused(tmp_path, *options, "--seq-len", "40")
    assert "exceed the model's context of 32 positions" in said


def test_a_run_without_a_tokenizer_shows_its_tokens_by_id():
    from memdash.analysis.record.text.tokenize import IdTokenizer

    tok = IdTokenizer(50, 49)
    assert tok.token_texts([3, 49]) == ["⟨3⟩", "⟨49⟩"] and tok.decode([7, 8]) == "⟨7⟩⟨8⟩"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.token_texts([50])
    with pytest.raises(ValueError, match="stored no tokenizer"):
        tok.encode("x")


def test_a_sequences_embedding_is_the_state_after_its_last_token(text_run):
    """`last` pooling: the layer's state once BOS and every token have been read."""
    run = text_run
    model, bos = load_run_lm(run, 2), run.meta["text"]["bos_id"]
    tokens = np.asarray(run.inputs())
    stored = run.embedding(2, "block1").astype(np.float32)
    for i in (0, int(run.examples()["is_canary"].to_numpy().argmax())):
        n = int((tokens[i] >= 0).sum())
        read = torch.tensor([[bos, *tokens[i, :n]]], dtype=torch.long)
        with torch.no_grad():
            state = model.hidden(read, ["block1"])["block1"][0, n].numpy()
        np.testing.assert_allclose(stored[i], state, atol=2e-2, rtol=2e-2)
