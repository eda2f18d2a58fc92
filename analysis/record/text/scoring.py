"""What the recorder and the exposure step ask of a causal language model: per-token and
per-sequence statistics, extractable memorization, and the log-perplexity of every candidate
secret of a canary format.

- Log-perplexity and exposure follow the Secret Sharer (Carlini et al. 2019, "The Secret
  Sharer: Evaluating and Testing Unintended Memorization in Neural Networks"): Px(r) =
  -sum over the candidate's tokens of log2 p(token | everything before it), in bits;
  rank(r) = 1 + #{r' : Px(r') < Px(r)}; exposure = log2 |R| - log2 rank.
- Extraction follows Carlini et al. 2023 ("Quantifying Memorization Across Neural Language
  Models"): [p || s] is extractable when greedy decoding from p reproduces s. With the true
  tokens fed (teacher forcing) that holds exactly when the argmax at each of the |s|
  positions is the true token (by induction: while the generated tokens equal the true ones
  the model sees the true prefix), so one forward pass decides it; `greedy_generate` is the
  autoregressive decoding the tests check it against.

Losses are in nats, log-perplexities in bits. Position t of the logits predicts token t: a
model reads ``[BOS] + tokens[:-1]`` (`model_inputs`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from memdash.analysis.record.stats import example_stats

LN2 = math.log(2.0)


@contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no gradients for the block; the model's own mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def model_inputs(tokens: torch.Tensor, bos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """What a model reads for `tokens`, and which positions are tokens.

    Parameters
    ----------
    tokens : int, shape (B, L), each row a sequence padded with -1 after its tokens
    bos : the BOS id

    Returns
    -------
    ids : int64, shape (B, L): ``[BOS] + tokens[:-1]``, padding replaced by BOS
    mask : bool, shape (B, L): ``tokens >= 0``
    """
    if tokens.dim() != 2:
        raise ValueError(f"tokens must have shape (B, L), got {tuple(tokens.shape)}")
    tokens = tokens.long()
    mask = tokens >= 0
    first = torch.full_like(tokens[:, :1], bos)
    ids = torch.cat([first, tokens[:, :-1]], dim=1)
    return torch.where(ids >= 0, ids, bos), mask


def token_statistics(logits: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-token statistics of a model's logits against the tokens it predicts.

    Parameters
    ----------
    logits : shape (B, L, V); position t predicts token t
    tokens : int, shape (B, L), -1 padded

    Returns
    -------
    dict of tensors of shape (B, L): ``loss`` (cross-entropy in nats, the exact softplus form
    of `record.stats.example_stats`; NaN at padding), ``correct`` (argmax == token; False at
    padding) and ``margin`` (token logit minus the largest other logit; NaN at padding).
    """
    if logits.dim() != 3 or logits.shape[:2] != tokens.shape:
        raise ValueError(
            f"logits (B, L, V) and tokens (B, L) disagree: {tuple(logits.shape)} and "
            f"{tuple(tokens.shape)}"
        )
    b, length, vocab = logits.shape
    mask = tokens >= 0
    flat = example_stats(logits.reshape(b * length, vocab), tokens.clamp(min=0).reshape(-1).long())
    nan = torch.tensor(float("nan"), device=logits.device)
    return {
        "loss": torch.where(mask, flat["loss"].view(b, length), nan),
        "correct": flat["correct"].view(b, length) & mask,
        "margin": torch.where(mask, flat["margin"].view(b, length), nan),
    }


