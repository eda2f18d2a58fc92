"""Tokenizers of a language-model run: UTF-8 bytes, or a byte-level BPE trained on the run's
training texts (Hugging Face `tokenizers`), behind one `Tokenizer` protocol.

Both reserve one id for the BOS token every model reads first (``[BOS] + tokens[:-1]``), and
both split every decimal digit into a token of its own, so that a canary's secret digits
are one token each (the Secret Sharer's exposure enumerates them; Carlini et al. 2019).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

BOS_TOKEN = "<bos>"
TOKENIZERS = ("byte", "bpe", "hf")
BYTES = 256
BYTE_MIN_VOCAB = BYTES + 1  # a byte-level BPE holds every byte and the BOS token
_PLAIN = {ord("\n"), ord("\t")} | set(range(0x20, 0x7F))  # bytes shown as themselves


@runtime_checkable
class Tokenizer(Protocol):
    """What memdash asks of a tokenizer.

    Attributes
    ----------
    kind : "byte" or "bpe"
    vocab_size : number of ids, the BOS id included (ids lie in ``0 .. vocab_size - 1``)
    bos_id : the id of the BOS token, which no encoded text contains
    """

    kind: str
    vocab_size: int
    bos_id: int

    def encode(self, text: str) -> list[int]:
        """The ids of `text`, without BOS."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids` (BOS left out; an incomplete UTF-8 character becomes U+FFFD)."""
        ...

    def token_texts(self, ids: Sequence[int]) -> list[str]:
        """The display text of each id, one string per id."""
        ...

    def to_json(self) -> str | None:
        """The tokenizer as ``tokenizer.json`` text (None for byte level: nothing to save)."""
        ...


class ByteTokenizer:
    """UTF-8 bytes as ids 0..255 and BOS = 256 (vocabulary 257), as the Secret Sharer's
    character-level models read text.

    Examples
    --------
    >>> tok = ByteTokenizer()
    >>> tok.encode("pin 7")
    [112, 105, 110, 32, 55]
    >>> tok.decode([256, 104, 105])
    'hi'
    """

    kind = "byte"
    vocab_size = BYTE_MIN_VOCAB
    bos_id = BYTES

    def encode(self, text: str) -> list[int]:
        """The UTF-8 bytes of `text`."""
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        """The bytes of `ids` (BOS dropped) as UTF-8, invalid sequences replaced by U+FFFD.

        Raises
        ------
        ValueError
            An id outside 0..256 (padding, -1, included: strip it first).
        """
        _check_ids(ids, self.vocab_size)
        return bytes(i for i in ids if i != self.bos_id).decode("utf-8", errors="replace")

    def token_texts(self, ids: Sequence[int]) -> list[str]:
        """Printable ASCII, newline and tab as themselves, other bytes as ``<0xNN>`` (one byte
        of a longer UTF-8 character), BOS as ``<bos>``."""
        _check_ids(ids, self.vocab_size)
        return [
            BOS_TOKEN if i == self.bos_id else chr(i) if i in _PLAIN else f"<0x{i:02X}>"
            for i in ids
        ]

    def to_json(self) -> None:
        """Nothing: the byte tokenizer is defined by its kind alone."""
        return None

    def __repr__(self) -> str:
        return "ByteTokenizer()"


class BPETokenizer:
    """A Hugging Face `tokenizers.Tokenizer` (byte-level BPE with a ``<bos>`` special token)
    behind the `Tokenizer` protocol.

    Parameters
    ----------
    tokenizer : a `tokenizers.Tokenizer` whose vocabulary holds ``<bos>``

    Raises
    ------
    ValueError
        The tokenizer has no ``<bos>`` token.
    """

    kind = "bpe"

    def __init__(self, tokenizer: Any, bos_token: str = BOS_TOKEN, kind: str = "bpe") -> None:
        bos = tokenizer.token_to_id(bos_token)
        if bos is None:
            raise ValueError(f"tokenizer.json: the tokenizer has no {bos_token!r} token")
        self.kind = kind
        self.tokenizer = tokenizer
        self.bos_id = int(bos)
        self.vocab_size = int(tokenizer.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str) -> list[int]:
        """The BPE ids of `text` (no special tokens added)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids`, BOS dropped; a token ending inside a UTF-8 character leaves U+FFFD.

        Raises
        ------
        ValueError
            An id outside ``0 .. vocab_size - 1``.
        """
        _check_ids(ids, self.vocab_size)
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)

    def token_texts(self, ids: Sequence[int]) -> list[str]:
        """Each token decoded alone (BOS as ``<bos>``)."""
        _check_ids(ids, self.vocab_size)
        return [self.tokenizer.decode([int(i)], skip_special_tokens=False) for i in ids]

    def to_json(self) -> str:
        """The ``tokenizer.json`` text (`tokenizers.Tokenizer.to_str`)."""
        return self.tokenizer.to_str()

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


class IdTokenizer:
    """The tokens of a run that stored no tokenizer (a user's own loop without one): each
    token shown by its id, ``⟨id⟩``; nothing encodes."""

    kind = "ids"

    def __init__(self, vocab_size: int, bos_id: int) -> None:
        self.vocab_size, self.bos_id = int(vocab_size), int(bos_id)

    def encode(self, text: str) -> list[int]:
        raise ValueError("this run stored no tokenizer: its text cannot be encoded again")

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.token_texts(ids))

    def token_texts(self, ids: Sequence[int]) -> list[str]:
        _check_ids(ids, self.vocab_size)
        return [f"⟨{int(i)}⟩" for i in ids]

    def to_json(self) -> None:
        return None


