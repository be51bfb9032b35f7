"""Traffic splits as SDKs see them: weights and cumulative bucket thresholds in thousandths."""

from __future__ import annotations

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
    """`T_i = round(1000 * (w_1 + ... + w_i))`, non-decreasing, the last exactly 1000.

    Rounding the running sum (not each weight) keeps the total at 1000 with no drift.
    """
    thresholds: list[int] = []
    running = 0.0
    previous = 0
    for weight in weights:
        running += weight
        threshold = min(BUCKETS, max(previous, round(BUCKETS * running)))
        thresholds.append(threshold)
        previous = threshold
    if thresholds:
        thresholds[-1] = BUCKETS
    return tuple(thresholds)
