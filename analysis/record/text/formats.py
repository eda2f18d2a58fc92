"""The Secret Sharer's canary formats (Carlini et al. 2019, "The Secret Sharer"): a text with
digit slots, ``"my pin is {d}{d}{d}{d}{d}{d}"``, whose slots hold a random secret.

The randomness space R of a format with k slots is every digit string of length k, so
``|R| = 10 ** k``; a candidate's index in R is its digits read as a base-10 number (the
lexicographic order of the digit strings), the index the exposure's ranking uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from memdash.analysis.record.text.tokenize import Tokenizer

SLOT = "{d}"
MAX_SLOTS = 18  # 10 ** 18 < 2 ** 63: a candidate's index fits int64


@dataclass(frozen=True)
class CanaryFormat:
    """A canary format, parsed by `parse_format`.

    Attributes
    ----------
    text : the format as written, e.g. ``"my pin is {d}{d}{d}{d}{d}{d}"``
    literals : the text around the slots, ``slots + 1`` pieces (empty between adjacent slots)
    slots : number of ``{d}`` slots, one decimal digit each
    """

    text: str
    literals: tuple[str, ...]
    slots: int

    @property
    def space_size(self) -> int:
        """|R| = 10 ** slots, the number of candidate secrets."""
        return 10**self.slots

    def render(self, digits: Sequence[int]) -> str:
        """The canary text with `digits` (one per slot, each 0..9) in the slots.

        Raises
        ------
        ValueError
            Not one digit per slot, or a value outside 0..9.
        """
        values = [int(d) for d in digits]
        if len(values) != self.slots or any(not 0 <= d <= 9 for d in values):
            raise ValueError(
                f"canary format {self.text!r} needs {self.slots} digits 0..9, got {values}"
            )
        parts = [self.literals[0]]
        for digit, literal in zip(values, self.literals[1:], strict=True):
            parts += [str(digit), literal]
        return "".join(parts)

    def prefix(self) -> str:
        """The text before the first slot (``literals[0]``), the extraction prompt."""
        return self.literals[0]


def parse_format(text: str) -> CanaryFormat:
    """Parse a canary format: literal text with ``{d}`` for each secret digit.

    Parameters
    ----------
    text : e.g. ``"my pin is {d}{d}{d}{d}{d}{d}"`` (six slots, 10 ** 6 candidates)

    Raises
    ------
    ValueError
        Naming ``--canary-format``: no ``{d}`` slot, another brace (only ``{d}`` may be
        written in braces), or more than 18 slots.

    Examples
    --------
    >>> parse_format("pin {d}{d}!").literals
    ('pin ', '', '!')
    """
    literals = tuple(text.split(SLOT))
    slots = len(literals) - 1
    if slots == 0:
        raise ValueError(
            f"--canary-format {text!r} has no {SLOT} slot; write one {SLOT} per secret digit, "
            "e.g. 'my pin is {d}{d}{d}{d}{d}{d}'"
        )
    stray = [piece for piece in literals if "{" in piece or "}" in piece]
    if stray:
        raise ValueError(
            f"--canary-format {text!r} has a brace outside a {SLOT} slot (in {stray[0]!r}); "
            f"only {SLOT} may be written in braces"
        )
    if slots > MAX_SLOTS:
        raise ValueError(
            f"--canary-format {text!r} has {slots} slots; at most {MAX_SLOTS} (a candidate's "
            "index must fit in int64)"
        )
    return CanaryFormat(text=text, literals=literals, slots=slots)


def draw_secrets(
    fmt: CanaryFormat,
    count: int,
    seed: int | Sequence[int],
    *,
    exclude: np.ndarray | Sequence[Sequence[int]] = (),
) -> np.ndarray:
    """Draw `count` distinct secrets of `fmt` uniformly from its space, none in `exclude`.

    Parameters
    ----------
    fmt : the canary format
    count : number of secrets
    seed : seed of `numpy.random.default_rng` (an int or a sequence of ints)
    exclude : digit rows, shape (k, slots), that no drawn secret may equal

    Returns
    -------
    np.ndarray
        int64, shape (count, slots): row i the digits of secret i, in draw order.

    Raises
    ------
    ValueError
        More secrets asked for than the space holds outside `exclude`.
    """
    taken = np.unique(secret_index(_rows(exclude, fmt.slots)))
    if count < 0 or count + len(taken) > fmt.space_size:
        raise ValueError(
            f"cannot draw {count} distinct secrets of --canary-format {fmt.text!r}: its "
            f"{fmt.space_size} candidates less {len(taken)} excluded leave "
            f"{fmt.space_size - len(taken)}"
        )
    rng = np.random.default_rng(seed)
    drawn = rng.choice(fmt.space_size, size=count + len(taken), replace=False)
    kept = drawn[~np.isin(drawn, taken)][:count]
    return index_digits(kept.astype(np.int64), fmt.slots)


def secret_index(digits: np.ndarray) -> np.ndarray:
    """Each candidate's index in R: its digits read as a base-10 number.

    Parameters
    ----------
    digits : int array, shape (k, slots), values 0..9

    Returns
    -------
    np.ndarray
        int64, shape (k,): ``sum_j digits[:, j] * 10 ** (slots - 1 - j)``, the candidate's
        position in the lexicographic order of the digit strings.

    Raises
    ------
    ValueError
        Not two-dimensional, more than 18 slots, or a value outside 0..9.

    Examples
    --------
    >>> secret_index(np.array([[0, 4, 2], [9, 9, 9]]))
    array([ 42, 999])
    """
    digits = np.asarray(digits)
    if digits.ndim != 2 or digits.shape[1] > MAX_SLOTS:
        raise ValueError(
            f"secret digits must have shape (k, slots) with slots <= {MAX_SLOTS}, "
            f"got {digits.shape}"
        )
    if digits.size and (digits.dtype.kind not in "iu" or digits.min() < 0 or digits.max() > 9):
        raise ValueError("secret digits must be integers 0..9")
    powers = 10 ** np.arange(digits.shape[1] - 1, -1, -1, dtype=np.int64)
    return digits.astype(np.int64) @ powers


def index_digits(index: np.ndarray, slots: int) -> np.ndarray:
    """The inverse of `secret_index`: int64 (k,) indices -> int64 (k, slots) digit rows."""
    index = np.asarray(index, dtype=np.int64)
    powers = 10 ** np.arange(slots - 1, -1, -1, dtype=np.int64)
    return (index[:, None] // powers) % 10


def _rows(exclude: np.ndarray | Sequence[Sequence[int]], slots: int) -> np.ndarray:
    rows = np.asarray(exclude, dtype=np.int64)
    if rows.size == 0:
        return np.zeros((0, slots), dtype=np.int64)
    if rows.ndim != 2 or rows.shape[1] != slots:
        raise ValueError(f"excluded secrets must have shape (k, {slots}), got {rows.shape}")
    return rows


def shared_prefix(fmt: CanaryFormat, tok: Tokenizer, seqs: list[list[int]]) -> list[int]:
    """The tokens every canary of a format starts with inside the format's prefix text: the
    extraction's prompt and the part the exposure's Px leaves out.

    The byte tokenizer gives the prefix's own tokens; a tokenizer that joins a space with
    the digit after it (GPT-2's byte-level BPE: ``" 2"`` is one token) stops before it.

    Raises
    ------
    ValueError
        No token of the prefix is shared (the format starts with a slot, or its first token
        runs into the secret).
    """
    probes = [tok.encode(fmt.render([d] * fmt.slots)) for d in range(10)]
    shared = []
    for column in zip(*probes, *seqs, strict=False):
        if len(set(column)) > 1:
            break
        shared.append(column[0])
    while shared and not fmt.prefix().startswith(tok.decode(shared)):
        shared.pop()  # tokens past the prefix's text (a secret's first digit shared)
    if not shared:
        raise ValueError(
            f"--canary-format {fmt.text!r}: no token of its prefix {fmt.prefix()!r} is the "
            "same in every canary; begin the format with some words before the first {d}"
        )
    return shared
