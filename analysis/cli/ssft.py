"""`memdash ssft`: second-split forgetting time (Maini et al. 2022) of every training example
of a run, from two models trained on its two halves in turn (`ensemble/ssft.py`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from memdash.analysis.cli._common import errors_reported
from memdash.analysis.cli.basics import console, fail, refuse
from memdash.analysis.cli.options import SEED, field
from memdash.analysis.cli.specs import option

EPOCHS = field("train.epochs")


def ssft(
    run: Path = typer.Argument(..., help="The run whose training examples get an SSFT."),
    epochs: int = option(None, EPOCHS, "First-phase epochs on each half (default: the run's)."),
    second_epochs: int = option(
        None, EPOCHS, "Second-phase epochs on the other half (default: --epochs)."
    ),
    seed: int = option(0, SEED, "The seed of the halves, the models' initialization and order."),
    overwrite: bool = typer.Option(False, help="Compute it again over a stored one."),
) -> None:
    """Second-split forgetting time (Maini et al. 2022): train on one half of the training
    set, then on the other, and record when each example of the first half is forgotten for
    good; both ways round, so every training example gets one. Lower = forgotten sooner
    (mislabeled, rare). Trains on the cpu, as `memdash estimate`. Writes
    RUN/derived/ssft.parquet."""
    from memdash.analysis.cli.footprint import unfit
    from memdash.analysis.ensemble.ssft import FILE, STEP, SSFTSpec, check_ssft, write_ssft
    from memdash.analysis.store import Run, RunFormatError

    with errors_reported():
        opened = Run.open(run)
    try:
        config = check_ssft(opened)
    except RunFormatError as err:  # a damaged part: an error, not a refusal of the options
        fail(str(err))
    except ValueError as err:
        refuse(str(err))
    first = epochs or config.train.epochs
    spec = SSFTSpec(epochs=first, second_epochs=second_epochs or first, seed=seed)
    stored = opened.derived_manifest().get(STEP)
    if isinstance(stored, dict) and not overwrite:
        refuse(
            f"{run} already holds derived/{FILE} (made with {stored.get('params')}); "
            "--overwrite computes it again"
        )
    problem = unfit(replace(config, train=replace(config.train, device="cpu")), models=2)
    if problem is not None:
        refuse(problem)
    if config.train.dp is not None:
        console.print(f"note: {run} trained with DP-SGD; SSFT's models train without it")
    kept = "the run and its other derived results are unchanged"
    with errors_reported(written=run, kept=kept), console.status("ssft") as status:
        table, entry = write_ssft(run, spec, progress=status.update)
    console.print(_summary(opened, table, entry) + f"; wrote {run}/derived/{FILE}", soft_wrap=True)


def _summary(run, table, entry: dict) -> str:
    """What was computed, in one line: sizes, epochs, time, and the SSFT of flipped examples
    against the others."""
    params = entry["params"]
    a, b = params["half_sizes"]
    never = int((table["ssft"] > params["second_epochs"]).sum())
    not_learned = int((~table["learned_first"]).sum())
    text = (
        f"SSFT of {len(table)} training examples (halves of {a} and {b}; {params['epochs']} "
        f"epochs, then {params['second_epochs']} on the other half) in {entry['seconds']:.1f} s; "
        f"never forgotten {never}, not learned by the first phase {not_learned}"
    )
    examples = run.examples()
    if "is_noisy" in examples and examples["is_noisy"].any():
        noisy = examples["is_noisy"].to_numpy()[table["example_id"].to_numpy()]
        flipped, others = table["ssft"][noisy].median(), table["ssft"][~noisy].median()
        text += f"; median SSFT flipped {flipped:g}, others {others:g}"
    return text
