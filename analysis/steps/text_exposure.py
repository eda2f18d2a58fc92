"""The exposure step of a text run: the Secret Sharer in its own setting (Carlini et al. 2019).

A canary is a format's text with a random secret in its digit slots, ``"my pin is 281265"``;
the randomness space R holds every secret (``10 ** slots``). The log-perplexity of a candidate
r is Px(r) = -sum over the tokens after the format's prefix of log2 p(token | all before it),
and exposure = log2|R| - log2 rank, with rank(r) = 1 + #{r' in R : Px(r') < Px(r)}. At every
checkpoint epoch the model is rebuilt from its checkpoint and:

* **exact**: every candidate of R is scored through the tree of shared digit prefixes
  (`record.text.scoring.tree_logperplexity`), each prefix once, and the canaries (and the
  reference secrets, never inserted) are ranked among all of them;
* **extrapolated**: a skew-normal is fitted to the Px of a seeded sample of candidates (and
  one to their logarithms, as for the classifiers' exposure), exposure = -log2 CDF(Px); a
  fit that sits on a cliff is flagged (`measures.skewnorm`). For a space too large to
  enumerate (more than `EXACT_LIMIT` candidates, or a tokenizer that does not give each digit
  its own token) only the extrapolation is computed, and ``exact_available`` says so.

References are secrets of the same format that were never trained on: their exposure is the
paper's baseline (about log2(e) = 1.44 bits when exact).
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import pandas as pd
import torch

from memdash.analysis.measures.exposure import SPACES, extrapolated_exposure, fit_references
from memdash.analysis.measures.text_exposure import exposure_of_rank
from memdash.analysis.record.config import AnalysisConfig
from memdash.analysis.record.text.formats import (
    CanaryFormat,
    index_digits,
    parse_format,
    secret_index,
)
from memdash.analysis.record.text.scoring import candidate_logperplexity, tree_logperplexity
from memdash.analysis.record.text.tokenize import Tokenizer, digit_token_ids
from memdash.analysis.record.text.training import load_run_lm, run_tokenizer
from memdash.analysis.steps._common import Progress, _quiet
from memdash.analysis.store import Run

EXACT_LIMIT = 10**7  # candidates the exact ranking enumerates at most (7 digits)
SAMPLED = 10_000  # candidates the extrapolation fits
BATCH = 2048  # rows per forward pass
SAMPLE_SEED = 0
TIE_BITS = 1e-4  # candidates this close to a secret's float32 Px are ranked again in float64
TEXT_EXPOSURE_COLUMNS = (
    *("epoch", "example_id", "kind", "repeats", "secret", "log_perplexity"),
    *("rank", "exposure_exact", "exposure_extrapolation", "exposure_extrapolation_log"),
    *("ceiling", "exact_available", "fit_floored", "extracted"),
)
FIT_COLUMNS = (
    *("epoch", "space", "n_references", "shape", "loc", "scale"),
    *("floored", "capped"),
)
# the column of each extrapolation: the fit to Px (the paper's) and to log Px
EXTRAPOLATIONS = {"loss": "exposure_extrapolation", "log_loss": "exposure_extrapolation_log"}


def literal_ids(fmt: CanaryFormat, tok: Tokenizer, prefix: list[int]) -> list[list[int]]:
    """The tokens around the slots, BOS and the canaries' shared `prefix` tokens first: what
    the tree feeds between the digits."""
    return [[tok.bos_id, *prefix]] + [list(tok.encode(text)) for text in fmt.literals[1:]]


def tree_possible(
    fmt: CanaryFormat, tok: Tokenizer, secrets: np.ndarray, lits: list[list[int]]
) -> str | None:
    """None when the exact ranking can enumerate the format's space, else why not."""
    if fmt.space_size > EXACT_LIMIT:
        return f"{fmt.space_size:.0e} candidates, more than the {EXACT_LIMIT:.0e} enumerated"
    if tok.decode(lits[0][1:]) != fmt.prefix():
        return f"the {tok.kind} tokenizer joins the end of {fmt.prefix()!r} with the secret"
    try:
        digits = digit_token_ids(tok)
    except ValueError as err:
        return str(err)
    for row in secrets[:50]:  # a secret's tokens are the literals and one token per digit
        want = [*lits[0][1:]]
        for d, lit in zip(row, lits[1:], strict=True):
            want += [digits[int(d)], *lit]
        if tok.encode(fmt.render(row)) != want:
            return f"the {tok.kind} tokenizer does not split {fmt.render(row)!r} at its digits"
    return None


