"""Causal language models (record/text/models.py) and their scoring (record/text/scoring.py):
the digit tree against the naive enumeration, the extraction flag against greedy decoding,
exposure ranks, token losses against torch's cross-entropy, checkpoints round trips."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

from memdash.analysis.measures.text_exposure import rank_exposure
from memdash.analysis.record.text.models import LM_MODELS, build_lm
from memdash.analysis.record.text.scoring import (
    candidate_logperplexity,
    greedy_generate,
    model_inputs,
    sequence_statistics,
    token_statistics,
    tree_logperplexity,
)

VOCAB = 20
BOS = VOCAB - 1
DIGITS = list(range(10))  # token ids of "0".."9" in these tiny vocabularies
KINDS = ("gpt", "lstm")


SIZES = {"vocab_size": VOCAB, "context": 24, "layers": 2, "width": 16, "heads": 2}


def lm(kind: str, **options) -> torch.nn.Module:
    """`build_lm` with the tiny sizes, `options` overriding them."""
    return build_lm(kind, **{**SIZES, "dropout": 0.0, "model_path": None, **options})


def tiny(kind: str, seed: int = 0, **options) -> torch.nn.Module:
    torch.manual_seed(seed)
    return lm(kind, **options).eval()


def full_rows(literal_ids: list[list[int]], slots: int) -> torch.Tensor:
    """Every candidate's tokens after the prefix, written out: digit, literal, digit, ..."""
    rows = []
    for digits in itertools.product(range(10), repeat=slots):
        row = []
        for j, d in enumerate(digits):
            row += [DIGITS[d], *literal_ids[j + 1]]
        rows.append(row)
    return torch.tensor(rows)


# ------------------------------------------------------------------ the models


def test_gpt_layers_are_the_blocks_and_hidden_states_are_theirs():
    model = tiny("gpt", layers=3)
    assert [name for name, _ in model.named_children()] == [
        "embed",
        "block1",
        "block2",
        "block3",
        "out",
    ]
    assert LM_MODELS == ("gpt", "lstm", "hf")
    ids = torch.randint(0, VOCAB, (2, 7))
    with torch.no_grad():
        logits = model(ids)
        states = model.hidden(ids, ["embed", "block2", "out"])
        wte, wpe = model.embed.wte, model.embed.wpe
        embedded = wte(ids) + wpe(torch.arange(7))[None]
    assert logits.shape == (2, 7, VOCAB)
    assert states["block2"].shape == (2, 7, 16)
    torch.testing.assert_close(states["embed"], embedded)
    torch.testing.assert_close(states["out"], logits)
    # GPT-2 ties the output matrix to the token embeddings
    assert model.out.head.weight is model.embed.wte.weight


def test_lstm_layers_and_hidden_states():
    model = tiny("lstm", layers=2)
    assert [name for name, _ in model.named_children()] == ["embed", "lstm1", "lstm2", "out"]
    ids = torch.randint(0, VOCAB, (3, 5))
    with torch.no_grad():
        states = model.hidden(ids, ["embed", "lstm2", "out"])
        torch.testing.assert_close(states["embed"], model.embed(ids))
        torch.testing.assert_close(states["out"], model(ids))
    assert states["lstm2"].shape == (3, 5, 16)
    with pytest.raises(ValueError, match="block1.*valid: embed, lstm1, lstm2, out"):
        model.hidden(ids, ["block1"])


