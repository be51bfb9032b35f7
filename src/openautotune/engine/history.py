"""Reading the update history for the results faces (dashboard, results API, CLI): reads only, never writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from openautotune.domain.autotune import Autotune
from openautotune.store import updates
from openautotune.store.database import Database

MAX_RECORDS = 100_000


def run_records(db: Database, autotune: Autotune, limit: int = MAX_RECORDS) -> list[updates.UpdateRecord]:
    """The update records of the autotune's current run, oldest `as_of` first."""
    with db.read() as conn:
        return updates.records(conn, autotune.id, incarnation_ms=autotune.created_ms, run=autotune.run, limit=limit)


@dataclass(frozen=True)
class RecordBody:
    """What the results faces read of one update: its time, stage, metric and per-variant numbers."""

    as_of_ms: int
    stage: str
    metric: str | None
    variants: list[Any]


def _parse_list(body: Any) -> list[Any]:
    parsed = orjson.loads(body) if isinstance(body, str | bytes) else body
    return parsed if isinstance(parsed, list) else []


def run_bodies(
    db: Database, autotune: Autotune, *, after_as_of_ms: int | None = None, limit: int = MAX_RECORDS
) -> list[RecordBody]:
    """The current run's records (those after `after_as_of_ms` when given), oldest first: only
    `metric` and `variants` of each JSON record.

    A dashboard page of 90 days of hourly updates reads 2,160 records. Decoding whole records (with
    their aggregates) through the JSON column's default decoder took most of that page's time, so
    the database extracts the two fields and orjson parses the per-variant list.
    """
    t = updates.updates_table.c
    query = (
        sa.select(
            t.as_of_ms,
            t.stage,
            t.record["metric"].as_string().label("metric"),
            sa.cast(t.record["variants"], sa.Text).label("variants"),
        )
        .where(t.autotune_id == autotune.id, t.incarnation_ms == autotune.created_ms, t.run == autotune.run)
        .order_by(t.as_of_ms, t.id)
        .limit(limit)
    )
    if after_as_of_ms is not None:
        query = query.where(t.as_of_ms > after_as_of_ms)
    with db.read() as conn:
        return [
            RecordBody(int(row.as_of_ms), str(row.stage), row.metric, _parse_list(row.variants))
            for row in conn.execute(query)
        ]


def latest_records(db: Database, autotunes: list[Autotune]) -> dict[str, updates.UpdateRecord]:
    """The latest update record of each autotune's current run, in one query (for lists)."""
    if not autotunes:
        return {}
    wanted = {autotune.id: (autotune.created_ms, autotune.run) for autotune in autotunes}
    table = updates.updates_table
    t = table.c
    newest = (
        sa.select(t.autotune_id, t.incarnation_ms, t.run, sa.func.max(t.as_of_ms).label("as_of_ms"))
        .where(t.autotune_id.in_(list(wanted)))
        .group_by(t.autotune_id, t.incarnation_ms, t.run)
        .subquery()
    )
    query = (
        sa.select(table)
        .join(
            newest,
            sa.and_(
                t.autotune_id == newest.c.autotune_id,
                t.incarnation_ms == newest.c.incarnation_ms,
                t.run == newest.c.run,
                t.as_of_ms == newest.c.as_of_ms,
            ),
        )
        .order_by(t.id)
    )
    found: dict[str, updates.UpdateRecord] = {}
    with db.read() as conn:
        for row in conn.execute(query):
            m = row._mapping
            if wanted.get(m["autotune_id"]) != (int(m["incarnation_ms"]), int(m["run"])):
                continue
            found[m["autotune_id"]] = updates.record_from_row(row)
    return found