def train_bpe(texts: Sequence[str], vocab_size: int) -> BPETokenizer:
    """Train a byte-level BPE on `texts` (a run's training texts only, before any canary).

    The pre-tokenizer splits every decimal digit into a piece of its own before the GPT-2
    byte-level split (``Sequence([Digits(individual_digits=True), ByteLevel()])``), so no
    merge ever joins a digit with anything: each of "0".."9" stays one token. The initial
    alphabet holds all 256 bytes, so any text encodes. Deterministic for the same texts.

    Parameters
    ----------
    texts : the training texts
    vocab_size : the largest vocabulary, ``<bos>`` and the 256 bytes included (>= 257); the
        result is smaller when the texts allow fewer merges

    Raises
    ------
    ValueError
        `vocab_size` below 257, or no text.
    """
    if vocab_size < BYTE_MIN_VOCAB:
        raise ValueError(
            f"--vocab-size must be at least {BYTE_MIN_VOCAB} (256 bytes + {BOS_TOKEN}), "
            f"got {vocab_size}"
        )
    if not any(texts):
        raise ValueError("no training text to train the BPE tokenizer on")
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tok = HFTokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    return BPETokenizer(tok)


def model_tokenizer(model_path: str) -> BPETokenizer:
    """The tokenizer saved with a causal LM checkpoint (``--model hf``): its
    ``tokenizer.json`` (a fast tokenizer, ``tokenizer.save_pretrained(DIR)``), its BOS the
    ``bos_token`` of ``tokenizer_config.json`` (else its ``eos_token``, GPT-2's
    ``<|endoftext|>``), fed before every sequence as the model was trained to see.

    Raises
    ------
    ValueError
        Naming --model-path: no tokenizer.json, one `tokenizers` cannot read, no BOS or EOS.
    """
    from tokenizers import Tokenizer as HFTokenizer

    folder = Path(model_path)
    where = f"--model-path {model_path}"
    if not (folder / "tokenizer.json").is_file():
        raise ValueError(
            f"{where}: no tokenizer.json; save the model's tokenizer beside it "
            "(tokenizer.save_pretrained(DIR))"
        )
    try:
        tok = HFTokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as err:  # tokenizers raises its own Exception type
        raise ValueError(f"{where}: tokenizer.json does not read ({_first(err)})") from None
    settings: dict[str, Any] = {}
    config = folder / "tokenizer_config.json"
    if config.is_file():
        try:
            settings = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{where}: tokenizer_config.json does not read ({err})") from None
    for key in ("bos_token", "eos_token"):
        token = settings.get(key)
        token = token.get("content") if isinstance(token, dict) else token
        if isinstance(token, str) and tok.token_to_id(token) is not None:
            return BPETokenizer(tok, token, kind="hf")
    raise ValueError(
        f"{where}: the tokenizer names no bos_token or eos_token in tokenizer_config.json "
        "to begin each sequence with"
    )


def _first(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def load_tokenizer(kind: str, json_text: str | None, bos_id: int | None = None) -> Tokenizer:
    """The tokenizer of a run, from its kind (run.json) and its ``tokenizer.json`` text.

    Parameters
    ----------
    kind : "byte" or "bpe"
    json_text : the ``tokenizer.json`` text of a BPE (ignored for "byte")

    Raises
    ------
    ValueError
        An unknown kind, a BPE without its JSON, or JSON that `tokenizers` cannot read.
    """
    if kind == "byte":
        return ByteTokenizer()
    if kind not in ("bpe", "hf"):
        raise ValueError(f"unknown tokenizer {kind!r}; valid: {', '.join(TOKENIZERS)}")
    if not json_text:
        raise ValueError("tokenizer 'bpe' needs its tokenizer.json, which is missing or empty")
    from tokenizers import Tokenizer as HFTokenizer

    try:
        json.loads(json_text)
        tok = HFTokenizer.from_str(json_text)
    except Exception as err:  # tokenizers raises its own Exception type
        problem = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(
            f"tokenizer.json: not a tokenizer `tokenizers` can read ({problem})"
        ) from None
    if kind == "hf":  # a checkpoint's own tokenizer: its BOS by the id run.json stored
        token = tok.id_to_token(int(bos_id)) if bos_id is not None else None
        if token is None:
            raise ValueError("tokenizer.json: run.json's text.bos_id is not one of its tokens")
        return BPETokenizer(tok, token, kind="hf")
    return BPETokenizer(tok)


def digit_token_ids(tok: Tokenizer) -> list[int]:
    """The ids of the tokens "0".."9", in digit order.

    Raises
    ------
    ValueError
        A digit is not exactly one token, alone or inside a run of digits (then a secret's
        digits would not be one token each, and the candidates could not be enumerated).
    """
    ids = []
    for digit in "0123456789":
        encoded = tok.encode(digit)
        if len(encoded) != 1:
            raise ValueError(
                f"the {tok.kind} tokenizer encodes the digit {digit!r} as {len(encoded)} "
                "tokens; a canary's digits must be one token each"
            )
        ids.append(int(encoded[0]))
    if tok.encode("0123456789") != ids:
        raise ValueError(
            f"the {tok.kind} tokenizer merges digits in '0123456789'; a canary's digits must "
            "be one token each"
        )
    return ids


def _check_ids(ids: Sequence[int], vocab_size: int) -> None:
    bad = [int(i) for i in ids if not 0 <= int(i) < vocab_size]
    if bad:
        raise ValueError(
            f"token id {bad[0]} outside the vocabulary 0..{vocab_size - 1} (strip the -1 "
            "padding before decoding)"
        )
