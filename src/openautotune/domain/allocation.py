"""Traffic splits as SDKs see them: weights and cumulative bucket thresholds in thousandths."""

from __future__ import annotations

import math
from collections.abc import Sequence

from openautotune.domain.autotune import Definition

BUCKETS = 1000


def exploration_weights(definition: Definition) -> tuple[float, ...]:
    """The split during the exploration window: the `size` split when every variant has one."""
    sizes = [variant.size for variant in definition.variants]
    if all(size is not None for size in sizes):
        return tuple(float(size) / 100.0 for size in sizes if size is not None)
    count = len(definition.variants)
    return tuple(1.0 / count for _ in range(count))


def winner_weights(definition: Definition, winner_id: str) -> tuple[float, ...]:
    return tuple(1.0 if variant.id == winner_id else 0.0 for variant in definition.variants)


def cumulative_thresholds(weights: Sequence[float]) -> tuple[int, ...]:
    """`T_i = round(1000 * (w_1 + ... + w_i))`, rounded half up, non-decreasing, the last exactly 1000.

    Each prefix is summed with `math.fsum` (not a running float sum), so rounding never drifts along
    the list; the tiny epsilon makes exact halves (0.0005 -> 0.5 thousandths) round up despite their
    binary representation. Forcing the last to 1000 maps every bucket 0..999 to a variant.
    """
    values = [float(weight) for weight in weights]
    thresholds: list[int] = []
    for index in range(1, len(values) + 1):
        rounded = min(BUCKETS, math.floor(math.fsum(values[:index]) * BUCKETS + 0.5 + 1e-9))
        thresholds.append(max(rounded, thresholds[-1]) if thresholds else rounded)
    if thresholds:
        thresholds[-1] = BUCKETS
    return tuple(thresholds)
