"""DP-SGD's options and its accountant, for `memdash train` and `memdash estimate`: the
config (`DPConfig`, a field of `record.config.TrainConfig`), the ranges and combinations it
accepts, Poisson sampling's rate and steps, and the RDP accountant's epsilon (Opacus's).

The epsilon of DP-SGD after s steps depends only on the noise multiplier sigma, the sample
rate q and s (the sampled Gaussian mechanism's Renyi DP, converted to (epsilon, delta)), so it
is recomputed wherever it is needed and never stored as accountant state. Opacus is imported
only when an epsilon or a noise is computed (``pip install 'memdash[dp]'``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from memdash.analysis.record.ranges import Range, reals

# DP-SGD's number fields (record.config.RANGES holds them as "dp.<field>"); delta is also
# refused at >= 1 / training examples when the data are known (record/dp.py)
DP_RANGES: dict[str, Range] = {
    "dp.epsilon": reals(0, None, open_low=True, optional=True),
    "dp.delta": reals(0, 1, open_low=True, open_high=True),
    "dp.clip": reals(0, None, open_low=True),
    "dp.noise_multiplier": reals(0, None, optional=True),
}


@dataclass(frozen=True)
class DPConfig:
    """DP-SGD (Abadi et al. 2016) with Opacus: each example's gradient clipped, noise added."""

    epsilon: float | None = None  # the target epsilon at the last epoch (None: noise given)
    delta: float = 1e-5  # the target delta, below 1 / training examples
    clip: float = 1.0  # C: each example's gradient is clipped to this L2 norm
    noise_multiplier: float | None = None  # sigma (noise std sigma * C); from epsilon if None


def require_opacus():
    try:
        import opacus
    except ImportError:  # pragma: no cover - the dp extra is installed by the tests
        raise ValueError(
            "DP-SGD needs Opacus: pip install 'memdash[dp]' (or pip install opacus)"
        ) from None
    return opacus


def check_dp(dp: DPConfig, *, text: bool, grad_accounting: bool | None) -> None:
    """Raise ValueError (one line) when DP options are out of range (`DP_RANGES`) or cannot
    go with a run's others: a text run (`text`), gradient accounting asked for."""
    for key, accepted in DP_RANGES.items():
        value = getattr(dp, key.partition(".")[2])
        problem = accepted.problem(value)
        if problem is not None:
            raise ValueError(f"{key} must be {problem}, got {value!r}")
    if dp.epsilon is None and dp.noise_multiplier is None:
        raise ValueError("DP-SGD needs a target epsilon (--dp-epsilon) or a noise (--dp-noise)")
    if text:
        raise ValueError(
            "--dp-epsilon/--dp-noise: DP-SGD is for classifiers; text runs cannot train with it"
        )
    if grad_accounting:
        raise ValueError(
            "--grad-accounting cannot run under DP-SGD: Opacus's per-example gradients take "
            "one backward pass per forward, the accounting two; drop --grad-accounting"
        )


def sampling(n: int, batch_size: int) -> tuple[float, int]:
    """(q, steps per epoch) of Poisson sampling of `n` examples with batches of
    `batch_size` on average: q = min(1, batch_size / n), ceil(n / batch_size) steps."""
    if n < 1 or batch_size < 1:
        raise ValueError(f"sampling needs n >= 1 and batch_size >= 1, got {n}, {batch_size}")
    return min(1.0, batch_size / n), math.ceil(n / batch_size)


def epsilon_spent(noise: float, sample_rate: float, steps: int, delta: float) -> float | None:
    """The RDP accountant's epsilon at `delta` after `steps` steps of the sampled Gaussian
    mechanism (noise multiplier, sample rate); 0 before any step, None (no bound) without
    noise."""
    if steps == 0:
        return 0.0
    if noise <= 0:
        return None
    from opacus.accountants import RDPAccountant

    require_opacus()
    accountant = RDPAccountant()
    accountant.history = [(float(noise), float(sample_rate), int(steps))]
    with warnings.catch_warnings():  # "optimal order is the largest alpha": a tiny epsilon
        warnings.simplefilter("ignore", UserWarning)
        value = accountant.get_epsilon(delta=delta)
    return float(value) if math.isfinite(value) else None


def noise_for(epsilon: float, delta: float, sample_rate: float, steps: int) -> float:
    """The noise multiplier whose RDP epsilon after `steps` steps at `sample_rate` is at
    most `epsilon` at `delta` (Opacus's `get_noise_multiplier`, within 0.01 of it)."""
    require_opacus()
    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():  # as in epsilon_spent
        warnings.simplefilter("ignore", UserWarning)
        try:
            sigma = get_noise_multiplier(
                target_epsilon=epsilon,
                target_delta=delta,
                sample_rate=sample_rate,
                steps=steps,
                accountant="rdp",
            )
        except ValueError as err:
            raise ValueError(f"--dp-epsilon {epsilon:g} cannot be reached: {err}") from None
    return float(sigma)
