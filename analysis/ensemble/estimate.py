"""`memdash estimate`: train many models on random subsets, store what they got right, derive
the held-out scores of `memdash.analysis.measures.heldout`.

The unit of work is a *batch* of models of one subset ratio (trained at once by
`memdash.analysis.ensemble.batched`). A batch job reads the run's inputs and labels, trains,
and writes its own two files, so jobs can run in any process or on any Ray
node, and in any order:

    RUN/heldout/spec.json                 what is being estimated (never changes)
    RUN/heldout/rR_bBBBB.subsets.npy      uint8 (k, ceil(T/8)): np.packbits of each model's subset
    RUN/heldout/rR_bBBBB.conf.npy         float16 (k, N): each model's logit-scaled confidence
                                          of each example's label, phi = log(p / (1 - p))
    RUN/heldout/rR_bBBBB.correct.npy      uint8 (k, ceil(N/8)): np.packbits of its correctness

(R = the ratio's index, BBBB = the batch's index; the correctness file is
written last, so a batch is complete when it exists beside its confidences.)
The confidences come from one query per example (the data has no augmentation)
and feed the membership-inference attack of `measures.membership`. A killed estimate
resumes by running only the missing batches; asking for more models adds
batches. Every model's seed depends only on (seed, ratio index, model index)
and every job uses one torch thread, so the results are the same on any
backend and with any number of workers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memdash.analysis.measures.dp_audit import DELTA
from memdash.analysis.measures.heldout import c_scores, influence, mem_scores, top_influences
from memdash.analysis.record.cluster import check_backend, ray_completed, ray_session
from memdash.analysis.record.config import RunConfig
from memdash.analysis.record.privacy import DPConfig
from memdash.analysis.store import Run, RunFormatError, write_json, write_lock, write_npy

# torch, the ensembles' training and the privacy audit (scipy.stats) are imported in the
# functions that train or derive: reading a stored estimate (`stored_spec`, `load_batches`,
# `load_confidences`, the dashboard's example detail) needs none of them

_BATCH = re.compile(r"^r(\d+)_b(\d{4,})\.correct\.npy$")


@dataclass(frozen=True)
class EstimateSpec:
    """What an estimate trains: it is fixed once stored, except that `models` may grow."""

    ratios: tuple[float, ...] = (0.7,)  # subset ratios; the first gives mem_score, all the C-score
    models: int = 256  # models per ratio
    models_per_batch: int = 16  # models trained at once: the unit of work
    seed: int = 0  # every model's initialization, subset and order derive from it
    dp: DPConfig | None = None  # DP-SGD's options (ensemble/dp_batched.py); None: plain
    budget: tuple[int, ...] = ()  # reference-model counts of the attack sweep; (): 1, 2, 4, ...

    def __post_init__(self) -> None:
        if not self.ratios or any(not 0 < r < 1 for r in self.ratios):
            raise ValueError(f"subset ratios must lie in (0, 1), got {self.ratios}")
        if self.models < 2 or self.models_per_batch < 1:
            raise ValueError("an estimate needs models >= 2 and models_per_batch >= 1")

    def batches(self) -> list[tuple[int, int, int, int]]:
        """(ratio index, batch index, first model, end model) of every batch."""
        out = []
        for ri in range(len(self.ratios)):
            for b, lo in enumerate(range(0, self.models, self.models_per_batch)):
                out.append((ri, b, lo, min(lo + self.models_per_batch, self.models)))
        return out

    def fixed(self) -> dict[str, Any]:
        return {
            "ratios": list(self.ratios),
            "models_per_batch": self.models_per_batch,
            "seed": self.seed,
        }


def _folder(run: Run) -> Path:
    return run.path / "heldout"


def _training_key(run: Run) -> str:
    """What the models learn from: the run's data and training config, hashed."""
    config = dict(run.config)
    config.pop("record", None)
    config.pop("command", None)
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def prepare_spec(run: Run, spec: EstimateSpec) -> dict[str, Any]:
    """Store the spec, or check it against the stored one (only `models` may change)."""
    from memdash.analysis.ensemble.dp_batched import run_estimate_dp

    file = _folder(run) / "spec.json"
    dp = run_estimate_dp(run, spec.ratios[0], spec.dp)  # None: a plain estimate
    wanted = spec.fixed() | {"training": _training_key(run), "dp": dp}
    if file.is_file():
        stored = json.loads(file.read_text())
        fixed = {k: stored.get(k) for k in wanted}
        if fixed != wanted:
            raise ValueError(
                f"{run.path}/heldout holds an estimate made with {fixed}; this one asks for "
                f"{wanted}. Use the same --ratios, --models-per-batch, --seed, DP, or --overwrite."
            )
    write_json(file, wanted | {"models": spec.models})
    return wanted