def compute_text_exposure(
    run: Run, config: AnalysisConfig | None = None, progress: Progress = _quiet
) -> dict[str, pd.DataFrame]:
    """derived/exposure.parquet and exposure_fits.parquet of a text run, per checkpoint epoch.

    ``exposure.parquet``, per canary and reference and checkpoint ``epoch``: ``example_id``,
    ``kind`` (canary or reference), ``repeats`` (insertions per epoch; 0 for references),
    ``secret``, ``log_perplexity`` (Px, bits), ``rank`` (among all of R; 0 when not exact),
    ``exposure_exact`` (bits, NaN when the space was not enumerated),
    ``exposure_extrapolation`` and ``exposure_extrapolation_log`` (bits, the skew-normal fits
    to the sampled candidates' Px and log Px), ``ceiling`` (log2|R|), ``exact_available``,
    ``fit_floored`` (the Px fit sits on a cliff) and ``extracted`` (greedy decoding from the
    format's prefix gives the secret, read from the eval trace at that epoch).
    ``exposure_fits.parquet``: per epoch and ``space`` (``loss``: Px; ``log_loss``: log Px),
    the fit's ``shape``, ``loc``, ``scale``, ``n_references`` (candidates fitted), ``floored``
    and ``capped``.
    """
    examples = run.examples()
    canary = (examples["is_canary"] & (examples["split"] == "train")).to_numpy()
    reference = (examples["split"] == "reference").to_numpy()
    ids = np.flatnonzero(canary | reference)
    empty = {
        "exposure.parquet": pd.DataFrame(columns=list(TEXT_EXPOSURE_COLUMNS)),
        "exposure_fits.parquet": pd.DataFrame(columns=list(FIT_COLUMNS)),
    }
    if not canary.any():
        return empty
    fmt = parse_format(run.config["data"]["canary_format"])
    tok = run_tokenizer(run)
    secrets = np.array([[int(c) for c in s] for s in examples["secret"].to_numpy()[ids]])
    first = ids[0]  # every canary's prefix is the format's shared prompt
    prefix = np.asarray(run.inputs()[first, : int(examples["prefix_len"].iloc[first])])
    lits = literal_ids(fmt, tok, [int(t) for t in prefix])
    why_not = tree_possible(fmt, tok, secrets, lits)
    index = secret_index(secrets)
    rng = np.random.default_rng(SAMPLE_SEED)
    sample = rng.choice(fmt.space_size, size=min(SAMPLED, fmt.space_size), replace=False)
    extracted = _extracted(run, ids)
    frames, fits = [], []
    for epoch in run.checkpoint_epochs():
        progress(f"epoch {epoch}")
        model = load_run_lm(run, epoch)
        if why_not is None:
            digits = digit_token_ids(tok)
            px_all = tree_logperplexity(model, lits, digits, fmt.slots, BATCH)
            px_sample = px_all[sample]
            px, rank = exact_ranks(model, px_all, index, lits, digits, fmt.slots)
            exact = exposure_of_rank(rank, fmt.space_size)
        else:
            px = _naive(model, fmt, tok, secrets, lits)
            px_sample = _naive(model, fmt, tok, index_digits(sample, fmt.slots), lits)
            rank, exact = np.zeros(len(ids), dtype=np.int64), np.full(len(ids), np.nan)
        extrap, floored = {}, False
        for space, column in EXTRAPOLATIONS.items():
            transform = SPACES[space]
            extrap[column] = np.full(len(ids), np.nan)
            with contextlib.suppress(ValueError):  # all candidates equal: no fit
                fit = fit_references(transform(px_sample))
                extrap[column] = extrapolated_exposure(transform(px), fit)
                floored = floored or (space == "loss" and fit.floored)
                fits.append((epoch, space, fit.n_references, fit.shape, fit.loc, fit.scale))
                fits[-1] += (fit.floored, fit.capped)
        frames.append(
            pd.DataFrame(
                {
                    "epoch": np.int32(epoch),
                    "example_id": ids,
                    "kind": np.where(canary[ids], "canary", "reference"),
                    "repeats": examples["canary_repeats"].to_numpy(np.int64)[ids],
                    "secret": examples["secret"].to_numpy()[ids],
                    "log_perplexity": px,
                    "rank": rank,
                    "exposure_exact": exact,
                    **extrap,
                    "ceiling": fmt.slots * np.log2(10),
                    "exact_available": why_not is None,
                    "fit_floored": floored,
                    "extracted": extracted.get(epoch, np.zeros(len(ids), dtype=bool)),
                }
            )
        )
    table = pd.concat(frames, ignore_index=True) if frames else empty["exposure.parquet"]
    fit_table = pd.DataFrame(fits, columns=list(FIT_COLUMNS)).astype(
        {"epoch": np.int32, "n_references": np.int64, "floored": bool, "capped": bool}
    )
    return {"exposure.parquet": table, "exposure_fits.parquet": fit_table}