@pytest.mark.parametrize("kind", KINDS)
def test_continue_from_equals_the_full_forward_and_keeps_the_state(kind):
    model = tiny(kind)
    prefix = torch.tensor([BOS, 12, 13, 14])
    rows = torch.randint(0, VOCAB, (5, 6))
    with torch.no_grad():
        full = model(torch.cat([prefix.expand(5, -1), rows], 1))
        state, next_logits = model.prefix_state(prefix)
        kept = [t.clone() for t in _state_tensors(state)]
        first = model.continue_from(state, rows)
        again = model.continue_from(state, rows[:2])
    torch.testing.assert_close(next_logits, full[0, 3], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(first, full[:, 4:], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(again, first[:2], rtol=1e-5, atol=1e-6)
    after = _state_tensors(state)
    assert len(after) == len(kept)
    assert all(a.shape == k.shape and torch.equal(a, k) for a, k in zip(after, kept, strict=True))


def _state_tensors(state) -> list[torch.Tensor]:
    if isinstance(state, tuple):  # LSTM: (h, c) per layer
        return [t for pair in state for t in pair]
    return [t for layer in state.layers for t in (layer.keys, layer.values)]


def test_positions_beyond_the_context_are_refused():
    model = tiny("gpt")
    with pytest.raises(ValueError, match="25 positions exceed its context of 24"):
        model(torch.zeros(1, 25, dtype=torch.long))
    state, _ = model.prefix_state(torch.tensor([BOS] * 20))
    with pytest.raises(ValueError, match="exceed its context"):
        model.continue_from(state, torch.zeros(2, 5, dtype=torch.long))


def test_build_lm_refuses_bad_options():
    with pytest.raises(ValueError, match="unknown --model 'rnn'.*gpt, lstm, hf"):
        lm("rnn")
    with pytest.raises(ValueError, match="--width 10 is not a multiple of --heads 4"):
        lm("gpt", width=10, heads=4)
    with pytest.raises(ValueError, match="--dropout must lie in"):
        lm("lstm", dropout=1.5)
    with pytest.raises(ValueError, match="--layers must be >= 1"):
        lm("lstm", layers=0)


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_saves_with_safetensors_and_loads_back(kind, tmp_path):
    model = tiny(kind, seed=1)
    path = tmp_path / "model.safetensors"
    save_file({k: v.detach().clone() for k, v in model.state_dict().items()}, str(path))
    other = tiny(kind, seed=2)
    ids = torch.randint(0, VOCAB, (2, 6))
    with torch.no_grad():
        assert not torch.equal(other(ids), model(ids))
        other.load_state_dict(load_file(str(path)))
        assert torch.equal(other(ids), model(ids))


def _tiny_checkpoint(arch: str):
    torch.manual_seed(3)
    if arch == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=VOCAB, n_positions=24, n_embd=16, n_layer=2, n_head=2
        )
        return transformers.GPT2LMHeadModel(config).eval()
    sizes = {"vocab_size": VOCAB, "hidden_size": 16, "num_hidden_layers": 2}
    sizes.update(num_attention_heads=2, max_position_embeddings=24)
    if arch == "opt":  # its forward calls model.decoder directly: no block layout
        config = transformers.OPTConfig(ffn_dim=32, word_embed_proj_dim=16, **sizes)
        return transformers.OPTForCausalLM(config).eval()
    config = transformers.LlamaConfig(intermediate_size=32, num_key_value_heads=1, **sizes)
    return transformers.LlamaForCausalLM(config).eval()


BLOCKS = ["embed", "block1", "block2", "out"]


@pytest.mark.parametrize(
    ("arch", "layers"), [("gpt2", BLOCKS), ("llama", BLOCKS), ("opt", ["model", "lm_head"])]
)
def test_a_saved_checkpoint_loads_with_model_hf(arch, layers, tmp_path):
    original = _tiny_checkpoint(arch)
    original.save_pretrained(tmp_path)
    model = lm("hf", model_path=str(tmp_path))
    assert model.kind == "hf" and model.context == 24
    assert [name for name, _ in model.named_children()] == layers
    ids = torch.randint(0, VOCAB, (3, 8))
    with torch.no_grad():
        expected = original(ids).logits
        torch.testing.assert_close(model.eval()(ids), expected)
        torch.testing.assert_close(model.hidden(ids, layers[-1:])[layers[-1]], expected)
        state, _ = model.prefix_state(ids[0, :3])
        cont = model.continue_from(state, ids[:1, 3:])
    torch.testing.assert_close(cont, expected[:1, 3:], rtol=1e-5, atol=1e-6)
    if arch == "opt":
        with pytest.raises(ValueError, match="layers \\['model'\\] give no hidden states"):
            model.hidden(ids, ["model"])


def test_a_folder_that_is_not_a_causal_lm_names_model_path(tmp_path):
    def load(path):
        return lm("hf", model_path=path)

    with pytest.raises(ValueError, match="--model-path .*no config.json"):
        load(str(tmp_path))
    with pytest.raises(ValueError, match="--model-path .*no such folder"):
        load(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="--model hf needs --model-path"):
        load(None)
    vit = tmp_path / "vit"
    transformers.ViTConfig(hidden_size=16, num_hidden_layers=1).save_pretrained(vit)
    with pytest.raises(ValueError, match="--model-path .*'vit' model is not a causal language"):
        load(str(vit))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-model"}')
    with pytest.raises(ValueError, match="--model-path .*config.json cannot be read"):
        load(str(broken))
    small = tmp_path / "small"
    _tiny_checkpoint("gpt2").save_pretrained(small)
    with pytest.raises(ValueError, match="--model-path .*predicts 20 tokens, fewer than .* 50"):
        lm("hf", vocab_size=50, model_path=str(small))


# ------------------------------------------------------------------ exposure


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "literal_ids",
    [[[BOS, 12, 13], [14], [], [15, 16]], [[BOS], [], [17, 11], []]],
    ids=["literals-after", "no-trailing-literal"],
)
def test_tree_logperplexity_equals_the_naive_enumeration(kind, literal_ids):
    model = tiny(kind, dropout=0.1).train()  # scoring runs in eval mode and restores the mode
    tree = tree_logperplexity(model, literal_ids, DIGITS, 3, batch=64)
    naive = candidate_logperplexity(
        model, torch.tensor(literal_ids[0]), full_rows(literal_ids, 3), batch=128
    )
    assert model.training
    assert tree.shape == (1000,) and tree.dtype == np.float64
    np.testing.assert_allclose(tree, naive, rtol=1e-6)
    # candidate 042 by hand: its tokens' log-probabilities from one full forward pass
    row = full_rows(literal_ids, 3)[42]
    with torch.no_grad():
        seq = torch.cat([torch.tensor(literal_ids[0]), row])[None]
        logp = model.eval()(seq).double().log_softmax(-1)[0]
    start = len(literal_ids[0])
    by_hand = -sum(float(logp[start - 1 + i, int(tok)]) for i, tok in enumerate(row)) / math.log(2)
    assert tree[42] == pytest.approx(by_hand, rel=1e-6)


