"""Reading a run's model weights: the checkpoints at recorded epochs and the resume state.

Both are safetensors files (never a pickle): RUN/checkpoints/epoch_EEE.safetensors and
RUN/resume/state.safetensors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memdash.analysis.store.errors import RunFormatError


def checkpoint_epochs(run: Path, epochs_completed: int) -> list[int]:
    """The epochs up to `epochs_completed` with a checkpoint, sorted."""
    files = (run / "checkpoints").glob("epoch_*.safetensors")
    epochs = (int(f.stem.split("_")[1]) for f in files if f.stem.split("_")[1].isdigit())
    return sorted(e for e in epochs if e <= epochs_completed)


def load_checkpoint(run: Path, epoch: int, epochs_completed: int) -> dict[str, Any]:
    """Model weights (a state dict of tensors) after `epoch` epochs."""
    from safetensors.torch import load_file

    file = run / "checkpoints" / f"epoch_{epoch:03d}.safetensors"
    if epoch not in checkpoint_epochs(run, epochs_completed):
        raise RunFormatError(
            run,
            f"checkpoints/{file.name}",
            f"not recorded; recorded epochs: {checkpoint_epochs(run, epochs_completed)}",
        )
    return load_file(str(file))


def check_checkpoint(run: Path, epoch: int) -> None:
    """Read one checkpoint's safetensors header and tensor names (not the weights)."""
    from safetensors import safe_open

    rel = f"checkpoints/epoch_{epoch:03d}.safetensors"
    try:
        with safe_open(str(run / rel), framework="pt") as fh:
            names = list(fh.keys())
    except Exception as err:  # safetensors raises its own error types for bad headers
        raise RunFormatError(run, rel, f"not a readable safetensors file ({err})") from err
    if not names:
        raise RunFormatError(run, rel, "holds no tensors (expected the model weights)")


def load_resume_state(run: Path, epochs_completed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors, metadata) of the state saved after epoch `epochs_completed`."""
    from safetensors import safe_open

    file = run / "resume" / "state.safetensors"
    if not file.is_file():
        raise RunFormatError(run, "resume/state.safetensors", "missing; cannot resume")
    with safe_open(str(file), framework="pt") as fh:
        meta = json.loads(fh.metadata()["memdash"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    if meta.get("epoch") != epochs_completed:
        raise RunFormatError(
            run,
            "resume/state.safetensors",
            f"holds epoch {meta.get('epoch')}, run.json says {epochs_completed}",
        )
    return tensors, meta
