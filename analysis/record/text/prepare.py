"""A language-model run's examples: texts loaded, split, tokenized and cut into sequences,
with duplicated sequences (Carlini et al. 2023: extraction grows with duplicates) and the
Secret Sharer's canaries (Carlini et al. 2019) planted among the training sequences.

Example ids: the training sequences (the duplicated ones among them), then the trained
canaries (`canaries` for each repeat count, in order), then the test sequences, then the
reference canaries (split ``reference``: drawn like the canaries, never trained on).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from memdash.analysis.record.config import CHUNKINGS, TEXT_CORPORA, DataConfig
from memdash.analysis.record.text.corpus import python_docs, read_text_path, synthetic_corpus
from memdash.analysis.record.text.formats import (
    CanaryFormat,
    draw_secrets,
    parse_format,
    shared_prefix,
)
from memdash.analysis.record.text.tokenize import (
    TOKENIZERS,
    ByteTokenizer,
    Tokenizer,
    model_tokenizer,
    train_bpe,
)

TEXT_DATASETS = ("text", "hf")
SYNTHETIC_EXAMPLES = 2000  # synthetic sentences when n_examples is None
# what prepare_text reads of a DataConfig, and the defaults of a text run's config for a
# stand-in that lacks a field
DEFAULTS: dict[str, Any] = dataclasses.asdict(DataConfig(dataset="text"))
# independent random streams of one seed
_SAMPLE_STREAM, _SPLIT_STREAM, _DUPLICATE_STREAM, _CANARY_STREAM = 11, 12, 13, 14


@dataclass(frozen=True)
class TextPrepared:
    """Every example of a language-model run, laid out for the run store.

    Attributes
    ----------
    tokens : int32 (N, L), L = seq_len: row i the tokens of example i, padded with -1
    examples : one row per example (columns in the module docstring of `prepare_text`)
    train_ids : int64 (M,): the training presentations of one epoch (a canary repeated r
        times appears r times, a sequence duplicated c times c times)
    tokenizer : the tokenizer of the run
    canary_format : the canaries' format, None without canaries
    entropy_bits : the synthetic corpus's entropy per sentence (bits), else None
    """

    tokens: np.ndarray
    examples: pd.DataFrame
    train_ids: np.ndarray
    tokenizer: Tokenizer
    canary_format: CanaryFormat | None
    entropy_bits: float | None


def prepare_text(data: DataConfig, seed: int, *, model_path: str | None = None) -> TextPrepared:
    """Load, split and tokenize a run's texts, and plant duplicates and canaries.

    Steps: load the texts (``text_corpus`` synthetic or python-docs, or the user's
    ``path``); take the first ``n_examples`` (python-docs: a seeded sample, in document
    order); split them into train and test by a seeded permutation (``test_fraction``);
    train the BPE on the training texts (``tokenizer`` "bpe"); make sequences ("lines": one
    per text, truncated to ``seq_len`` tokens, blank texts dropped; "chunks": each split's
    texts joined with "\\n" and cut into ``seq_len``-token pieces, the last partial one
    dropped); pick ``duplicate_sequences`` training sequences per count of
    ``duplicate_counts`` (seeded, disjoint); draw ``canaries`` secrets per count of
    ``canary_repeats`` and ``reference_canaries`` references, all distinct.

    ``examples`` columns: ``example_id`` int64, ``split`` (train/test/reference), ``label``
    and ``true_label`` int64 0, ``is_noisy`` False, ``is_canary`` bool, ``canary_repeats``
    int64 (presentations per epoch, 0 for non-canaries), ``corruption`` (none, canary,
    duplicate), ``text`` (the decoded sequence), ``n_tokens`` int64, ``prefix_len`` and
    ``suffix_len`` int64 (P and S; a canary's: the tokens of its format's prefix, and the
    rest), ``duplicates`` int64 (copies per epoch: 1 plain training, c duplicated, r canary,
    0 test and reference), ``secret`` (a canary's digits, "" otherwise).

    Parameters
    ----------
    data : the run's `DataConfig` (fields missing from it take `DEFAULTS`)
    seed : the data seed; each random choice draws from its own stream of it
    model_path : ``tokenizer`` "hf": the checkpoint whose own tokenizer is used

    Raises
    ------
    ValueError
        One line naming the option or file: an unknown choice, a sequence shorter than
        ``prefix_len + suffix_len`` tokens (how many, and the shortest), too few sequences
        for the duplicates, too many secrets for the format's space, a canary longer than
        ``seq_len``.
    """
    o = {name: getattr(data, name, default) for name, default in DEFAULTS.items()}
    o["text_column"] = o["text_column"] or "text"  # None in DataConfig: the .jsonl default
    _check_options(o)
    fmt = parse_format(str(o["canary_format"])) if int(o["canaries"]) > 0 else None
    texts, source, entropy = _load(o, seed)
    train_texts, test_texts = _split(texts, float(o["test_fraction"]), seed, source)
    if o["tokenizer"] == "bpe":
        tok: Tokenizer = train_bpe(train_texts, int(o["vocab_size"]))
    elif o["tokenizer"] == "hf":
        tok = model_tokenizer(model_path or "")
    else:
        tok = ByteTokenizer()
    seq_len, chunking = int(o["seq_len"]), str(o["chunking"])
    train = [s for s in make_sequences(train_texts, tok, seq_len, chunking) if s]
    test = [s for s in make_sequences(test_texts, tok, seq_len, chunking) if s]
    _check_lengths(train, test, int(o["prefix_len"]), int(o["suffix_len"]), source)

    duplicates = np.ones(len(train), dtype=np.int64)
    kinds = np.full(len(train), "none", dtype=object)
    for count, ids in _pick_duplicates(
        len(train), int(o["duplicate_sequences"]), o["duplicate_counts"], seed
    ):
        duplicates[ids], kinds[ids] = count, "duplicate"
    no_copies = np.zeros(len(test), dtype=np.int64)
    train_block = _block(train, "train", o, duplicates, kinds)
    test_block = _block(test, "test", o, no_copies, np.full(len(test), "none", dtype=object))
    blocks = [train_block, test_block]
    if fmt is not None:
        trained, references = _canaries(fmt, tok, o, seed)
        blocks = [train_block, trained, test_block, references]

    rows = [seq for block in blocks for seq in block["sequences"]]
    tokens = np.full((len(rows), seq_len), -1, dtype=np.int32)
    for i, seq in enumerate(rows):
        tokens[i, : len(seq)] = seq
    examples = _examples(blocks, rows, tok)
    trained_rows = examples["split"].to_numpy() == "train"
    ids = examples["example_id"].to_numpy()[trained_rows]
    train_ids = np.repeat(ids, examples["duplicates"].to_numpy()[trained_rows])
    return TextPrepared(tokens, examples, train_ids.astype(np.int64), tok, fmt, entropy)


def make_sequences(
    texts: Sequence[str], tok: Tokenizer, seq_len: int, chunking: str
) -> list[list[int]]:
    """Token sequences of `texts`.

    Parameters
    ----------
    texts : the texts of one split
    tok : the tokenizer
    seq_len : the most tokens of a sequence
    chunking : "lines": one sequence per text, truncated to `seq_len` tokens (a blank text
        gives an empty sequence); "chunks": the texts joined with "\\n", encoded, and cut
        into `seq_len`-token pieces, the last partial piece dropped

    Returns
    -------
    list of list of int
        The sequences, in text order.
    """
    if chunking == "lines":
        return [tok.encode(text)[:seq_len] if text.strip() else [] for text in texts]
    if chunking == "chunks":
        ids = tok.encode("\n".join(texts))
        return [ids[start : start + seq_len] for start in range(0, len(ids) - seq_len + 1, seq_len)]
    raise ValueError(f"unknown --chunking {chunking!r}; valid: {', '.join(CHUNKINGS)}")


def _check_options(o: dict[str, Any]) -> None:
    choices = {
        "dataset": TEXT_DATASETS,
        "text_corpus": TEXT_CORPORA,
        "chunking": CHUNKINGS,
        "tokenizer": TOKENIZERS,
    }
    for name, valid in choices.items():
        if o[name] not in valid:
            raise ValueError(
                f"unknown --{_flag(name)} {o[name]!r} for text; valid: {', '.join(valid)}"
            )
    p, s, seq_len = int(o["prefix_len"]), int(o["suffix_len"]), int(o["seq_len"])
    if seq_len < 1 or p < 0 or s < 1 or p + s > seq_len:
        raise ValueError(
            f"--prefix-len {p} (>= 0) + --suffix-len {s} (>= 1) must fit in --seq-len {seq_len}"
        )
    for name in ("canary_repeats", "duplicate_counts"):
        if any(int(c) < 1 for c in o[name]) or not o[name]:
            raise ValueError(f"--{_flag(name)} must be counts >= 1, got {tuple(o[name])}")


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _load(o: dict[str, Any], seed: int) -> tuple[list[str], str, float | None]:
    """The texts (the first n_examples), a name of their source for errors, the entropy."""
    n = o["n_examples"]
    if o["dataset"] == "hf" or o["path"]:
        if not o["path"]:
            raise ValueError(
                "dataset 'hf' needs --data-path DIR, a dataset saved with save_to_disk"
            )
        texts = read_text_path(o["path"], text_column=str(o["text_column"]))
        source = str(o["path"])
        if n is not None and n > len(texts):
            raise ValueError(f"{source}: --n-examples {n} exceeds its {len(texts)} texts")
        return texts[:n], source, None
    if o["text_corpus"] == "synthetic":
        texts, entropy = synthetic_corpus(SYNTHETIC_EXAMPLES if n is None else int(n), seed)
        return texts, "--text-corpus synthetic", entropy
    texts, source = python_docs(), "--text-corpus python-docs"
    if n is not None and n > len(texts):
        raise ValueError(f"{source}: --n-examples {n} exceeds its {len(texts)} paragraphs")
    if n is not None and n < len(texts):
        rng = np.random.default_rng([seed, _SAMPLE_STREAM])
        texts = [texts[i] for i in np.sort(rng.choice(len(texts), size=n, replace=False))]
    return texts, source, None


def _split(
    texts: list[str], test_fraction: float, seed: int, source: str
) -> tuple[list[str], list[str]]:
    """Train and test texts by a seeded permutation, each in text order."""
    n_test = round(test_fraction * len(texts))
    if not 0 < n_test < len(texts):
        raise ValueError(
            f"{source}: --test-fraction {test_fraction} of {len(texts)} texts leaves "
            f"{len(texts) - n_test} training and {n_test} test texts; both need one"
        )
    order = np.random.default_rng([seed, _SPLIT_STREAM]).permutation(len(texts))
    test = np.zeros(len(texts), dtype=bool)
    test[order[:n_test]] = True
    return [t for t, x in zip(texts, test, strict=True) if not x], [
        t for t, x in zip(texts, test, strict=True) if x
    ]


def _check_lengths(
    train: list[list[int]], test: list[list[int]], p: int, s: int, source: str
) -> None:
    for name, seqs in (("training", train), ("test", test)):
        if not seqs:
            raise ValueError(
                f"{source}: the {name} texts make no sequence (too little text for "
                "--seq-len, or only blank texts)"
            )
    lengths = np.array([len(seq) for seq in train + test])
    short = lengths < p + s
    if short.any():
        raise ValueError(
            f"{source}: {short.sum()} of {len(lengths)} sequences are shorter than "
            f"--prefix-len + --suffix-len = {p + s} tokens (the shortest has {lengths.min()}); "
            "give longer texts, --chunking chunks, or a smaller --prefix-len/--suffix-len"
        )


def _pick_duplicates(
    n: int, per_count: int, counts: Sequence[int], seed: int
) -> list[tuple[int, np.ndarray]]:
    """(count, training sequence ids) for each count: `per_count` seeded disjoint ids each."""
    if per_count <= 0:
        return []
    total = per_count * len(counts)
    if total > n:
        raise ValueError(
            f"--duplicate-sequences {per_count} x {len(counts)} --duplicate-counts = {total} "
            f"sequences, more than the {n} training sequences"
        )
    chosen = np.random.default_rng([seed, _DUPLICATE_STREAM]).choice(n, size=total, replace=False)
    return [(int(c), chosen[g * per_count : (g + 1) * per_count]) for g, c in enumerate(counts)]


def _canaries(fmt: CanaryFormat, tok: Tokenizer, o: dict[str, Any], seed: int):
    """The trained canaries' block (by repeat count) and the references' block (a tokenizer
    that joins digits takes canaries too: their exposure is then extrapolated)."""
    per, repeats = int(o["canaries"]), [int(r) for r in o["canary_repeats"]]
    n_refs = int(o["reference_canaries"])
    total = per * len(repeats) + n_refs
    if total > fmt.space_size:
        raise ValueError(
            f"--canaries {per} x {len(repeats)} --canary-repeats + --reference-canaries "
            f"{n_refs} = {total} secrets, more than the {fmt.space_size} candidates of "
            f"--canary-format {fmt.text!r}"
        )
    secrets = draw_secrets(fmt, total, [seed, _CANARY_STREAM])
    seqs = [tok.encode(fmt.render(digits)) for digits in secrets]
    prefix = shared_prefix(fmt, tok, seqs)
    seq_len = int(o["seq_len"])
    for seq in seqs:
        if len(seq) > seq_len:
            raise ValueError(
                f"--canary-format {fmt.text!r} makes canaries of {len(seq)} tokens, more than "
                f"--seq-len {seq_len}"
            )
    n_trained = per * len(repeats)
    times = np.repeat(np.asarray(repeats, dtype=np.int64), per)
    strings = np.array(["".join(map(str, d)) for d in secrets], dtype=object)
    trained = _canary_block(seqs[:n_trained], "train", times, strings[:n_trained], len(prefix))
    zeros = np.zeros(n_refs, dtype=np.int64)
    references = _canary_block(
        seqs[n_trained:], "reference", zeros, strings[n_trained:], len(prefix)
    )
    return trained, references


def _block(seqs, split: str, o: dict[str, Any], duplicates, kinds) -> dict[str, Any]:
    """The columns of a block of corpus sequences (training or test)."""
    n = len(seqs)
    return {
        "sequences": seqs,
        "split": split,
        "is_canary": np.zeros(n, dtype=bool),
        "canary_repeats": np.zeros(n, dtype=np.int64),
        "corruption": np.asarray(kinds, dtype=object),
        "prefix_len": np.full(n, int(o["prefix_len"]), dtype=np.int64),
        "suffix_len": np.full(n, int(o["suffix_len"]), dtype=np.int64),
        "duplicates": np.asarray(duplicates, dtype=np.int64),
        "secret": np.full(n, "", dtype=object),
    }


def _canary_block(seqs, split: str, repeats, secrets, prefix: int) -> dict[str, Any]:
    n = len(seqs)
    return {
        "sequences": seqs,
        "split": split,
        "is_canary": np.ones(n, dtype=bool),
        "canary_repeats": np.asarray(repeats, dtype=np.int64),
        "corruption": np.full(n, "canary", dtype=object),
        "prefix_len": np.full(n, prefix, dtype=np.int64),
        "suffix_len": np.array([len(seq) - prefix for seq in seqs], dtype=np.int64),
        "duplicates": np.asarray(repeats, dtype=np.int64),
        "secret": np.asarray(secrets, dtype=object),
    }


def _examples(blocks: list[dict[str, Any]], rows: list[list[int]], tok: Tokenizer) -> pd.DataFrame:
    n = len(rows)

    def column(name: str) -> np.ndarray:
        return np.concatenate([block[name] for block in blocks])

    return pd.DataFrame(
        {
            "example_id": np.arange(n, dtype=np.int64),
            "split": np.concatenate(
                [np.full(len(b["sequences"]), b["split"], object) for b in blocks]
            ),
            "label": np.zeros(n, dtype=np.int64),
            "true_label": np.zeros(n, dtype=np.int64),
            "is_noisy": np.zeros(n, dtype=bool),
            "is_canary": column("is_canary").astype(bool),
            "canary_repeats": column("canary_repeats").astype(np.int64),
            "corruption": column("corruption").astype(object),
            "text": np.array([tok.decode(seq) for seq in rows], dtype=object),
            "n_tokens": np.array([len(seq) for seq in rows], dtype=np.int64),
            "prefix_len": column("prefix_len").astype(np.int64),
            "suffix_len": column("suffix_len").astype(np.int64),
            "duplicates": column("duplicates").astype(np.int64),
            "secret": column("secret").astype(object),
        }
    )
