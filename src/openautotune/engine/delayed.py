"""Delayed conversions in one update (engine.md, "Delayed conversions"; the model is stats/delay.py).

Each update adds the conversion delays of the units that matured since the previous update to the
run's delay histogram (carried from one update record to the next, so an update reads only new data),
fits the delay CDF, and counts the bandit's immature units by (variant, period, age). The allocation
then reads a second summary in which every immature unit counts for the share of its outcome already
observable. The winner rule, the reported estimates and intervals stay on mature units: an immature
unit's share comes from a model (a delay distribution assumed the same for every variant and stable
over time), and the false-winner guarantee of the winner rule must not rest on a model. A wrong CDF
can only misdirect some traffic for at most one attribution window, after which the units are mature.

Before any mature conversion (the first W of a run) the CDF is its prior alone, a uniform delay over
the window; it inflates young units' rates by the same factor for every variant of a period, which the
period-weighted estimator compares period by period. `delayedConversions: "ignored"` or a contextual
autotune: the allocation is the mature-only one. The record says which.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from openautotune.domain.autotune import Autotune
from openautotune.stats import Summary, VariantAggregate, summarize
from openautotune.stats.delay import DEFAULT_BINS, DelayCdf, Effective, effective, fit_cdf
from openautotune.store.attribution import BEGINNING_MS, Aggregate
from openautotune.store.delay import delay_histogram, immature_cells
from openautotune.store.event_store import EventStore


@dataclass(frozen=True)
class DelayStep:
    histogram: tuple[int, ...]
    cdf: DelayCdf
    used: bool
    reason: str | None
    cells: Mapping[tuple[str, int], Effective]
    """The bandit's immature units per (variant id, period)."""


def _previous_histogram(previous: Mapping[str, Any] | None, bins: int) -> list[int]:
    block = previous.get("delay") if previous is not None else None
    counts = block.get("histogram") if isinstance(block, dict) else None
    if isinstance(counts, list) and len(counts) == bins and all(isinstance(c, int) for c in counts):
        return list(counts)
    return [0] * bins


def step(
    conn: Connection,
    autotune: Autotune,
    previous_as_of: int | None,
    as_of_ms: int,
    previous_record: Mapping[str, Any] | None,
    *,
    from_metric_source: bool = False,
    events: EventStore | None = None,
) -> DelayStep:
    """The run's delay CDF and the bandit's immature units at `as_of_ms`, read from `events` when units
    and events live in another store (ClickHouse), else through `conn`."""
    definition = autotune.definition
    bins = DEFAULT_BINS
    histogram_of = functools.partial(delay_histogram, conn) if events is None else events.delay_histogram
    cells_of = functools.partial(immature_cells, conn) if events is None else events.immature_cells
    new = histogram_of(
        autotune_id=autotune.id,
        run=autotune.run,
        definition=definition,
        matured_after_ms=BEGINNING_MS if previous_as_of is None else previous_as_of,
        as_of_ms=as_of_ms,
        bins=bins,
    )
    histogram = tuple(a + b for a, b in zip(_previous_histogram(previous_record, bins), new, strict=True))
    cdf = fit_cdf(histogram)
    grouped: dict[tuple[str, int], list[tuple[int, int, int, float, float]]] = {}
    for cell in cells_of(
        autotune_id=autotune.id, run=autotune.run, definition=definition, as_of_ms=as_of_ms, bins=bins
    ):
        grouped.setdefault((cell.variant_id, cell.period), []).append(
            (cell.bin, cell.units, cell.successes, cell.total, cell.total_sq)
        )
    cells = {key: effective(items, cdf) for key, items in grouped.items()}
    reason: str | None = None
    if definition.is_contextual:
        reason = "contextual autotune: its policy reads mature units only"
    elif definition.delayed_conversions == "ignored":
        reason = 'delayedConversions is "ignored"'
    elif from_metric_source:
        # The conversions live in the team's own table, read for mature units only: immature units
        # would count with none of theirs seen yet.
        reason = "success data from a metric source: the allocation reads mature units only"
    used = reason is None and bool(cells)
    if used and cdf.conversions == 0:
        reason = "no mature conversion yet: the delay CDF is its prior alone, a uniform delay over the window"
    return DelayStep(histogram=histogram, cdf=cdf, used=used, reason=reason, cells=cells)


def allocation_summary(
    delay: DelayStep,
    mature: Summary,
    variant_ids: Sequence[str],
    cumulative: Sequence[Aggregate],
    *,
    lower_is_better: bool,
    long_term: float,
) -> Summary:
    """The summary the allocation reads: `mature` itself, or with the immature units' shares added
    to their (variant, period) cells (new periods appended in period order)."""
    if not delay.used:
        return mature
    position = {variant_id: k for k, variant_id in enumerate(variant_ids)}
    rows: dict[int, list[VariantAggregate]] = {}

    def add(variant_id: str, period: int, cell: VariantAggregate) -> None:
        k = position.get(variant_id)
        if k is not None:
            row = rows.setdefault(period, [VariantAggregate(0)] * len(variant_ids))
            row[k] = row[k] + cell

    for item in cumulative:  # the mature cells, as engine.update reads them
        add(item.variant_id, item.period, VariantAggregate(item.units, item.successes, item.total, item.total_sq))
    for (variant_id, period), cell in delay.cells.items():
        add(variant_id, period, VariantAggregate(cell.effective_units, cell.successes, cell.total, cell.total_sq))
    augmented = [rows[period] for period in sorted(rows)]
    pooled = [VariantAggregate(0)] * len(variant_ids)
    for row in augmented:
        pooled = [a + b for a, b in zip(pooled, row, strict=True)]
    return summarize(
        mature.metric,
        pooled,
        lower_is_better=lower_is_better,
        long_term=long_term,
        periods=augmented,
        estimator=mature.estimator,
    )


def immature_units(delay: DelayStep, variant_ids: Sequence[str]) -> list[int]:
    return [sum(c.units for (v, _), c in delay.cells.items() if v == variant_id) for variant_id in variant_ids]


def _cell_order(key: tuple[str, int], variant_ids: Sequence[str]) -> tuple[int, str, int]:
    variant_id, period = key
    position = variant_ids.index(variant_id) if variant_id in variant_ids else len(variant_ids)
    return position, variant_id, period


def record_json(delay: DelayStep, variant_ids: Sequence[str], allocation: Summary) -> dict[str, Any]:
    """The update record's `delay` block: enough to recompute the allocation's extra summary."""
    return {
        "model": "empiricalCdf",
        "bins": delay.cdf.bins,
        "priorWeight": delay.cdf.prior_weight,
        "histogram": list(delay.histogram),
        "conversions": delay.cdf.conversions,
        "meanDelayFraction": delay.cdf.mean_delay_fraction(),
        "used": delay.used,
        "reason": delay.reason,
        "immatureUnits": immature_units(delay, variant_ids),
        "effectiveImmatureUnits": [
            sum(c.effective_units for (v, _), c in delay.cells.items() if v == variant_id) for variant_id in variant_ids
        ],
        "immature": [
            {
                "variantId": variant_id,
                "period": period,
                "units": cell.units,
                "effectiveUnits": cell.effective_units,
                "successes": cell.successes,
                "total": cell.total,
                "totalSq": cell.total_sq,
            }
            # In the definition's variant order, like every other per-variant list of the record (the ids
            # are random, so sorting by id gave each autotune its own order), then by period.
            for (variant_id, period), cell in sorted(
                delay.cells.items(), key=lambda item: _cell_order(item[0], variant_ids)
            )
        ],
        "allocationProbabilityOfBest": list(allocation.pob),
    }
