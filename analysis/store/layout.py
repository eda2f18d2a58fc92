"""The layout of a run directory (docs/run-format.md, schema_version 1).

The schema version, the run statuses, trace sources and example splits, the columns of
each table (by kind, checked on the Parquet schema without reading data), and the patterns
of the file names a run's parts are stored under. The schema of run.json is in `schema`.
"""

from __future__ import annotations

import re
from pathlib import Path

SCHEMA_VERSION = 1
STATUSES = ("created", "running", "complete", "failed")
SOURCES = ("eval", "train")
SPLITS = ("train", "test", "reference")

# column -> kind; kinds are checked on the Parquet schema without reading data
EXAMPLES_COLUMNS = {
    "example_id": "int",
    "split": "string",
    "label": "int",
    "true_label": "int",
    "is_noisy": "bool",
    "is_canary": "bool",
}
TRACE_COLUMNS = {
    "source": "string",
    "epoch": "int",
    "example_id": "int",
    "loss": "float",
    "prob_label": "float",
    "margin": "float",
    "pred": "int",
    "correct": "bool",
}
LAYER_GRADS_COLUMNS = {
    "epoch": "int",
    "layer": "string",
    "subset": "string",
    "grad_norm": "float",
    "share": "float",
    "cosine": "float",
    "n_examples": "int",
}

# trace.parquet/SOURCE-epoch_EEE.parquet, layer_grads.parquet/epoch_EEE.parquet,
# embeddings/epoch_EEE/
TRACE_PART = re.compile(r"^(eval|train)-epoch_(\d{3,})\.parquet$")
GRADS_PART = re.compile(r"^epoch_(\d{3,})\.parquet$")
EPOCH_DIR = re.compile(r"^epoch_(\d{3,})$")
CHECKPOINT = re.compile(r"^epoch_(\d{3,})\.safetensors$")
# text runs: tokens/epoch_EEE.npy (per-token losses) and the run's own tokenizer.json
TOKENS_PART = re.compile(r"^epoch_(\d{3,})\.npy$")
TOKENIZER_FILE = "tokenizer.json"
# heldout/spec.json and heldout/rR_bBBBB.{subsets,conf,correct}.npy (`memdash estimate`; a
# text run's: {subsets,copies,accuracy,loglik})
HELDOUT_FILE = re.compile(
    r"^(?:spec\.json|r\d+_b\d{4,}\.(?:subsets|copies|conf|correct|accuracy|loglik)\.npy)$"
)
# the hidden temporary sibling an atomic write renames over its file (atomic.py)
TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")
# a plain file name (a layer, a heldout array); a derived name, optionally under one folder
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
DERIVED_NAME = re.compile(r"^(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*/)?[A-Za-z0-9_-][A-Za-z0-9_.-]*$")


def parts(root: Path, pattern: re.Pattern[str]) -> list[tuple[Path, re.Match[str]]]:
    """The entries of folder `root` whose names match `pattern`, sorted, with their matches
    ([] when `root` is not a folder)."""
    if not root.is_dir():
        return []
    found = ((p, pattern.match(p.name)) for p in sorted(root.iterdir()))
    return [(p, m) for p, m in found if m]