def test_tree_logperplexity_refuses_malformed_formats():
    model = tiny("lstm")
    with pytest.raises(ValueError, match="slots \\+ 1 = 3 literals"):
        tree_logperplexity(model, [[BOS], []], DIGITS, 2, batch=8)
    with pytest.raises(ValueError, match="10 digits"):
        tree_logperplexity(model, [[BOS], []], DIGITS[:9], 1, batch=8)
    with pytest.raises(ValueError, match="batch must be >= 1"):
        tree_logperplexity(model, [[BOS], []], DIGITS, 1, batch=0)


def test_rank_exposure_by_hand():
    px_all = np.array([3.0, 1.0, 2.0, 2.0, 5.0])
    rank, exposure = rank_exposure(px_all, np.array([2.0, 1.0, 5.0, 0.5]))
    # ranks: 1 + #{px < 2} = 2, 1 + #{px < 1} = 1, 1 + #{px < 5} = 5, 1 + 0 = 1
    assert rank.tolist() == [2, 1, 5, 1] and rank.dtype == np.int64
    np.testing.assert_allclose(exposure, np.log2(5) - np.log2([2, 1, 5, 1]))
    assert exposure[2] == 0.0
    with pytest.raises(ValueError, match="finite"):
        rank_exposure(np.array([1.0, np.nan]), np.array([1.0]))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        rank_exposure(np.array([]), np.array([1.0]))


# ------------------------------------------------------------------ per-token statistics


def test_model_inputs_shift_in_bos_and_mask_padding():
    tokens = torch.tensor([[5, 6, 7], [8, -1, -1]], dtype=torch.int32)
    ids, mask = model_inputs(tokens, 9)
    assert ids.tolist() == [[9, 5, 6], [9, 8, 9]] and ids.dtype == torch.int64
    assert mask.tolist() == [[True, True, True], [True, False, False]]


def test_token_statistics_match_cross_entropy_and_hand_values():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 7) * 4
    tokens = torch.randint(0, 7, (3, 5))
    tokens[1, 3:] = -1
    stats = token_statistics(logits, tokens)
    expected = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), tokens, ignore_index=-1, reduction="none"
    )
    valid = tokens >= 0
    torch.testing.assert_close(stats["loss"][valid], expected[valid])
    assert torch.isnan(stats["loss"][~valid]).all() and torch.isnan(stats["margin"][~valid]).all()
    assert not stats["correct"][~valid].any()
    # by hand: logits (2, 0, -1) with token 0: loss log(1 + e^-2 + e^-3), correct, margin 2
    small = token_statistics(torch.tensor([[[2.0, 0.0, -1.0]]]), torch.tensor([[0]]))
    assert float(small["loss"]) == pytest.approx(math.log(1 + math.exp(-2) + math.exp(-3)))
    assert bool(small["correct"]) and float(small["margin"]) == pytest.approx(2.0)


