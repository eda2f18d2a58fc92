"""Texts to train a language model on, with nothing downloaded: a seeded synthetic corpus of
templated English with a known entropy, the docstrings of the running Python's standard
library, or the user's own texts (.txt, .jsonl, a folder of .txt, a Hugging Face dataset
saved with ``save_to_disk``).
"""

from __future__ import annotations

import ast
import functools
import json
import math
import re
import sysconfig
import warnings
from pathlib import Path

import numpy as np

from memdash.analysis.record.dataset import saved_split_table

# The synthetic corpus: every template holds every slot once, so a sentence is one uniform
# choice of template and one uniform choice per slot; every choice gives a distinct sentence
# (each template starts differently, words are single tokens of their slot's list), so the
# entropy per sentence is exactly log2(templates) + sum of log2(list sizes).
TEMPLATES = (
    "{subject} {verb} the {adjective} {object} {place}.",
    "{place}, {subject} {verb} the {adjective} {object}.",
    "the {adjective} {object} was what {subject} {verb} {place}.",
    "yesterday {subject} {verb} the {adjective} {object} {place}.",
)
WORDS: dict[str, tuple[str, ...]] = {
    "subject": (
        "anna", "ben", "clara", "david", "emma", "felix", "grace", "henry",
        "iris", "jack", "kate", "leo", "mia", "noah", "olga", "paul",
    ),
    "verb": (
        "saw", "found", "painted", "carried", "dropped", "bought", "sold", "hid",
        "cleaned", "moved", "lost", "kept", "broke", "fixed", "opened", "wanted",
    ),
    "adjective": ("red", "small", "old", "heavy", "bright", "wooden", "broken", "quiet"),
    "object": (
        "cup", "lamp", "chair", "book", "kettle", "basket", "clock", "mirror",
        "box", "coat", "bottle", "drum", "ladder", "map", "key", "bell",
    ),
    "place": (
        "in the garden", "at the market", "by the river", "near the school",
        "in the kitchen", "at the station", "on the hill", "under the bridge",
    ),
}  # fmt: skip

PARAGRAPH = re.compile(r"\n[ \t]*\n")
MIN_PARAGRAPH = 20  # characters: shorter docstring paragraphs are dropped
NOT_STDLIB = ("site-packages", "dist-packages")
HF_MARKERS = ("dataset_dict.json", "state.json")
DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def synthetic_entropy() -> float:
    """The synthetic corpus's exact entropy per sentence, in bits:
    ``log2(len(TEMPLATES)) + sum over slots of log2(len(WORDS[slot]))``."""
    return math.log2(len(TEMPLATES)) + sum(math.log2(len(words)) for words in WORDS.values())


def synthetic_corpus(n: int, seed: int) -> tuple[list[str], float]:
    """`n` seeded sentences of templated English (30-70 characters each).

    Each sentence draws a template of `TEMPLATES` and a word of each slot's list in `WORDS`
    uniformly and independently, so sentences repeat as often as chance makes them (about
    ``n ** 2 / 2 ** (entropy + 1)`` coinciding pairs): a corpus whose true entropy is known.
    The first m sentences of a draw of n > m are the draw of m (same seed).

    Parameters
    ----------
    n : number of sentences (>= 0)
    seed : seed of `numpy.random.default_rng`

    Returns
    -------
    sentences : list of `n` strings
    entropy_bits : the generator's entropy per sentence, bits (`synthetic_entropy`, 20.0)
    """
    if n < 0:
        raise ValueError(f"--n-examples must be >= 0, got {n}")
    sizes = [len(TEMPLATES), *(len(words) for words in WORDS.values())]
    # one row of choices per sentence, drawn row after row: a smaller n gives a prefix
    choices = np.random.default_rng(seed).integers(0, sizes, size=(n, len(sizes))).tolist()
    sentences = [
        TEMPLATES[row[0]].format(
            **{slot: WORDS[slot][c] for slot, c in zip(WORDS, row[1:], strict=True)}
        )
        for row in choices
    ]
    return sentences, synthetic_entropy()


def python_docs(*, root: str | Path | None = None) -> list[str]:
    """The docstrings of the running Python's standard library, as paragraphs of prose.

    The ``.py`` files under ``sysconfig.get_paths()["stdlib"]`` (``site-packages`` and
    ``dist-packages`` left out) are parsed with `ast`, never imported, in sorted path order;
    each module's, class's and function's docstring, in source order, is split at blank
    lines into paragraphs, their whitespace collapsed to single spaces; ASCII-printable
    paragraphs of at least 20 characters are kept. Files that do not parse are skipped.
    The same Python gives the same list (cached after the first call, ~10 s).

    Parameters
    ----------
    root : another folder to read instead of the standard library (for tests)

    Returns
    -------
    list of str
        The paragraphs, tens of thousands for CPython's library.
    """
    folder = Path(sysconfig.get_paths()["stdlib"] if root is None else root)
    return list(_docs_of(str(folder.resolve())))


