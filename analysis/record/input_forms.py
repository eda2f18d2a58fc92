"""What a dataset's files need of the options: a --data-path, and a form of `memdash train
--store-inputs` that fits them (the forms themselves are the store's,
`memdash.analysis.store.inputs`).

Kept free of heavy imports: the run config checks its values with it.
"""

from __future__ import annotations

# auto: full up to 2 GiB of float32 inputs, thumbnails above (store.inputs.AUTO_FULL_BYTES)
STORE_INPUTS = ("auto", "full", "thumbnail", "path")
PATH_DATASETS = ("folder", "hf")  # the datasets whose examples come from files
# what --data-path must name, by dataset
DATA_PATHS = {
    "npz": "the .npz file",
    "folder": "a folder of class subfolders",
    "hf": "a dataset saved with save_to_disk",
}


def check_sources(dataset: str, path: str | None, form: str, *, text: bool) -> None:
    """Refuse a dataset that needs a --data-path without one, then a --store-inputs `form`
    it cannot be stored in (`check_store_inputs`), each in one line naming the option."""
    if dataset in DATA_PATHS and not path:
        raise ValueError(f"--dataset {dataset} needs --data-path: {DATA_PATHS[dataset]}")
    check_store_inputs(form, dataset, text=text)


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
