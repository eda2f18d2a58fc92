"""Second-split forgetting time (SSFT; Maini, Garg, Lipton & Kolter 2022, "Characterizing
datapoints via second-split forgetting", NeurIPS).

A model is trained on split A of the training set until it fits it, then trained on split B
only. An A example's SSFT is the first epoch of B-training after which the model gets it
wrong for good (with respect to its training label: a flipped example's flipped label).
Mislabeled examples are forgotten within an epoch or two, rare and atypical ones soon after,
typical ones never: lower = forgotten sooner (mislabeled, rare).

The correctness grid holds the end of A-training as row 0 and B-epoch e as row e, so an
example that is right last at row r (and wrong at every row after it) has SSFT r + 1:

- never forgotten (right after the last B epoch E) gets E + 1, as in the paper's code
  (``get_first_epoch_where_we_forget_forever``: one past the last epoch, the finite stand-in
  for "never"), so that it ranks above an example forgotten at the last epoch (E);
- forgotten, relearned and forgotten again counts from the last forgetting;
- not learned at the end of A-training (row 0 wrong): the paper's forgetting time is
  meaningful only for examples the model had learned, and it studies those. Such an example
  gets 0 (``not_learned="zero"``, the default: "gone before B-training began", ranked with
  the most forgotten, where a mislabeled example A-training never fit belongs, and kept in
  the ranking a proxy is judged by) or NaN (``not_learned="nan"``: left out, the paper's
  restriction); callers flag such examples with ``correct[0]``.
"""

from __future__ import annotations

import numpy as np

NOT_LEARNED = ("zero", "nan")  # what an example not learned at the end of A-training gets


def second_split_forgetting_time(correct: np.ndarray, *, not_learned: str = "zero") -> np.ndarray:
    """Each example's second-split forgetting time from its correctness during B-training.

    Parameters
    ----------
    correct : bool (E + 1, n)
        Whether the model predicts each example's training label: row 0 at the end of
        A-training (the split the examples belong to), row e after B-training epoch e.
    not_learned : ``"zero"`` or ``"nan"``
        The SSFT of an example wrong at row 0 (not learned by A-training): 0, or NaN.

    Returns
    -------
    float64 (n,)
        The first B epoch (1..E) from which the example stays wrong; E + 1 for one right at
        the last epoch (never forgotten); 0 or NaN for one not learned (row 0 wrong).
        Lower = forgotten sooner: mislabeled, rare and atypical examples (Maini et al. 2022).

    Raises
    ------
    ValueError
        `correct` not a bool 2-D array with at least one row, or an unknown `not_learned`.
    """
    if not_learned not in NOT_LEARNED:
        raise ValueError(f"unknown not_learned {not_learned!r}; valid: {', '.join(NOT_LEARNED)}")
    grid = np.asarray(correct)
    if grid.dtype != bool or grid.ndim != 2 or len(grid) == 0:
        raise ValueError(
            "correct must be a bool (epochs + 1, examples) grid with row 0 at the end of "
            f"A-training, got {grid.dtype} {grid.shape}"
        )
    rows = len(grid)
    # the last row each example is right at (-1: never right): first True of the flipped grid
    last = np.where(grid.any(axis=0), rows - 1 - np.argmax(grid[::-1], axis=0), -1)
    ssft = (last + 1).astype(np.float64)
    ssft[~grid[0]] = 0.0 if not_learned == "zero" else np.nan
    return ssft
