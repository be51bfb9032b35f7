"""Sample-ratio mismatch (SRM) when the traffic split changes between periods (engine.md, "Health").

A bandit publishes new weights every hour, so the units a variant should have are not a fixed share
of all units: with ``N_p`` units in period ``p`` and ``s_kp`` the share published for variant ``k``
then, ``E_k = sum_p N_p s_kp``. Given the periods' sizes, each period's counts are multinomial with
the published shares, so ``d = O - E`` has covariance ``Sigma = diag(E) - sum_p N_p s_p s_p^T``.

- ``chi_square = d^T Sigma^+ d`` with ``rank(Sigma)`` (K - 1 when every variant had traffic) degrees
  of freedom: the chi-square test. With one period it is Pearson's statistic exactly; with changing
  shares Pearson's ``sum (O - E)^2 / E`` would overstate the variance and lose power.
- ``fixed_p_value``: its p-value for ONE look. Checked at every hourly update for two weeks it false-
  alarms far more often than its level (about 2% of healthy runs at 0.001, measured), so the engine's
  warning reads the look-corrected p-value below.
- ``sequential_p_value``: ``1 / Lambda``, ``Lambda`` a normal-mixture likelihood ratio (mixture SPRT,
  the same family as the winner rule's) over a per-unit log-tilt ``theta ~ N(0, tau^2 I)`` of the
  shares: ``Lambda = |I + tau^2 Sigma|^(-1/2) exp(d^T (Sigma + I / tau^2)^(-1) d / 2)``. ``Lambda`` is a
  martingale under no mismatch whatever the shares did, so the running minimum of ``1 / Lambda`` over
  all updates is a p-value valid however often it is looked at (the caller keeps that minimum).

A unit counted for a variant whose published share in its period was 0 cannot happen without a
mismatch: such variants are named in ``impossible`` and both p-values are 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.stats import chi2

DEFAULT_TAU: Final = 0.1
"""Mixture scale: a 10% relative tilt of a variant's share per unit is the typical effect looked for."""
_RANK_TOLERANCE: Final = 1e-9


@dataclass(frozen=True)
class SrmTest:
    """One look of the sample-ratio check."""

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    chi_square: float
    df: int
    fixed_p_value: float | None
    """The chi-square test's p-value for this look alone; None when nothing can be tested (df 0)."""
    sequential_p_value: float | None
    """``min(1, 1 / Lambda)`` at this look; None when nothing can be tested."""
    impossible: tuple[int, ...] = ()
    """Variants with units in a period that published a share of 0 for them."""


def srm_test(
    counts: Sequence[Sequence[int]], shares: Sequence[Sequence[float]], *, tau: float = DEFAULT_TAU
) -> SrmTest:
    """The check over periods: ``counts[p][k]`` units of variant ``k`` in period ``p``, ``shares[p][k]``
    the share published for it then (each row summing to 1)."""
    if len(counts) != len(shares):
        raise ValueError("counts and shares need one row per period")
    if not (math.isfinite(tau) and tau > 0.0):
        raise ValueError("tau must be a positive number")
    if not counts:
        return SrmTest((), (), 0.0, 0, None, None)
    observed_by_period = np.asarray(counts, dtype=np.float64)
    share_rows = np.asarray(shares, dtype=np.float64)
    if observed_by_period.shape != share_rows.shape or observed_by_period.ndim != 2:
        raise ValueError("counts and shares must have the same number of variants in every period")
    if np.any(observed_by_period < 0) or np.any(share_rows < 0) or not np.all(np.isfinite(share_rows)):
        raise ValueError("counts and shares must be non-negative")
    sizes = observed_by_period.sum(axis=1)
    observed = observed_by_period.sum(axis=0)
    expected = sizes @ share_rows
    result = (tuple(int(x) for x in observed), tuple(float(x) for x in expected))
    impossible = tuple(int(k) for k in np.flatnonzero(((observed_by_period > 0) & (share_rows <= 0)).any(axis=0)))
    if impossible:
        return SrmTest(*result, math.inf, observed.size - 1, 0.0, 0.0, impossible)
    sigma = np.diag(expected) - (share_rows * sizes[:, None]).T @ share_rows
    eigenvalues, vectors = np.linalg.eigh((sigma + sigma.T) / 2.0)
    keep = eigenvalues > _RANK_TOLERANCE * max(1.0, float(eigenvalues.max(initial=0.0)))
    df = int(keep.sum())
    if df == 0:
        return SrmTest(*result, 0.0, 0, None, None)
    lam = eigenvalues[keep]
    z = vectors[:, keep].T @ (observed - expected)
    chi_square = float(np.sum(z * z / lam))
    t2 = tau * tau
    log_lambda = float(np.sum(-0.5 * np.log1p(t2 * lam) + 0.5 * t2 * z * z / (1.0 + t2 * lam)))
    return SrmTest(
        *result,
        chi_square=chi_square,
        df=df,
        fixed_p_value=float(chi2.sf(chi_square, df)),
        sequential_p_value=min(1.0, math.exp(-log_lambda)) if log_lambda < 700 else 0.0,
    )


def shares_from_thresholds(thresholds: Sequence[int], buckets: int = 1000) -> tuple[float, ...]:
    """The share of units each variant gets from cumulative bucket thresholds (what SDKs actually
    serve: the rounded thousandths, not the exact weights)."""
    previous = 0
    shares = []
    for threshold in thresholds:
        shares.append(max(0, int(threshold) - previous) / buckets)
        previous = max(previous, int(threshold))
    return tuple(shares)
