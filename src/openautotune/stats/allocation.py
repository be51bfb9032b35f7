"""Traffic weights, SDK bucket thresholds and the winner rule (spec: engine.md, sdk-protocol.md).

- ``weights``: w_k = L / K + (1 - L) * PoB_k, L = long-term exploration allocation.
- ``thresholds``: cumulative thresholds in thousandths, T_i = round(1000 * (w_1 + ... + w_i)),
  rounded half up, never decreasing, the last exactly 1000, so every bucket 0..999 maps to a variant.
- ``equal_split`` / ``size_split``: the exploration-window splits.
- ``winner``: the leader's index when its PoB reaches the threshold.

Weights are returned as tuples of floats: small, immutable, and ready for a record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

BUCKETS: Final = 1000
"""Buckets per unit of traffic in the SDK protocol (thresholds are in thousandths)."""

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


def thresholds(split: Sequence[float]) -> tuple[int, ...]:
    """Cumulative bucket thresholds in thousandths for weights that sum to 1."""
    values = [float(w) for w in split]
    _check_distribution("weights", values)
    out: list[int] = []
    for i in range(1, len(values) + 1):
        # fsum of the prefix, not a running float sum, so rounding never drifts along the list;
        # the tiny epsilon makes exact halves (0.0005 -> 0.5 thousandths) round up despite
        # representation error, as "round half up" promises.
        cumulative = math.fsum(values[:i]) * BUCKETS
        rounded = min(BUCKETS, math.floor(cumulative + 0.5 + 1e-9))
        out.append(max(rounded, out[-1]) if out else rounded)
    out[-1] = BUCKETS
    return tuple(out)


def equal_split(k: int) -> tuple[float, ...]:
    """Equal weights for ``k`` variants."""
    if k < 1:
        raise ValueError(f"need at least one variant, got {k}")
    return tuple(1.0 / k for _ in range(k))


def size_split(sizes: Sequence[float]) -> tuple[float, ...]:
    """Weights from per-variant ``size`` percentages, which must sum to 100."""
    values = [float(s) for s in sizes]
    if not values or any(not math.isfinite(v) or v < 0.0 for v in values):
        raise ValueError(f"sizes must be non-negative percentages, got {list(sizes)}")
    total = math.fsum(values)
    if abs(total - 100.0) > 1e-6:
        raise ValueError(f"sizes must sum to 100, got {total!r}")
    return tuple(v / 100.0 for v in values)


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
