"""The holdout in one update (engine.md, "Holdout"; serving/holdout.py decides who is held out).

The holdout's units are kept out of the bandit's aggregates (`matured_aggregates(holdout=True)`, or
the event store's `holdout_aggregates` when units live in ClickHouse, reads them apart), summed per
variant over the run (the sums are carried from one update record to the next, so an update reads only
the units that matured since the previous one), and compared with the bandit's mature units by
`stats.holdout.compare`. Without a holdout the block is None.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from openautotune.domain.autotune import Autotune
from openautotune.stats import VariantAggregate
from openautotune.stats.holdout import Arm, Comparison, Interval, compare
from openautotune.store.attribution import BEGINNING_MS, matured_aggregates
from openautotune.store.event_store import EventStore

NOT_ENOUGH = "not enough data: each arm needs at least 2 mature units"


def _previous(previous_record: Mapping[str, Any] | None, variant_ids: Sequence[str]) -> dict[str, list[float]]:
    sums = {variant_id: [0.0, 0.0, 0.0, 0.0] for variant_id in variant_ids}
    block = previous_record.get("holdout") if previous_record is not None else None
    items = block.get("variants") if isinstance(block, dict) else None
    for item in items if isinstance(items, list) else []:
        slot = sums.get(str(item.get("id"))) if isinstance(item, dict) else None
        if slot is not None:
            for n, key in enumerate(("units", "successes", "total", "totalSq")):
                value = item.get(key)
                slot[n] += float(value) if isinstance(value, int | float) else 0.0
    return sums


def _interval(interval: Interval | None) -> dict[str, float] | None:
    if interval is None:
        return None
    return {"value": interval.value, "low": interval.low, "high": interval.high}


def step(
    conn: Connection,
    autotune: Autotune,
    previous_as_of: int | None,
    as_of_ms: int,
    previous_record: Mapping[str, Any] | None,
    bandit: Sequence[VariantAggregate],
    *,
    events: EventStore | None = None,
) -> dict[str, Any] | None:
    """The update record's `holdout` block; `bandit` is the bandit's mature sums per variant. The
    holdout's units are read from `events` when units and events live in another store (ClickHouse)."""
    definition = autotune.definition
    if definition.holdout_share <= 0 or definition.is_contextual:
        return None
    variant_ids = [variant.id for variant in definition.variants]
    sums = _previous(previous_record, variant_ids)
    read = functools.partial(matured_aggregates, conn, holdout=True) if events is None else events.holdout_aggregates
    for item in read(
        autotune_id=autotune.id,
        run=autotune.run,
        definition=definition,
        matured_after_ms=BEGINNING_MS if previous_as_of is None else previous_as_of,
        as_of_ms=as_of_ms,
    ):
        slot = sums.get(item.variant_id)
        if slot is not None:
            slot[0] += item.units
            slot[1] += item.successes
            slot[2] += item.total
            slot[3] += item.total_sq
    held = Arm(
        int(sum(s[0] for s in sums.values())), sum(s[2] for s in sums.values()), sum(s[3] for s in sums.values())
    )
    served = Arm(int(sum(a.units for a in bandit)), sum(a.total for a in bandit), sum(a.total_sq for a in bandit))
    comparison: Comparison | None = compare(served, held, lower_is_better=definition.lower_is_better)
    return {
        "percent": definition.holdout_percent,
        "units": held.units,
        "banditUnits": served.units,
        "variants": [
            {"id": v, "units": int(s[0]), "successes": int(s[1]), "total": s[2], "totalSq": s[3]}
            for v, s in sums.items()
        ],
        "holdoutMean": held.mean,
        "banditMean": served.mean,
        "lift": _interval(comparison.lift) if comparison else None,
        "relativeLift": _interval(comparison.relative_lift) if comparison else None,
        "regretAvoided": _interval(comparison.regret_avoided) if comparison else None,
        "level": comparison.level if comparison else 0.95,
        "message": None if comparison else NOT_ENOUGH,
    }
