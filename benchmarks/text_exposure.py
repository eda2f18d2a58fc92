"""Benchmark: the Secret Sharer's exact exposure by the digit tree against the naive
enumeration of every candidate (Carlini et al. 2019).

A small GPT (2 blocks, width 64, byte-level tokens) is trained briefly on
"my pin is {d}{d}{d}{d}{d}{d}" sequences: random secrets plus 20 canaries inserted
1, 4, 16 or 64 times. Then the log-perplexity of all 10^6 candidates is computed twice in
one process, in float32: by `tree_logperplexity` (each shared prefix scored once: 111,110
rows of at most 5 digits after a cached prefix) and by `candidate_logperplexity` (10^6 full
rows: BOS, the prefix and 6 digits). It prints both times and their ratio (goal: tree <=
1/10 of the naive time), then checks that both give the 20 canaries identical ranks. The
check is made in float64: neighbouring candidates' Px lie closer together than float32
rounding (about 1e-6 bits), so float32 ranks may differ by a place or two; the tree is
rerun in float64 on all candidates and the naive way rescored in float64 wherever float32
cannot decide (candidates within 10x its measured rounding error of a canary).

Run: ``.venv/bin/python benchmarks/text_exposure.py`` (about 4 minutes on 2 idle CPU
cores; ``--sample K`` times the naive side on K seeded candidates and scales it, for a quick
look; ``--device cuda`` scores on a GPU).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from memdash.analysis.measures.text_exposure import rank_exposure
from memdash.analysis.record.text.formats import (
    CanaryFormat,
    draw_secrets,
    parse_format,
    secret_index,
)
from memdash.analysis.record.text.models import build_lm
from memdash.analysis.record.text.scoring import (
    candidate_logperplexity,
    model_inputs,
    token_statistics,
    tree_logperplexity,
)
from memdash.analysis.record.text.tokenize import ByteTokenizer, digit_token_ids

FORMAT = "my pin is {d}{d}{d}{d}{d}{d}"
REPEATS = (1, 4, 16, 64)  # insertions per canary, 5 canaries each
PER_REPEAT = 5
BACKGROUND = 2000  # sequences with fresh random secrets
EPOCHS = 10
TREE_BATCH = 4096
NAIVE_BATCH = 1024


def train_model(fmt: CanaryFormat, seed: int) -> tuple[torch.nn.Module, np.ndarray, np.ndarray]:
    """A small GPT trained on the canaries and the background; (model, canaries, repeats)."""
    tok = ByteTokenizer()
    canaries = draw_secrets(fmt, PER_REPEAT * len(REPEATS), seed)
    background = draw_secrets(fmt, BACKGROUND, seed + 1, exclude=canaries)
    repeats = np.repeat(REPEATS, PER_REPEAT)
    secrets = np.concatenate([np.repeat(canaries, repeats, axis=0), background])
    tokens = torch.tensor([tok.encode(fmt.render(s)) for s in secrets])
    torch.manual_seed(seed)
    model = build_lm(
        "gpt",
        vocab_size=tok.vocab_size,
        context=32,
        layers=2,
        width=64,
        heads=4,
        dropout=0.0,
        model_path=None,
        bos=tok.bos_id,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(tokens), generator=generator).split(128):
            ids, _ = model_inputs(tokens[batch], tok.bos_id)
            loss = token_statistics(model(ids), tokens[batch])["loss"].mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval(), canaries, repeats


def exact_ranks(
    model: torch.nn.Module,
    prefix: torch.Tensor,
    rows: torch.Tensor,
    px32: np.ndarray,
    at: np.ndarray,
    band: float,
) -> np.ndarray:
    """The canaries' ranks by the naive enumeration in float64: float32 Px decides every
    candidate farther than `band` bits from a canary, float64 rescoring the ones within."""
    ranks = np.empty(len(at), dtype=np.int64)
    for k, c in enumerate(at):
        near = np.flatnonzero(np.abs(px32 - px32[c]) <= band)
        exact = candidate_logperplexity(model, prefix, rows[near], NAIVE_BATCH)
        exact_c = exact[np.searchsorted(near, c)]
        far_below = np.sum(px32 < px32[c] - band)
        ranks[k] = 1 + far_below + np.sum(exact < exact_c)
    return ranks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=0, help="time naive on K candidates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device to score on")
    parser.add_argument("--format", default=FORMAT, help="the canary format (a quick look)")
    args = parser.parse_args()
    fmt = parse_format(args.format)
    if any(fmt.literals[1:]) or fmt.slots < 3:
        parser.error("--format: at least 3 slots, adjacent and last (naive rows are digits)")
    tok = ByteTokenizer()
    digits = digit_token_ids(tok)
    literal_ids = [[tok.bos_id, *tok.encode(fmt.prefix())]] + [
        tok.encode(piece) for piece in fmt.literals[1:]
    ]
    print(
        f"torch threads: {torch.get_num_threads()}, device {args.device}, format {fmt.text!r}, "
        f"|R| = {fmt.space_size}"
    )

    start = time.perf_counter()
    model, canaries, repeats = train_model(fmt, args.seed)
    print(f"trained the GPT (2 blocks, width 64) in {time.perf_counter() - start:.1f} s")
    model = model.to(args.device)
    prefix = torch.tensor(literal_ids[0], device=args.device)
    # warm up both paths (first calls allocate and dispatch) before timing
    tree_logperplexity(model, [literal_ids[0], [], []], digits, 2, TREE_BATCH)
    candidate_logperplexity(model, prefix, torch.tensor([digits]), 1)

    start = time.perf_counter()
    px_tree = tree_logperplexity(model, literal_ids, digits, fmt.slots, TREE_BATCH)
    t_tree = time.perf_counter() - start

    index = np.arange(fmt.space_size)
    if args.sample:
        index = np.sort(np.random.default_rng(args.seed).choice(index, args.sample, False))
    powers = 10 ** np.arange(fmt.slots - 1, -1, -1)
    rows = torch.tensor(np.asarray(digits)[(index[:, None] // powers) % 10])
    start = time.perf_counter()
    px_naive = candidate_logperplexity(model, prefix, rows, NAIVE_BATCH)
    t_naive = (time.perf_counter() - start) * fmt.space_size / len(index)

    nodes = sum(10**j for j in range(1, fmt.slots))
    scaled = f" (timed on {len(index)} seeded candidates, scaled)" if args.sample else ""
    print(f"tree:  {t_tree:8.1f} s   (1 prefix + {nodes} rows of 1-{fmt.slots - 1} digits)")
    naive_rows = f"{fmt.space_size} rows of BOS, prefix, {fmt.slots} digits"
    print(f"naive: {t_naive:8.1f} s   ({naive_rows}){scaled}")
    print(f"tree / naive time: {t_tree / t_naive:.4f}  (naive is {t_naive / t_tree:.1f}x slower)")
    diff = np.abs(px_tree[index] - px_naive)
    print(
        f"float32: max |Px tree - Px naive| = {diff.max():.2e} bits "
        f"(max relative {(diff / px_naive).max():.2e})"
    )

    at = secret_index(canaries)
    rank32, exposure = rank_exposure(px_tree, px_tree[at])
    for r in REPEATS:
        print(f"  inserted {r:3d}x: exposure {np.round(exposure[repeats == r], 1)} bits")
    if args.sample:
        print("ranks not compared: the naive side scored a sample only")
        return
    rank32_naive, _ = rank_exposure(px_naive, px_naive[at])
    moved = np.abs(rank32 - rank32_naive)
    print(
        f"float32 ranks, tree vs naive: {np.sum(moved > 0)} of {len(at)} differ, by at most "
        f"{moved.max()}"
    )

    # the exact comparison: both ways in float64 (the naive one where float32 cannot decide)
    model64 = model.double()
    px64 = tree_logperplexity(model64, literal_ids, digits, fmt.slots, TREE_BATCH)
    error32 = np.abs(px_naive - px64).max()
    band = 10 * error32
    rank64_tree, _ = rank_exposure(px64, px64[at])
    rank64_naive = exact_ranks(model64, prefix, rows, px_naive, at, band)
    gap = np.median(np.diff(np.sort(px64)))
    print(
        f"float32 rounding: naive Px errs by at most {error32:.1e} bits (median gap between "
        f"neighbouring candidates: {gap:.1e} bits); float64 rescores the candidates within "
        f"{band:.1e} bits of a canary"
    )
    print(f"ranks of the {len(at)} canaries, tree (float64): {rank64_tree.tolist()}")
    assert np.array_equal(rank64_tree, rank64_naive), f"naive: {rank64_naive.tolist()}"
    print("ranks identical, tree vs naive (float64): yes")


if __name__ == "__main__":
    main()
