"""Membership inference (issue 15): the attack's cost, and what storing confidences costs an
estimate, each measured side by side in one process.

1. The attack. `memdash.analysis.measures.membership.membership_tables` (online, offline and global
   LiRA, leave one model out, exact ROCs and per-example rates) over the sample run's
   256 models x 2,327 examples (synthetic confidences of that shape when the sample
   estimate is missing), against one pass over the confidence array (float16 to float64
   and the per-example sum over the models that trained on each example). Goals: <= 2 s,
   and <= 3 x the pass.
2. An estimate's model batch. The job `memdash estimate` runs (train the batch, then one
   forward pass for what it stores) with confidences (correctness and phi from the same
   logits, `ensemble_outputs`) against the same job storing correctness only (an argmax),
   alternating over the rounds on the same models; medians. Goal: <= 1.05 x.
3. RMIA and the attack budget (issue 25). Online and offline RMIA (`measures.rmia`, leave one
   model out; offline including the choice of its a) against online LiRA's scores on the
   same array, as bare scores and as `membership_tables` with that one attack (ROC, rates);
   goal: within 2 x. The three are timed in turn in each round (medians of 7 rounds), so a
   change in the shared machine's load falls on all three alike. Then the whole
   reference-count sweep (`measures.attack_budget`, its defaults: 16 targets, 5 draws, 1, 2,
   4, ... 240 reference models, four attacks); goal: <= 60 s.

Run: .venv/bin/python benchmarks/membership.py [--models 8] [--epochs 60] [--rounds 3]
     [--part attack|batch|rmia|all]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from analytics import timed  # the benchmarks' timer: median of 5 after a warm-up
from heldout import digits_models  # the estimate workload the held-out benchmark times

from memdash.analysis.ensemble.batched import ensemble_outputs, fit_batched
from memdash.analysis.ensemble.estimate import load_batches, load_confidences, stored_spec
from memdash.analysis.measures.attack_budget import attack_budget
from memdash.analysis.measures.membership import attack_scores, membership_tables, shadow_fits
from memdash.analysis.measures.rmia import log_prob_label, rmia_scores
from memdash.analysis.store import Run, RunFormatError

SAMPLE = Path(__file__).resolve().parents[1] / "sample_runs" / "digits_mlp_noise20"


def confidences() -> tuple[np.ndarray, np.ndarray, str]:
    """The sample estimate's phi (float16, as stored) and membership, or synthetic ones."""
    try:
        run = Run.open(SAMPLE)
        spec = stored_spec(run)
        phi = load_confidences(run, spec, 0).astype(np.float16)
        return phi, load_batches(run, spec, 0)[0], "the sample run's estimate"
    except (RunFormatError, OSError) as err:
        print(f"(no sample estimate: {err}; synthetic confidences)")
        rng = np.random.default_rng(0)
        member = rng.random((256, 2327)) < 0.7 * 0.8
        phi = (rng.normal(size=member.shape) + 2 * member).astype(np.float16)
        return phi, member, "synthetic confidences"


def one_pass(phi: np.ndarray, member: np.ndarray) -> np.ndarray:
    return np.where(member, phi.astype(np.float64), 0.0).sum(0)


def attack() -> None:
    phi, member, what = confidences()
    k, n = phi.shape
    attack_s = timed(lambda: membership_tables(phi.astype(np.float32), member))
    pass_s = timed(lambda: one_pass(phi, member))
    held = member.sum(0)
    pairs = k * int(((held >= 3) & (held <= k - 3)).sum())  # the (target, example) pairs
    pooled = np.random.default_rng(0).normal(size=pairs)
    sort_s = timed(lambda: np.argsort(pooled))
    print(f"attack on {what}: {k} models x {n} examples")
    print(f"  membership_tables   {attack_s:.3f} s   (goal <= 2 s)")
    print(f"  one pass over phi   {pass_s:.3f} s")
    print(f"  ratio               {attack_s / pass_s:.1f} x   (goal <= 3 x)")
    print(
        f"  for scale: one argsort of {len(pooled):,} scores takes {sort_s:.3f} s; the exact "
        "ROCs need one per attack"
    )


