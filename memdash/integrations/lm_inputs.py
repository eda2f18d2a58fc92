"""What a causal-LM recording reads of the user's items, tokenizer and model: the sequences'
tokens (right-padded items, a leading BOS left out), the tokenizer a text run stores, and the
model section of run.json that `load_run_lm` rebuilds the model from
(`memdash.integrations.causal_lm`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from memdash.analysis.record.text.tokenize import Tokenizer
from memdash.integrations.ids import token_items

__all__ = [
    "StoredTokenizer",
    "check_lengths",
    "model_section",
    "sequence_rows",
    "stored_tokenizer",
    "token_table",
    "vocabulary",
]

# the GPT2Config fields that change what a GPT-2 computes: a model equal to the one
# build_lm("gpt") makes on all of them is stored as "gpt" and rebuilt without its files
_GPT2_ARCHITECTURE = (
    *("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner"),
    *("activation_function", "layer_norm_epsilon", "scale_attn_weights"),
    *("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention"),
    "tie_word_embeddings",
)


def sequence_rows(dataset: Any) -> list[torch.Tensor]:
    """Each item's token ids, int64 of shape (n_i,), cut at its attention mask's end.

    Items are dicts with ``input_ids`` (and optionally ``attention_mask``, ones then zeros,
    and ``labels``, a sequence as the causal-LM collators make it). Raises TypeError or
    ValueError naming the item: not a dict with input_ids, a class label, left padding.
    """
    rows = []
    for i, item in token_items(dataset):
        label = item.get("labels", item.get("label"))
        if label is not None and torch.as_tensor(label).dim() == 0:
            raise ValueError(
                f"item {i} has a class label ({int(label)}); task='causal_lm' records items "
                "of input_ids (labels, if any, a sequence): use the default task for sequence "
                "classification"
            )
        ids = torch.as_tensor(item["input_ids"], dtype=torch.long).flatten()
        if item.get("attention_mask") is not None:
            mask = torch.as_tensor(item["attention_mask"]).flatten().bool()
            n = int(mask.sum())
            if len(mask) != len(ids) or not bool(mask[:n].all()):
                raise ValueError(
                    f"item {i}: its attention_mask is not ones then zeros; memdash needs "
                    "right-padded items (tokenizer.padding_side = 'right')"
                )
            ids = ids[:n]
        rows.append(ids)
    if not rows:
        raise ValueError("the dataset is empty")
    return rows


def token_table(rows: list[torch.Tensor], bos: int) -> tuple[torch.Tensor, int]:
    """The run's tokens, int64 (N, L) padded with -1, and `lead`: 1 when every row begins
    with `bos` (then left out of the stored tokens), else 0."""
    lead = int(all(len(row) > 0 and int(row[0]) == bos for row in rows))
    rows = [row[lead:] for row in rows]
    tokens = torch.full((len(rows), max(1, max(len(r) for r in rows))), -1, dtype=torch.long)
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = row
    return tokens, lead


def check_lengths(n_tokens: np.ndarray, prefix_len: int, suffix_len: int, lead: int) -> None:
    """Every sequence holds prefix_len + suffix_len tokens at least (one-line ValueError)."""
    if prefix_len < 1 or suffix_len < 1:
        raise ValueError(f"prefix_len and suffix_len must be >= 1, got {prefix_len}, {suffix_len}")
    short = n_tokens < prefix_len + suffix_len
    if short.any():
        after = " (after the BOS they begin with)" if lead else ""
        raise ValueError(
            f"TraceCallback: {int(short.sum())} of {len(n_tokens)} sequences are shorter than "
            f"prefix_len + suffix_len = {prefix_len + suffix_len} tokens{after}; the shortest "
            f"has {int(n_tokens.min())}: pass a smaller prefix_len or suffix_len"
        )


@dataclass(frozen=True)
class StoredTokenizer:
    """What a text run keeps of the user's tokenizer: run.json's ``text.tokenizer`` (None:
    not stored, with no tokenizer or a slow one), tokenizer.json, its BOS, and how it
    decodes."""

    kind: str | None
    json_text: str | None
    bos_id: int | None
    decode: Callable[[list[int]], str]


def stored_tokenizer(tokenizer: Any) -> StoredTokenizer:
    """memdash's own tokenizers (`Tokenizer`: byte, bpe) as they are; a Hugging Face fast
    tokenizer as kind ``hf`` with its tokenizer.json, its BOS its ``bos_token_id`` (else
    ``eos_token_id``); a slow one decodes only; None decodes to empty strings."""
    if tokenizer is None:
        return StoredTokenizer(None, None, None, lambda ids: "")
    if isinstance(tokenizer, Tokenizer):
        return StoredTokenizer(
            tokenizer.kind, tokenizer.to_json(), int(tokenizer.bos_id), tokenizer.decode
        )
    if not callable(getattr(tokenizer, "decode", None)):
        raise TypeError(
            f"tokenizer: a {type(tokenizer).__name__} has no decode(); pass the Hugging Face "
            "tokenizer the items were made with (or None)"
        )
    bos = getattr(tokenizer, "bos_token_id", None)
    bos = getattr(tokenizer, "eos_token_id", None) if bos is None else bos
    backend = getattr(tokenizer, "backend_tokenizer", None)
    kind, json_text = ("hf", backend.to_str()) if backend is not None else (None, None)
    return StoredTokenizer(kind, json_text, bos, lambda ids: tokenizer.decode(ids))


def model_section(model: nn.Module, model_path: str | None) -> dict[str, Any]:
    """run.json's ``config.model``: ``gpt`` for a GPT-2 that `build_lm` rebuilds from its
    sizes, else ``hf`` with the checkpoint folder `load_run_lm` starts from (`model_path`,
    else the folder the model was loaded from, else None)."""
    config = model.config
    if type(model) is GPT2LMHeadModel and model_path is None:
        sizes = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")
        ids = {"bos_token_id": config.bos_token_id, "eos_token_id": config.eos_token_id}
        rebuilt = GPT2Config(**{k: getattr(config, k) for k in sizes}, **ids)
        if all(getattr(rebuilt, k, None) == getattr(config, k, None) for k in _GPT2_ARCHITECTURE):
            return {
                "name": "gpt",
                "n_layers": int(config.n_layer),
                "n_heads": int(config.n_head),
                "width": int(config.n_embd),
                "context": int(config.n_positions),
                "dropout": float(config.resid_pdrop),
            }
    if model_path is None:
        loaded = getattr(config, "name_or_path", "") or ""
        model_path = loaded if loaded and (Path(loaded) / "config.json").is_file() else None
    return {"name": "hf", "model_path": model_path}


def vocabulary(model: nn.Module) -> int:
    """The tokens a causal LM predicts (its output embeddings' rows)."""
    head = model.get_output_embeddings()
    n = getattr(head, "out_features", None) or getattr(head, "num_embeddings", None)
    return int(n or model.config.get_text_config().vocab_size)
