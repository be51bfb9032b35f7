"""What the health checks read and keep (engine.md, "Health").

- `allocations_by_version`: the shares each allocation version published, for the sample-ratio check.
  A unit's period IS the allocation version its SDK echoed (`configVersion`, ingestion), and every
  version (lifecycle changes and engine updates alike) is a row of `allocations`, so exposures served
  from an older specs version are counted against the weights that version published.
- `engine_guardrail_aggregates`: per (autotune, run, guardrail, variant, period) sums of mature units
  and of the units with the guardrail event, added to by every update like `engine_aggregates`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from openautotune.store.attribution import Aggregate
from openautotune.store.autotunes import allocations_table
from openautotune.store.metadata import EpochMs, metadata
from openautotune.store.updates import RunKey

guardrail_aggregates_table = sa.Table(
    "engine_guardrail_aggregates",
    metadata,
    sa.Column("autotune_id", sa.String(200), primary_key=True),
    sa.Column("incarnation_ms", EpochMs, primary_key=True),
    sa.Column("run", sa.Integer, primary_key=True),
    sa.Column("event", sa.String(256), primary_key=True),
    sa.Column("value", sa.String(256), primary_key=True),
    sa.Column("variant_id", sa.String(64), primary_key=True),
    sa.Column("period", sa.Integer, primary_key=True),
    sa.Column("units", sa.BigInteger, nullable=False),
    sa.Column("hits", sa.BigInteger, nullable=False),
)


@dataclass(frozen=True)
class PublishedSplit:
    run: int
    thresholds: tuple[int, ...]


def allocations_by_version(conn: Connection, autotune_id: str, versions: Iterable[int]) -> dict[int, PublishedSplit]:
    """The thresholds published by each of `versions` that exists (unknown versions are left out)."""
    wanted = sorted(set(versions))
    if not wanted:
        return {}
    t = allocations_table.c
    query = sa.select(t.version, t.run, t.thresholds).where(t.autotune_id == autotune_id, t.version.in_(wanted))
    return {
        int(row.version): PublishedSplit(int(row.run), tuple(int(x) for x in row.thresholds))
        for row in conn.execute(query)
    }


_ADD = """
INSERT INTO engine_guardrail_aggregates
    (autotune_id, incarnation_ms, run, event, value, variant_id, period, units, hits)
VALUES (:autotune_id, :incarnation_ms, :run, :event, :value, :variant_id, :period, :units, :hits)
ON CONFLICT (autotune_id, incarnation_ms, run, event, value, variant_id, period) DO UPDATE SET
    units = engine_guardrail_aggregates.units + excluded.units,
    hits = engine_guardrail_aggregates.hits + excluded.hits
"""


def add_guardrail(conn: Connection, key: RunKey, event: str, value: str, new: Iterable[Aggregate]) -> None:
    """Add one update's newly matured units of one guardrail (`successes` = units with its event)."""
    rows = [
        {
            "autotune_id": key.autotune_id,
            "incarnation_ms": key.incarnation_ms,
            "run": key.run,
            "event": event,
            "value": value,
            "variant_id": item.variant_id,
            "period": item.period,
            "units": item.units,
            "hits": item.successes,
        }
        for item in new
    ]
    if rows:
        conn.execute(sa.text(_ADD), rows)


def guardrail_cumulative(conn: Connection, key: RunKey, event: str, value: str) -> list[Aggregate]:
    t = guardrail_aggregates_table.c
    query = (
        sa.select(t.variant_id, t.period, t.units, t.hits)
        .where(
            t.autotune_id == key.autotune_id,
            t.incarnation_ms == key.incarnation_ms,
            t.run == key.run,
            t.event == event,
            t.value == value,
        )
        .order_by(t.variant_id, t.period)
    )
    return [
        Aggregate(str(row.variant_id), int(row.period), int(row.units), int(row.hits), float(row.hits), float(row.hits))
        for row in conn.execute(query)
    ]


def delete_autotune(conn: Connection, autotune_id: str) -> None:
    table = guardrail_aggregates_table
    conn.execute(table.delete().where(table.c.autotune_id == autotune_id))