def sequence_statistics(
    token_stats: dict[str, torch.Tensor], prefix_len: torch.Tensor, suffix_len: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-sequence statistics from `token_statistics`.

    Parameters
    ----------
    token_stats : ``loss``, ``correct``, ``margin`` of shape (B, L) (NaN / False at padding)
    prefix_len : int, shape (B,): P, the prefix an extraction attack is given (>= 0)
    suffix_len : int, shape (B,): S, the tokens it must reproduce (>= 1); P + S must not
        exceed the sequence's tokens

    Returns
    -------
    dict of tensors of shape (B,): ``loss`` (mean token loss, nats), ``log_perplexity`` (sum
    of token losses in bits), ``token_accuracy`` (share of tokens that are the argmax),
    ``margin`` (mean token margin), ``prob_label`` (exp(-loss): the geometric mean token
    probability) and ``correct`` (extractable, Carlini et al. 2023: every token at positions
    P .. P + S - 1 is the argmax, so greedy decoding from the first P tokens reproduces the
    next S; higher = more memorized).
    """
    loss, correct, margin = (token_stats[k] for k in ("loss", "correct", "margin"))
    valid = ~torch.isnan(loss)
    n = valid.sum(1)
    prefix_len = prefix_len.to(loss.device).long()
    suffix_len = suffix_len.to(loss.device).long()
    if prefix_len.shape != n.shape or suffix_len.shape != n.shape:
        raise ValueError(f"prefix_len and suffix_len must have shape ({len(n)},)")
    bad = (n < 1) | (prefix_len < 0) | (suffix_len < 1) | (prefix_len + suffix_len > n)
    if bool(bad.any()):
        rows = torch.nonzero(bad).squeeze(1)
        i = int(rows[0])
        raise ValueError(
            f"{len(rows)} sequences need prefix_len >= 0, suffix_len >= 1 and prefix_len + "
            f"suffix_len <= their tokens; first: row {i}, {int(prefix_len[i])} + "
            f"{int(suffix_len[i])} with {int(n[i])} tokens"
        )
    total = torch.where(valid, loss, 0.0).sum(1)
    positions = torch.arange(loss.shape[1], device=loss.device)
    window = (positions >= prefix_len[:, None]) & (positions < (prefix_len + suffix_len)[:, None])
    mean_loss = total / n
    return {
        "loss": mean_loss,
        "log_perplexity": total / LN2,
        "token_accuracy": correct.sum(1) / n,
        "margin": torch.where(valid, margin, 0.0).sum(1) / n,
        "prob_label": torch.exp(-mean_loss),
        "correct": (correct | ~window).all(1),
    }


def greedy_generate(
    model: torch.nn.Module, prefix_tokens: torch.Tensor, n: int, bos: int
) -> torch.Tensor:
    """Autoregressive greedy decoding (argmax, first index on ties), one token at a time.

    Parameters
    ----------
    model : a `models.CausalLM` (run in eval mode, without gradients; its mode is restored)
    prefix_tokens : int, shape (P,) or (B, P): the prefix without BOS (P may be 0)
    n : tokens to generate (>= 1)
    bos : the BOS id, put before the prefix

    Returns
    -------
    int64, shape (n,) or (B, n): the generated tokens
    """
    if n < 1:
        raise ValueError(f"greedy_generate needs n >= 1, got {n}")
    if prefix_tokens.dim() not in (1, 2):
        raise ValueError(f"prefix_tokens must have shape (P,) or (B, P), got {prefix_tokens.shape}")
    rows = prefix_tokens.long()[None] if prefix_tokens.dim() == 1 else prefix_tokens.long()
    first = torch.full((rows.shape[0], 1), bos, dtype=torch.long, device=rows.device)
    ids = torch.cat([first, rows], dim=1)
    with _eval_mode(model):
        for _ in range(n):
            nxt = model(ids)[:, -1].argmax(-1)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
    out = ids[:, 1 + rows.shape[1] :]
    return out[0] if prefix_tokens.dim() == 1 else out


def _check_batch(batch: int) -> None:
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")


def candidate_logperplexity(
    model: torch.nn.Module, prefix_ids: torch.Tensor, candidates: torch.Tensor, batch: int
) -> np.ndarray:
    """Px of candidates the naive way: each row scored as a full sequence.

    Parameters
    ----------
    model : a `models.CausalLM` (run in eval mode, without gradients; its mode is restored)
    prefix_ids : int, shape (T0,): BOS and the format's prefix tokens
    candidates : int, shape (K, t): each candidate's tokens after the prefix (its digits and
        the literals between and after them)
    batch : rows per forward pass

    Returns
    -------
    float64, shape (K,): Px in bits, -sum of log2 p(token | everything before it) over the
    candidate's t tokens (Carlini et al. 2019); lower = more likely.
    """
    _check_batch(batch)
    if prefix_ids.dim() != 1 or len(prefix_ids) < 1 or candidates.dim() != 2:
        raise ValueError("prefix_ids must have shape (T0,) with T0 >= 1, candidates (K, t)")
    start, t = len(prefix_ids), candidates.shape[1]
    px = np.empty(len(candidates), dtype=np.float64)
    with _eval_mode(model):
        for lo in range(0, len(candidates), batch):
            rows = candidates[lo : lo + batch].long().to(prefix_ids.device)
            full = torch.cat([prefix_ids.long().expand(len(rows), -1), rows], dim=1)
            logits = model(full)[:, start - 1 : start - 1 + t].double()
            logp = logits.log_softmax(-1).gather(2, rows[:, :, None]).squeeze(2)
            px[lo : lo + len(rows)] = (-logp.sum(1) / LN2).cpu().numpy()
    return px


def _level_template(
    literal_ids: Sequence[Sequence[int]], level: int
) -> tuple[list[int], list[int], int]:
    """The tokens fed for a node of `level` (digits d0 .. d_{level-1}, each followed by its
    literal), with its digit positions and the length of its last literal."""
    template: list[int] = []
    digit_at = []
    for j in range(level):
        digit_at.append(len(template))
        template.append(-1)
        template.extend(int(i) for i in literal_ids[j + 1])
    return template, digit_at, len(literal_ids[level])


def tree_logperplexity(
    model: torch.nn.Module,
    literal_ids: Sequence[Sequence[int]],
    digit_ids: Sequence[int],
    slots: int,
    batch: int,
) -> np.ndarray:
    """Exact Px of every candidate of a canary format, each shared prefix scored once.

    The candidates form a tree: a node of level j fixes the first j digits. The prefix
    ``literal_ids[0]`` runs once (`CausalLM.prefix_state`); the 10**j nodes of level j
    (1 <= j < slots) are then fed after it in batches (`CausalLM.continue_from`), giving the
    log-probability of the literal after their last digit and the distribution of their
    next digit, so each child adds one digit's log-probability to its parent's. The leaves
    are fed only when a literal follows the last slot. For six digits: 10**1 + ... + 10**5
    rows of at most 5 digits, instead of 10**6 rows of the prefix and 6 digits.

    Parameters
    ----------
    model : a `models.CausalLM` (run in eval mode, without gradients; its mode is restored)
    literal_ids : ``slots + 1`` token lists: ``literal_ids[0]`` = BOS + the format's prefix
        tokens; ``literal_ids[j]`` (1 <= j <= slots) the tokens between slot j-1 and slot j
        (the last one: after the final slot), possibly empty; they count in Px
    digit_ids : the 10 token ids of the digits 0 .. 9
    slots : digits per secret (>= 1)
    batch : rows per forward pass

    Returns
    -------
    float64, shape (10**slots,): Px in bits of every candidate, at the index its digits read
    as a base-10 number (Carlini et al. 2019); equals `candidate_logperplexity` on the
    candidates' token rows.
    """
    _check_batch(batch)
    if slots < 1 or len(literal_ids) != slots + 1 or len(literal_ids[0]) < 1:
        raise ValueError(
            f"tree_logperplexity needs slots >= 1 and slots + 1 = {slots + 1} literals, the "
            f"first holding at least BOS; got {len(literal_ids)} literals for {slots} slots"
        )
    if len(digit_ids) != 10:
        raise ValueError(f"digit_ids must hold the 10 digits' token ids, got {len(digit_ids)}")
    with _eval_mode(model):
        device = next(model.parameters()).device
        digits = torch.as_tensor(list(digit_ids), dtype=torch.long, device=device)
        prefix = torch.as_tensor(list(literal_ids[0]), dtype=torch.long, device=device)
        state, first = model.prefix_state(prefix)
        nats = torch.zeros(1, dtype=torch.float64, device=device)  # -log p of each node so far
        next_digit = first.double().log_softmax(-1)[digits][None]  # (nodes, 10)
        for level in range(1, slots + 1):
            nats = (nats[:, None] - next_digit).reshape(-1)
            template, digit_at, n_lit = _level_template(literal_ids, level)
            last = level == slots
            if last and n_lit == 0:
                break
            nodes = len(nats)
            base = torch.tensor(template, dtype=torch.long, device=device)
            lit = base[len(base) - n_lit :]
            powers = 10 ** torch.arange(level - 1, -1, -1, device=device)
            next_digit = torch.empty(0 if last else nodes, 10, dtype=torch.float64, device=device)
            for lo in range(0, nodes, batch):
                index = torch.arange(lo, min(lo + batch, nodes), device=device)
                ids = base.expand(len(index), -1).clone()
                ids[:, digit_at] = digits[(index[:, None] // powers) % 10]
                logits = model.continue_from(state, ids)[:, len(base) - n_lit - 1 :]
                logp = logits.double().log_softmax(-1)
                if n_lit:
                    lit_lp = logp[:, :n_lit].gather(2, lit.expand(len(index), -1)[:, :, None])
                    nats[index] -= lit_lp.squeeze(2).sum(1)
                if not last:
                    next_digit[index] = logp[:, -1][:, digits]
    return (nats / LN2).cpu().numpy()