def batch_job(config, x, y, train_ids, seeds, subsets, *, with_confidence: bool) -> float:
    torch.manual_seed(0)
    start = time.perf_counter()
    ens = fit_batched(config, x, y, train_ids, seeds, subsets)
    if with_confidence:
        correct, phi = ensemble_outputs(ens, x, y)
        np.packbits(correct, axis=1), phi.astype(np.float16)
    else:
        with torch.no_grad():
            correct = (ens.forward(x, shared=True).argmax(-1) == y).numpy()
        np.packbits(correct, axis=1)
    return time.perf_counter() - start


def estimate_batch(models: int, epochs: int, rounds: int) -> None:
    config, _, x, y, train_ids, seeds, subsets = digits_models(epochs, models)
    torch.set_num_threads(1)  # as every estimate job runs
    times = {True: [], False: []}
    for _ in range(rounds):
        for flag in (False, True):
            times[flag].append(
                batch_job(config, x, y, train_ids, seeds, subsets, with_confidence=flag)
            )
    plain, stored = statistics.median(times[False]), statistics.median(times[True])
    print(f"estimate batch: {models} digits MLPs x {epochs} epochs, 1 thread, {rounds} rounds")
    print(f"  correctness only          {plain:.2f} s")
    print(f"  with confidences          {stored:.2f} s")
    print(f"  ratio                     {stored / plain:.3f} x   (goal <= 1.05 x)")


def in_turn(fns: dict, rounds: int = 7) -> dict[str, float]:
    """Median seconds of each function over `rounds` rounds that call them all in turn, after
    one warm-up call each."""
    for fn in fns.values():
        fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


def rmia() -> None:
    phi16, member, what = confidences()
    phi = phi16.astype(np.float32)
    k, n = phi.shape

    def lira_online() -> np.ndarray:
        return attack_scores(phi, shadow_fits(phi, member))["online"]

    def rmia_online() -> np.ndarray:
        return rmia_scores(log_prob_label(phi), member, offline=False)

    def rmia_offline() -> np.ndarray:
        return rmia_scores(log_prob_label(phi), member, offline=True)  # a chosen too

    bare = in_turn({"lira": lira_online, "online": rmia_online, "offline": rmia_offline})
    tables = in_turn(
        {
            name: lambda a=attack: membership_tables(phi, member, attacks=(a,))
            for name, attack in [
                ("lira", "online"),
                ("online", "rmia"),
                ("offline", "rmia_offline"),
            ]
        }
    )
    print(f"RMIA on {what}: {k} models x {n} examples, leave one model out (medians of 7 rounds)")
    for label, times in (("scores only", bare), ("membership_tables, one attack", tables)):
        print(f"  {label}:")
        print(f"    LiRA online        {times['lira']:.3f} s")
        for side in ("online", "offline"):
            ratio = times[side] / times["lira"]
            print(
                f"    RMIA {side:<8}      {times[side]:.3f} s   {ratio:.2f} x LiRA   (goal <= 2 x)"
            )
    start = time.perf_counter()
    table, params = attack_budget(phi, member)
    sweep = time.perf_counter() - start
    points = sorted(table["models"].unique())
    print(
        f"  reference-count sweep: {len(table)} (attack, models, draw) rows, models "
        f"{points[0]}..{points[-1]}, {params['draws']} draws, {params['targets']} targets: "
        f"{sweep:.1f} s (goal <= 60 s), {sweep / bare['lira']:.0f} x one LiRA online"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part", choices=("attack", "batch", "rmia", "all"), default="all")
    args = parser.parse_args()
    if args.part in ("attack", "all"):
        attack()
    if args.part in ("batch", "all"):
        estimate_batch(args.models, args.epochs, args.rounds)
    if args.part in ("rmia", "all"):
        rmia()


if __name__ == "__main__":
    main()