def completed(run: Run) -> set[tuple[int, int]]:
    """(ratio index, batch index) of every batch already on disk with its confidences (a
    batch of an estimate made before they were stored is trained again: the same seeds
    give the same models, correctness and subsets)."""
    folder = _folder(run)
    if not folder.is_dir():
        return set()
    found = ((m, f) for f in folder.iterdir() if (m := _BATCH.match(f.name)))
    return {
        (int(m[1]), int(m[2]))
        for m, f in found
        if f.with_name(f.name.replace(".correct.", ".conf.")).is_file()
    }


def run_batch(path: str, ratio_index: int, batch: int, first: int, end: int) -> None:
    """Train one batch of models and write its files (the job every backend runs)."""
    import torch

    from memdash.analysis.ensemble.text_estimate import train_text_batch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same arithmetic on every backend and worker count
    try:
        train = train_text_batch if Run.open(path).is_text else _train_batch  # a text run's LMs
        train(path, ratio_index, batch, first, end)
    finally:
        torch.set_num_threads(threads)


def _train_batch(path: str, ratio_index: int, batch: int, first: int, end: int) -> None:
    import torch

    from memdash.analysis.ensemble.batched import ensemble_outputs, model_seed, subset_mask
    from memdash.analysis.ensemble.dp_batched import fit_ensemble

    run = Run.open(path)
    spec = json.loads((_folder(run) / "spec.json").read_text())
    config = RunConfig.from_dict(run.config)
    examples = run.examples(["split", "label"])
    train_ids = np.flatnonzero((examples["split"] == "train").to_numpy())
    ratio = spec["ratios"][ratio_index]
    seeds = [model_seed(spec["seed"], ratio_index, k) for k in range(first, end)]
    subsets = np.stack([subset_mask(s, len(train_ids), ratio) for s in seeds])
    inputs = torch.tensor(np.asarray(run.inputs(), dtype=np.float32))
    labels = torch.tensor(examples["label"].to_numpy(np.int64))
    ens = fit_ensemble(config, inputs, labels, train_ids, seeds, subsets, dp=spec.get("dp"))
    correct, confidence = ensemble_outputs(ens, inputs, labels)
    stem = _folder(run) / f"r{ratio_index}_b{batch:04d}"
    write_npy(stem.with_name(stem.name + ".subsets.npy"), np.packbits(subsets, axis=1))
    # float16 holds |phi| up to 65504 (a probability within e^-65504 of 0 or 1): clip there
    phi = np.clip(confidence, -6e4, 6e4).astype(np.float16)
    write_npy(stem.with_name(stem.name + ".conf.npy"), phi)
    write_npy(stem.with_name(stem.name + ".correct.npy"), np.packbits(correct, axis=1))


def _local(jobs: list[tuple], workers: int, done: Callable[[], None]) -> None:
    """Run jobs here (one worker) or in `workers` fresh Python processes at a time.

    Each process runs ``python -m analysis.estimate PATH R B FIRST END``: plain arguments in,
    files out, nothing pickled.
    """
    if workers == 1:
        for job in jobs:
            run_batch(*job)
            done()
        return

    def launch(job: tuple) -> None:
        command = [sys.executable, "-m", "memdash.analysis.ensemble.estimate", *map(str, job)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"model batch {job[1:3]} failed:\n{result.stderr[-2000:]}")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in as_completed([pool.submit(launch, job) for job in jobs]):
            future.result()
            done()