def candidate_tokens(
    index: np.ndarray, lits: list[list[int]], digits: list[int], slots: int
) -> torch.Tensor:
    """The tokens after the prefix of the candidates at `index` (a digit token per slot, each
    followed by its literal), shape (k, t): what `candidate_logperplexity` scores."""
    rows = []
    for row in index_digits(np.asarray(index), slots):
        tokens = []
        for d, lit in zip(row, lits[1:], strict=True):
            tokens += [digits[int(d)], *lit]
        rows.append(tokens)
    return torch.tensor(rows, dtype=torch.long)


def exact_ranks(
    model, px_all: np.ndarray, index: np.ndarray, lits, digits: list[int], slots: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each secret's Px and rank among every candidate, exact to float64.

    The tree scores the candidates with the model's float32 forward passes, which resolve Px
    to about 1e-5 bits, while neighbouring candidates of a trained model lie about 2e-6 bits
    apart. So a secret's rank counts the candidates clearly below it (by more than
    `TIE_BITS`) from the tree, and the ones within `TIE_BITS` of it are scored again, with
    the secret, in float64 (the model cast to double): rank = 1 + those below in float64.

    Returns
    -------
    px : float64 (k,), the secrets' Px (bits) in float64
    rank : int64 (k,), 1 + #{r in R : Px(r) < Px(secret)}
    """
    model64 = copy.deepcopy(model).double()
    prefix = torch.tensor(lits[0], dtype=torch.long)
    order = np.sort(px_all)
    px = np.empty(len(index))
    rank = np.empty(len(index), dtype=np.int64)
    for i, at in enumerate(np.asarray(index, dtype=np.int64)):
        mine = px_all[at]
        clearly_below = int(np.searchsorted(order, mine - TIE_BITS, side="left"))
        near = np.flatnonzero(np.abs(px_all - mine) <= TIE_BITS)
        near = np.union1d(near, [at])
        rescored = candidate_logperplexity(
            model64, prefix, candidate_tokens(near, lits, digits, slots), BATCH
        )
        px[i] = rescored[np.searchsorted(near, at)]
        rank[i] = 1 + clearly_below + int((rescored < px[i]).sum())
    return px, rank


def _naive(model, fmt: CanaryFormat, tok: Tokenizer, digits: np.ndarray, lits) -> np.ndarray:
    """Px of candidates scored as full sequences (a tokenizer that merges digits), in batches
    of candidates whose tokens after the prefix are equally long."""
    prefix = torch.tensor(lits[0], dtype=torch.long)
    rows = [tok.encode(fmt.render(row))[len(lits[0]) - 1 :] for row in digits]
    out = np.empty(len(rows))
    for width in sorted({len(r) for r in rows}):
        pick = [i for i, r in enumerate(rows) if len(r) == width]
        batch = torch.tensor([rows[i] for i in pick], dtype=torch.long)
        out[pick] = candidate_logperplexity(model, prefix, batch, BATCH)
    return out


def _extracted(run: Run, ids: np.ndarray) -> dict[int, np.ndarray]:
    """Per eval epoch, whether each of `ids` is extractable (the trace's ``correct``)."""
    epochs, grids = run.trace_grids("eval", ("correct",), first_epoch=0)
    correct = grids["correct"]
    return {int(e): np.nan_to_num(correct[i][ids]).astype(bool) for i, e in enumerate(epochs)}