def test_sequence_statistics_by_hand():
    nan = float("nan")
    stats = {
        "loss": torch.tensor([[1.0, 2.0, 3.0, nan], [0.5, 0.5, 0.5, 0.5]]),
        "correct": torch.tensor([[False, True, True, False], [True, True, False, True]]),
        "margin": torch.tensor([[-1.0, 2.0, 3.0, nan], [1.0, 1.0, -1.0, 3.0]]),
    }
    out = sequence_statistics(stats, torch.tensor([1, 0]), torch.tensor([2, 2]))
    torch.testing.assert_close(out["loss"], torch.tensor([2.0, 0.5]))
    torch.testing.assert_close(out["log_perplexity"], torch.tensor([6.0, 2.0]) / math.log(2))
    torch.testing.assert_close(out["token_accuracy"], torch.tensor([2 / 3, 3 / 4]))
    torch.testing.assert_close(out["margin"], torch.tensor([4 / 3, 1.0]))
    torch.testing.assert_close(out["prob_label"], torch.exp(-torch.tensor([2.0, 0.5])))
    assert out["correct"].tolist() == [True, True]  # positions 1..2 and 0..1 all correct
    window = sequence_statistics(stats, torch.tensor([1, 1]), torch.tensor([2, 2]))
    assert window["correct"].tolist() == [True, False]  # row 1: position 2 is wrong
    with pytest.raises(ValueError, match="row 0, 2 \\+ 2 with 3 tokens"):
        sequence_statistics(stats, torch.tensor([2, 0]), torch.tensor([2, 2]))


# ------------------------------------------------------------------ extraction


def _extractable(model, tokens: torch.Tensor, prefix: int) -> bool:
    """The one-pass flag for [tokens[:prefix] || tokens[prefix:]]."""
    ids, _ = model_inputs(tokens[None], BOS)
    with torch.no_grad():
        stats = token_statistics(model(ids), tokens[None])
    suffix = torch.tensor([len(tokens) - prefix])
    return bool(sequence_statistics(stats, torch.tensor([prefix]), suffix)["correct"][0])


def _reproduces(model, tokens: torch.Tensor, prefix: int) -> bool:
    generated = greedy_generate(model, tokens[:prefix], len(tokens) - prefix, BOS)
    return torch.equal(generated, tokens[prefix:])


@pytest.mark.parametrize("kind", KINDS)
def test_extraction_flag_equals_greedy_generation_untrained(kind):
    model = tiny(kind, seed=4)
    torch.manual_seed(5)
    start = torch.randint(0, VOCAB - 1, (4,))
    # a sequence the model produces greedily after `start` is extractable from `start` on
    own = torch.cat([start, greedy_generate(model, start, 8, BOS)])
    assert greedy_generate(model, start[None], 8, BOS).shape == (1, 8)
    for p in range(4, 12):
        assert _extractable(model, own, p) and _reproduces(model, own, p)
    for p in range(4):
        assert _extractable(model, own, p) == _reproduces(model, own, p)
    changed = own.clone()
    changed[9] = (changed[9] + 1) % (VOCAB - 1)
    for p in range(1, 12):
        assert _extractable(model, changed, p) == _reproduces(model, changed, p)
    assert not _extractable(model, changed, 4)
    for seq in torch.randint(0, VOCAB - 1, (5, 12)):
        for p in (0, 3, 8):
            assert _extractable(model, seq, p) == _reproduces(model, seq, p)


def test_extraction_flag_equals_greedy_generation_trained():
    model = tiny("gpt", seed=6).train()
    torch.manual_seed(7)
    seq = torch.randint(0, VOCAB - 1, (14,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    ids, _ = model_inputs(seq[None], BOS)
    assert not _reproduces(model, seq, 4)
    for step in range(400):
        loss = token_statistics(model(ids), seq[None])["loss"].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 25 == 24 and _reproduces(model, seq, 0):
            break
    assert _reproduces(model, seq, 0), "the model did not learn its one sequence"
    model.eval()
    for p in range(13):
        assert _extractable(model, seq, p) and _reproduces(model, seq, p)
    other = seq.clone()
    other[6] = (other[6] + 1) % (VOCAB - 1)
    for p in range(13):
        assert _extractable(model, other, p) == _reproduces(model, other, p)
