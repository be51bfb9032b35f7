"""Traffic weights and the winner rule (spec: engine.md).

- ``weights``: w_k = L / K + (1 - L) * PoB_k, L = long-term exploration allocation.
- ``winner``: the leader's index when its PoB reaches the threshold.

The exploration splits and the SDK bucket thresholds are wire facts of an allocation and live in
``openautotune.domain.allocation`` (one place for each fact).

Weights are returned as tuples of floats: small, immutable, and ready for a record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

_SUM_SLACK: Final = 1e-9
# Why a slack at all: PoB and weights are floats that sum to 1 only up to rounding.


def _check_distribution(name: str, values: Sequence[float]) -> None:
    if not values:
        raise ValueError(f"{name} must not be empty")
    if any(not math.isfinite(v) or v < 0.0 for v in values):
        raise ValueError(f"{name} must be finite and non-negative, got {list(values)}")
    total = math.fsum(values)
    if abs(total - 1.0) > _SUM_SLACK:
        raise ValueError(f"{name} must sum to 1, got {total!r}")


def weights(pob: Sequence[float], long_term: float = 0.0) -> tuple[float, ...]:
    """Traffic weights from P(best), keeping ``long_term`` of traffic spread equally."""
    if not (math.isfinite(long_term) and 0.0 <= long_term <= 1.0):
        raise ValueError(f"long_term must be in [0, 1], got {long_term}")
    values = [float(p) for p in pob]
    _check_distribution("pob", values)
    floor = long_term / len(values)
    return tuple(floor + (1.0 - long_term) * p for p in values)


def leader(pob: Sequence[float]) -> int:
    """Index of the highest P(best); the first one on a tie, so the choice is deterministic."""
    if not pob:
        raise ValueError("pob must not be empty")
    best = 0
    for i, p in enumerate(pob):
        if p > pob[best]:
            best = i
    return best


def winner(pob: Sequence[float], threshold: float) -> int | None:
    """The leader's index if its P(best) is at least ``threshold``, else None."""
    if not (math.isfinite(threshold) and 0.0 < threshold <= 1.0):
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    best = leader(pob)
    return best if pob[best] >= threshold else None
