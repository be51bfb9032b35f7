"""What a policy is worth, estimated off-policy from logged decisions (spec: contextual.md, "Results").

Logs: for each unit its design row, the variant ``a_i`` served, the outcome ``r_i`` and the propensity
``mu_i`` with which the logging policy served it. A target policy is given by its probabilities
``pi(k | x_i)`` (n x K); the outcome model by its predictions ``m(x_i, k)`` (n x K). With importance
weights ``w_i = pi(a_i | x_i) / mu_i``:

- IPW (inverse propensity weighting): ``mean(w_i r_i)``; unbiased, high variance.
- SNIPW (self-normalised): ``sum(w_i r_i) / sum(w_i)``; a little biased, much steadier.
- DR (doubly robust): ``mean(sum_k pi(k | x_i) m(x_i, k) + w_i (r_i - m(x_i, a_i)))``; unbiased when
  either the propensities or the outcome model are right, and the tightest of the three when the model
  is good.
- Effective sample size ``(sum w)^2 / sum w^2``: how many units the estimate is worth.
- 95% intervals: percentile bootstrap over units (the outcome model held fixed), the generator passed in.

``compare`` estimates the personalized policy, the best single variant (the constant policy with the best
DR estimate) and a uniform split on the same logs and the same bootstrap resamples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_BOOTSTRAP: Final = 500
_CHUNK_CELLS: Final = 4_000_000


@dataclass(frozen=True)
class Logs:
    """Logged decisions: served variant index, outcome and propensity per unit; ``outcome_model`` n x K."""

    actions: IntArray
    rewards: FloatArray
    propensities: FloatArray
    outcome_model: FloatArray

    def __post_init__(self) -> None:
        n = self.actions.shape[0]
        if self.rewards.shape != (n,) or self.propensities.shape != (n,) or self.outcome_model.shape[0] != n:
            raise ValueError("actions, rewards, propensities and outcome model disagree on the number of units")
        if n == 0:
            raise ValueError("no logged decisions")
        if np.any(~(self.propensities > 0.0)) or np.any(self.propensities > 1.0 + 1e-12):
            raise ValueError("propensities must lie in (0, 1]")
        if np.any(self.actions < 0) or np.any(self.actions >= self.outcome_model.shape[1]):
            raise ValueError("an action is outside the outcome model's variants")


@dataclass(frozen=True)
class PolicyValue:
    """Estimates of one policy's value, each with its bootstrap interval."""

    name: str
    ipw: float
    snipw: float
    dr: float
    ipw_interval: tuple[float, float]
    snipw_interval: tuple[float, float]
    dr_interval: tuple[float, float]
    effective_sample_size: float
    units: int


@dataclass(frozen=True)
class PolicyComparison:
    personalized: PolicyValue
    best_single: PolicyValue
    best_single_variant: int
    uniform: PolicyValue


def _terms(target: FloatArray, logs: Logs) -> tuple[FloatArray, FloatArray, FloatArray]:
    if target.shape != logs.outcome_model.shape:
        raise ValueError(f"target probabilities {target.shape} and outcome model {logs.outcome_model.shape} differ")
    rows = np.arange(logs.actions.size)
    weights = target[rows, logs.actions] / logs.propensities
    direct = np.sum(target * logs.outcome_model, axis=1)
    dr = direct + weights * (logs.rewards - logs.outcome_model[rows, logs.actions])
    return weights, weights * logs.rewards, dr


def _bootstrap_counts(n: int, n_bootstrap: int, rng: np.random.Generator) -> list[FloatArray]:
    """Resample counts (chunks of rows, each row one bootstrap resample of the n units)."""
    per_chunk = max(1, _CHUNK_CELLS // n)
    chunks: list[FloatArray] = []
    remaining = n_bootstrap
    uniform = np.full(n, 1.0 / n)
    while remaining > 0:
        size = min(per_chunk, remaining)
        chunks.append(rng.multinomial(n, uniform, size=size).astype(np.float64))
        remaining -= size
    return chunks


def _interval(samples: FloatArray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


def _estimate(name: str, target: FloatArray, logs: Logs, counts: list[FloatArray], level: float) -> PolicyValue:
    weights, weighted, dr = _terms(target, logs)
    n = logs.actions.size
    total_weight = float(weights.sum())
    boot_ipw, boot_snipw, boot_dr = [], [], []
    for chunk in counts:
        boot_ipw.append(chunk @ weighted / n)
        boot_dr.append(chunk @ dr / n)
        denominator = chunk @ weights
        boot_snipw.append(
            np.divide(chunk @ weighted, denominator, out=np.zeros_like(denominator), where=denominator > 0)
        )
    ess = total_weight**2 / float(weights @ weights) if total_weight > 0 else 0.0
    return PolicyValue(
        name=name,
        ipw=float(weighted.mean()),
        snipw=float(weighted.sum() / total_weight) if total_weight > 0 else 0.0,
        dr=float(dr.mean()),
        ipw_interval=_interval(np.concatenate(boot_ipw), level),
        snipw_interval=_interval(np.concatenate(boot_snipw), level),
        dr_interval=_interval(np.concatenate(boot_dr), level),
        effective_sample_size=ess,
        units=n,
    )


def evaluate(
    name: str,
    target: FloatArray,
    logs: Logs,
    rng: np.random.Generator,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    level: float = 0.95,
) -> PolicyValue:
    """IPW, SNIPW and DR estimates of ``target`` (n x K probabilities) with bootstrap intervals."""
    return _estimate(name, target, logs, _bootstrap_counts(logs.actions.size, n_bootstrap, rng), level)


def compare(
    personalized: FloatArray,
    logs: Logs,
    rng: np.random.Generator,
    higher_is_better: bool = True,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    level: float = 0.95,
) -> PolicyComparison:
    """The personalized policy against the best single variant and a uniform split (same resamples)."""
    n, k = logs.outcome_model.shape
    counts = _bootstrap_counts(n, n_bootstrap, rng)
    singles = [np.zeros((n, k)) for _ in range(k)]
    for variant, matrix in enumerate(singles):
        matrix[:, variant] = 1.0
    single_dr = [float(_terms(matrix, logs)[2].mean()) for matrix in singles]
    best = int(np.argmax(single_dr) if higher_is_better else np.argmin(single_dr))
    return PolicyComparison(
        personalized=_estimate("personalized", personalized, logs, counts, level),
        best_single=_estimate(f"best single variant ({best})", singles[best], logs, counts, level),
        best_single_variant=best,
        uniform=_estimate("uniform split", np.full((n, k), 1.0 / k), logs, counts, level),
    )
