"""`memdash train --store-inputs`: the forms a run may store its inputs in, and which fit which
dataset (the forms themselves are the store's, `memdash.analysis.store.inputs`).

Kept free of heavy imports: the run config checks a value with it.
"""

from __future__ import annotations

# auto: full up to 2 GiB of float32 inputs, thumbnails above (store.inputs.AUTO_FULL_BYTES)
STORE_INPUTS = ("auto", "full", "thumbnail", "path")
PATH_DATASETS = ("folder", "hf")  # the datasets whose examples come from files


def check_store_inputs(form: str, dataset: str, *, text: bool) -> None:
    """Refuse a form the dataset cannot be stored in, in one line naming the option.

    Raises
    ------
    ValueError
        An unknown form (listing the valid ones); ``path`` for a dataset of no files;
        ``thumbnail`` or ``path`` for a text run (its inputs are its tokens).
    """
    if form not in STORE_INPUTS:
        raise ValueError(f"unknown store_inputs {form!r}; valid: {', '.join(STORE_INPUTS)}")
    if text and form in ("thumbnail", "path"):
        raise ValueError(
            f"--store-inputs {form}: a text run's inputs are its tokens, stored in full "
            "(use auto or full)"
        )
    if form == "path" and dataset not in PATH_DATASETS:
        raise ValueError(
            f"--store-inputs path needs a dataset of files (--dataset "
            f"{' or '.join(PATH_DATASETS)}); {dataset} has none: use full or thumbnail"
        )