@functools.lru_cache(maxsize=4)
def _docs_of(folder: str) -> tuple[str, ...]:
    root = Path(folder)
    files = sorted(
        p for p in root.rglob("*.py") if not set(p.relative_to(root).parts) & set(NOT_STDLIB)
    )
    paragraphs: list[str] = []
    for file in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tree = ast.parse(file.read_bytes(), filename=str(file))
        except (SyntaxError, ValueError, OSError):
            continue
        for doc in _docstrings(tree):
            for piece in PARAGRAPH.split(doc):
                text = " ".join(piece.split())
                if len(text) >= MIN_PARAGRAPH and text.isascii() and text.isprintable():
                    paragraphs.append(text)
    return tuple(paragraphs)


def _docstrings(tree: ast.AST) -> list[str]:
    """Docstrings of a module and the classes and functions in it, depth first in source
    order."""
    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, DOCUMENTED):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                found.append(doc)
        # definitions, and the blocks (if, try, except, with, ...) that may hold some
        blocks = [c for c in ast.iter_child_nodes(node) if isinstance(getattr(c, "body", 0), list)]
        stack.extend(reversed(blocks))
    return found


# ------------------------------------------------------------------ the user's texts


def read_text_path(path: str | Path | None, *, text_column: str = "text") -> list[str]:
    """The user's texts, nothing downloaded.

    - a ``.txt`` file: its lines (``str.splitlines``)
    - a ``.jsonl`` file: each non-blank line a JSON object with a string under `text_column`
    - a folder of ``.txt`` files: each file's lines, files in sorted order (subfolders too)
    - a Hugging Face dataset saved with ``save_to_disk`` (a ``Dataset``, or a ``DatasetDict``
      whose splits are read in their listed order): the `text_column` of its Arrow files,
      read with pyarrow (the `datasets` library is not needed)

    Text files must be UTF-8 (a leading byte-order mark is dropped).

    Returns
    -------
    list of str
        The texts in file order (blank lines included; they make empty sequences that
        `prepare_text` drops).

    Raises
    ------
    ValueError
        One line naming the file: a missing path, a file with no text, bytes that are not
        UTF-8 (with the byte offset), a ``.jsonl`` line that is not JSON or lacks the
        column, a folder without ``.txt`` files, a dataset without the column.
    """
    if not path:
        raise ValueError("text data needs --data-path (a .txt, .jsonl, folder or saved dataset)")
    root = Path(path)
    if not root.exists():
        raise ValueError(f"{root}: no such file or folder (--data-path)")
    if root.is_dir():
        if any((root / marker).is_file() for marker in HF_MARKERS):
            return _hf_texts(root, text_column)
        files = sorted(root.rglob("*.txt"))
        if not files:
            raise ValueError(f"{root}: no .txt files in this folder (--data-path)")
        return [line for file in files for line in _txt_lines(file)]
    suffix = root.suffix.lower()
    if suffix == ".txt":
        return _txt_lines(root)
    if suffix == ".jsonl":
        return _jsonl_texts(root, text_column)
    raise ValueError(
        f"{root}: not a .txt or .jsonl file (--data-path reads .txt, .jsonl, a folder of "
        ".txt files or a dataset saved with save_to_disk)"
    )


def _read_utf8(file: Path) -> str:
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{file}: not UTF-8 text (byte 0x{raw[err.start]:02X} at offset {err.start})"
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise ValueError(f"{file}: empty (no text)")
    return text


def _txt_lines(file: Path) -> list[str]:
    return _read_utf8(file).splitlines()


def _jsonl_texts(file: Path, column: str) -> list[str]:
    texts = []
    for number, line in enumerate(_read_utf8(file).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{file} line {number}: not JSON ({err.msg})") from None
        value = record.get(column) if isinstance(record, dict) else None
        if not isinstance(value, str):
            raise ValueError(
                f"{file} line {number}: no string {column!r} in this JSON object (name the "
                "text's key with --text-column)"
            )
        texts.append(value)
    if not any(t.strip() for t in texts):
        raise ValueError(f"{file}: empty (no text under {column!r})")
    return texts


def _hf_texts(root: Path, column: str) -> list[str]:
    """The `column` of a dataset saved with save_to_disk, every split in its listed order."""
    if (root / "dataset_dict.json").is_file():
        try:
            splits = json.loads((root / "dataset_dict.json").read_text())["splits"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{root / 'dataset_dict.json'}: unreadable ({err})") from None
        folders = [root / str(split) for split in splits]
    else:
        folders = [root]
    texts = [text for folder in folders for text in _hf_split_texts(folder, column)]
    if not any(t.strip() for t in texts):
        raise ValueError(f"{root}: empty (no text in column {column!r})")
    return texts


def _hf_split_texts(folder: Path, column: str) -> list[str]:
    table = saved_split_table(folder)
    if column not in table.column_names:
        raise ValueError(
            f"{folder}: no column {column!r}; its columns are {table.column_names} (name the "
            "text column with --text-column)"
        )
    values = table.column(column).to_pylist()
    for row, value in enumerate(values):
        if not isinstance(value, str):
            raise ValueError(
                f"{folder}: row {row} of {column!r} is {type(value).__name__}, not a string"
            )
    return values
