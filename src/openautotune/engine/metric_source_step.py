"""The engine's step for autotunes with a `metricSourceID`: read the source before the update's transaction.

`prepare` runs with the autotune's update lock held but outside our write transaction (like the
contextual fits), so a slow or unreachable source never blocks other writers. It reads the newly
matured units from our database, then their rows from the source (store.source_attribution). The
update then adds those sums instead of the events query's.

A source that cannot be read raises `SourceFailed`: the update is skipped with the reason, the
source's `lastError` records it, and since no update record is written, the next update reads the
same units again (nothing is lost, nothing counted twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from openautotune.domain.autotune import Autotune, Status
from openautotune.store import autotunes as autotune_store
from openautotune.store import metric_sources, server_secrets, updates
from openautotune.store.attribution import BEGINNING_MS, Aggregate
from openautotune.store.database import Database
from openautotune.store.metric_source_reader import SourceFailure
from openautotune.store.sealed import SEALING_SECRET, CannotUnseal
from openautotune.store.source_attribution import SourceRead, matured_units, source_aggregates

CHANGED = "the autotune changed while its metric source was read; the next update retries"


class SourceFailed(Exception):
    """The autotune's metric source could not be read; `reason` is what the update reports."""

    def __init__(self, source_id: str, detail: str) -> None:
        self.source_id = source_id
        self.reason = f"metric source {source_id!r} failed: {detail}; the next update retries"
        super().__init__(self.reason)


@dataclass(frozen=True)
class Sourced:
    """One update's read of a source, tied to the run and previous `as_of` it was made for."""

    source_id: str
    run: int
    previous: int | None
    read: SourceRead


def _due(conn: Connection, autotune: Autotune, as_of_ms: int) -> bool:
    """Would this update run at all (engine.update's skip rules)? If not, reading the source is wasted."""
    if autotune.status is not Status.RUNNING or autotune.started_at_ms is None or as_of_ms < autotune.started_at_ms:
        return False
    last = updates.last_as_of(conn, autotune.id, autotune.created_ms)
    return last is None or as_of_ms > last


def prepare(db: Database, autotune_id: str, as_of_ms: int) -> Sourced | None:
    """The source's sums for this update, or None when the autotune reads SDK events (or will skip)."""
    with db.read() as conn:
        autotune = autotune_store.get(conn, autotune_id)
        if autotune is None or autotune.definition.metric_source_id is None or not _due(conn, autotune, as_of_ms):
            return None
        source_id = autotune.definition.metric_source_id
        previous = updates.last_as_of(conn, autotune.id, autotune.created_ms, autotune.run)
        if not metric_sources.exists(conn, source_id):
            raise SourceFailed(source_id, "no metric source has this id")
        key = server_secrets.get(conn, SEALING_SECRET)
        if key is None:
            raise SourceFailed(source_id, f"the server secret {SEALING_SECRET!r} is missing: create the source again")
        try:
            found = metric_sources.get(conn, source_id, key)
        except CannotUnseal as error:
            raise SourceFailed(source_id, f"{error}: create the source again") from None
        if found is None:  # deleted between the two reads
            raise SourceFailed(source_id, "no metric source has this id")
        units = matured_units(
            conn,
            autotune_id=autotune.id,
            run=autotune.run,
            window_ms=autotune.definition.attribution_ms,
            matured_after_ms=BEGINNING_MS if previous is None else previous,
            as_of_ms=as_of_ms,
        )
    try:
        read = source_aggregates(found[0], autotune.definition, units)
    except SourceFailure as failure:
        raise SourceFailed(source_id, failure.reason) from None
    return Sourced(source_id=source_id, run=autotune.run, previous=previous, read=read)


def new_aggregates(sourced: Sourced | None, autotune: Autotune, previous: int | None) -> list[Aggregate] | None:
    """The sums to add for an autotune with a source (None: it reads events); `SourceFailed` if stale."""
    source_id = autotune.definition.metric_source_id
    if source_id is None:
        return None
    if sourced is None or sourced.source_id != source_id or sourced.run != autotune.run or sourced.previous != previous:
        raise SourceFailed(source_id, CHANGED)
    return sourced.read.aggregates


def record_read(conn: Connection, sourced: Sourced | None, now_ms: int) -> dict[str, Any] | None:
    """Note a good read on the source (inside the update's transaction); the update record's entry."""
    if sourced is None:
        return None
    metric_sources.record_read(conn, sourced.source_id, now_ms)
    return {"id": sourced.source_id, "rowsRead": sourced.read.rows_read, "unitsConverted": sourced.read.units_matched}


def record_failure(db: Database, autotune_id: str, failure: SourceFailed, now_ms: int) -> None:
    """Keep the reason on the source (`lastError`), in its own transaction: the update wrote nothing."""
    with db.write() as conn:
        metric_sources.record_failure(conn, failure.source_id, now_ms, autotune_id, failure.reason)