def _ray(jobs: list[tuple], address: str | None, workers: int, done: Callable[[], None]) -> None:
    with ray_session(address, workers) as ray:
        for _ in ray_completed(ray, run_batch, jobs):
            done()


def estimate(
    path: str | Path,
    spec: EstimateSpec,
    *,
    backend: str = "local",
    address: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Train the missing batches of an estimate, then derive and cache its scores.

    Parameters
    ----------
    backend : ``local`` (processes on this machine) or ``ray`` (a Ray cluster at
        `address`, or a local one started for the purpose)
    workers : local processes or local Ray CPUs (default: all cores)
    progress : called with (batches done, batches in all)

    Returns
    -------
    the derived tables (``heldout.parquet``, ``influence.parquet``)
    """
    check_backend(backend)
    run = Run.open(path)
    run.check_parts()  # a missing, damaged or linked-out part is named before any training
    with write_lock(path, "memdash estimate"):
        return _estimate(run, spec, backend, address, workers, progress)


def _estimate(
    run: Run,
    spec: EstimateSpec,
    backend: str,
    address: str | None,
    workers: int | None,
    progress: Callable[[int, int], None] | None,
) -> dict[str, pd.DataFrame]:
    """`estimate` under the run's write lock."""
    from memdash.analysis.ensemble.dp_batched import dp_params
    from memdash.analysis.ensemble.text_estimate import derive_text, text_completed

    stored = prepare_spec(run, spec)
    have = text_completed(run) if run.is_text else completed(run)
    jobs = [
        (str(run.path), ri, b, lo, hi) for ri, b, lo, hi in spec.batches() if (ri, b) not in have
    ]
    total, count = len(spec.batches()), [len(spec.batches()) - len(jobs)]
    workers = workers or os.cpu_count() or 1

    def done() -> None:
        count[0] += 1
        if progress is not None:
            progress(count[0], total)

    if progress is not None:
        progress(count[0], total)
    if jobs:
        if backend == "local":
            _local(jobs, workers, done)
        else:
            _ray(jobs, address, workers, done)
    if run.is_text:  # counterfactual memorization and the attacks on log-likelihoods
        tables, privacy = derive_text(run, spec.batches(), seed=spec.seed, budget=spec.budget)
    else:
        tables, privacy = derive(run, spec)
    trained = [spec.fixed(), spec.models, _training_key(run)] + [stored["dp"]] * bool(spec.dp)
    key = hashlib.sha256(json.dumps(trained).encode())
    params = spec.fixed() | {"models": spec.models} | dp_params(stored["dp"])
    entry = {"key": key.hexdigest()[:16], "params": params, "membership": privacy}
    run.replace_derived("heldout", tables, entry)
    return tables


def load_batches(run: Run, spec: EstimateSpec, ratio_index: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `spec.models` models of a ratio: trained (K, N) and correct (K, N), bool."""
    examples = run.examples(["split"])
    n = len(examples)
    train_ids = np.flatnonzero((examples["split"] == "train").to_numpy())
    trained, correct = [], []
    for ri, b, lo, hi in spec.batches():
        if ri != ratio_index:
            continue
        stem = _folder(run) / f"r{ri}_b{b:04d}"
        k = hi - lo
        sub = np.unpackbits(run.heldout_array(f"{stem.name}.subsets.npy"), axis=1)
        cor = np.unpackbits(run.heldout_array(f"{stem.name}.correct.npy"), axis=1)
        if len(sub) != k or len(cor) != k:
            raise RunFormatError(run.path, f"heldout/{stem.name}.*.npy", f"expected {k} models")
        t = np.zeros((k, n), bool)
        t[:, train_ids] = sub[:, : len(train_ids)].astype(bool)
        trained.append(t)
        correct.append(cor[:, :n].astype(bool))
    return np.concatenate(trained), np.concatenate(correct)


def stored_spec(run: Run) -> EstimateSpec:
    """The spec of the estimate stored in RUN/heldout (RunFormatError if there is none)."""
    file = _folder(run) / "spec.json"
    try:
        stored = json.loads(file.read_text())
        return EstimateSpec(
            ratios=tuple(stored["ratios"]),
            models=int(stored["models"]),
            models_per_batch=int(stored["models_per_batch"]),
            seed=int(stored["seed"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RunFormatError(
            run.path, "heldout/spec.json", f"no readable estimate ({err})"
        ) from None


def load_confidences(run: Run, spec: EstimateSpec, ratio_index: int) -> np.ndarray:
    """The first `spec.models` models' confidences of a ratio: float32 (K, N)."""
    n = len(run.examples(["split"]))
    parts = []
    for ri, b, lo, hi in spec.batches():
        if ri != ratio_index:
            continue
        name = f"r{ri}_b{b:04d}.conf.npy"
        part = run.heldout_array(name)
        if part.shape != (hi - lo, n) or part.dtype != np.float16:
            raise RunFormatError(
                run.path,
                f"heldout/{name}",
                f"expected float16 ({hi - lo}, {n}), got {part.dtype} {part.shape}",
            )
        parts.append(part.astype(np.float32))
    return np.concatenate(parts)


def derive(run: Run, spec: EstimateSpec) -> tuple[dict[str, pd.DataFrame], dict]:
    """heldout.parquet (per example), influence.parquet (top 5 per test example), and the
    attacks' (LiRA's and RMIA's) membership.parquet (per example, with the Gaussian check),
    membership_roc.parquet (per attack) and membership_budget.parquet (power against the
    number of reference models), all from the first ratio's models; plus the attacks'
    summary (AUC, TPR at low FPR, empirical epsilon, the Gaussian check's shares)."""
    from memdash.analysis.measures.audit import privacy_audit

    examples = run.examples(["split"])
    split = examples["split"].to_numpy()
    heldout_by_ratio = {}
    for ri, ratio in enumerate(spec.ratios):
        trained, correct = load_batches(run, spec, ri)
        scores = mem_scores(correct, trained)
        heldout_by_ratio[ratio] = scores["heldout_accuracy"].to_numpy()
        if ri == 0:
            table = scores
            test = split == "test"
            infl = influence(correct[:, test], trained[:, split == "train"])
            top = top_influences(infl, np.flatnonzero(split == "train"), np.flatnonzero(test))
            audit, summary = privacy_audit(
                load_confidences(run, spec, 0),
                trained,
                delta=audit_delta(run),
                seed=spec.seed,
                budget=spec.budget or None,
            )
    table.insert(0, "example_id", np.arange(len(examples), dtype=np.int64))
    if len(spec.ratios) > 1:
        table = table.join(c_scores(heldout_by_ratio))
    return {"heldout.parquet": table, "influence.parquet": top} | audit, summary


def audit_delta(run: Run) -> float:
    """The delta the attacks' empirical epsilon is for: the estimate's DP delta
    (heldout/spec.json's ``dp``), else the run's (run.json's ``config.train.dp``), else
    `measures.dp_audit.DELTA` for models trained without DP. Read defensively: a part that
    is missing or malformed means no DP."""
    try:
        spec = json.loads((_folder(run) / "spec.json").read_text())
    except (OSError, ValueError):
        spec = {}
    train = run.config.get("train") if isinstance(run.config, dict) else None
    train = train if isinstance(train, dict) else {}
    for dp in (spec.get("dp") if isinstance(spec, dict) else None, train.get("dp")):
        value = dp.get("delta") if isinstance(dp, dict) else None
        if isinstance(value, int | float) and 0 < value < 1:
            return float(value)
    return DELTA


if __name__ == "__main__":  # one job of the local backend: PATH R B FIRST END
    run_batch(sys.argv[1], *(int(a) for a in sys.argv[2:6]))
