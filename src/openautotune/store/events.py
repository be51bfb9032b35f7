"""The event store: where units (first exposures) and events live, behind one small interface.

`EventStore` is what the engine, ingestion and `events copy` need: write rows in bulk, read the
attribution aggregates, the contextual per-unit rows, the holdout and delayed-conversion reads of
an update, and the raw exposures' log stream and daily traffic. Two implementations:

- `SqlEvents`: the main database (SQLite or PostgreSQL), the default when no events URL is set; it
  calls the SQL of `attribution.py`, `contextual.py`, `delay.py` `exposure_log.py` and `ingest.py`;
- `clickhouse.store.ClickHouseEvents`: chdb in process, a ClickHouse server, or a cluster.

Both return the same aggregates on the same rows (tests/store/test_event_stores.py holds the reference).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from openautotune.domain.autotune import Definition
from openautotune.store import contextual, delay, exposure_log, ingest
from openautotune.store.attribution import BEGINNING_MS, Aggregate, matured_aggregates
from openautotune.store.clickhouse.schema import EVENT_COLUMNS, EXPOSURE_COLUMNS, UNIT_COLUMNS
from openautotune.store.clickhouse.url import is_clickhouse
from openautotune.store.contextual import UnitRow
from openautotune.store.database import Database
from openautotune.store.event_store import EventStore
from openautotune.store.exposure_log import LoggedExposure
from openautotune.store.ingest_tables import events_table, exposures_table, units_table

T = TypeVar("T")

Row = Mapping[str, Any]
# The order `events copy` reads each table in, and the key it resumes after.
COPY_KEYS = {"units": ("autotune_id", "run", "unit_id"), "events": ("dedup_key",), "exposures": ("dedup_key",)}
COPY_SOURCES = {
    "units": (units_table, UNIT_COLUMNS),
    "events": (events_table, EVENT_COLUMNS),
    "exposures": (exposures_table, EXPOSURE_COLUMNS),
}


def earliest_per_unit(units: Sequence[Row]) -> list[Row]:
    """One row per (autotune, run, unit): the earliest exposure (SQL upserts must not repeat a unit)."""
    kept: dict[tuple[Any, Any, Any], Row] = {}
    for row in units:
        key = (row["autotune_id"], row["run"], row["unit_id"])
        if key not in kept or row["first_exposure_ms"] < kept[key]["first_exposure_ms"]:
            kept[key] = row
    return [kept[key] for key in sorted(kept, key=lambda k: (str(k[0]), int(k[1]), str(k[2])))]


class SqlEvents:
    """Units and events in the main database (tables of `ingest_tables.py`, migrated by alembic)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.label = db.engine.dialect.name

    def migrate(self, now_ms: int) -> int:
        return 0  # the main database's migrations create the tables

    def write_rows(self, units: Sequence[Row], events: Sequence[Row], exposures: Sequence[Row] = ()) -> int:
        """Units, events and raw exposures in one transaction; rows already stored are skipped by their
        unique keys."""
        unique_events = {str(row["dedup_key"]): row for row in events}
        unique_exposures = {str(row["dedup_key"]): row for row in exposures}
        with self.db.write() as conn:
            ingest.insert_exposures(conn, [unique_exposures[key] for key in sorted(unique_exposures)])
            ingest.upsert_units(
                conn, [{"features": None, "propensity": None, **row} for row in earliest_per_unit(units)]
            )
            ingest.insert_events(conn, [unique_events[key] for key in sorted(unique_events)])
        return len(units) + len(events) + len(exposures)

    def _read(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`query(conn, *args, **kwargs)` in a read transaction of this store's database."""
        with self.db.read() as conn:
            return query(conn, *args, **kwargs)

    def matured_aggregates(
        self, *, autotune_id: str, run: int, definition: Definition, matured_after_ms: int, as_of_ms: int
    ) -> list[Aggregate]:
        return self._aggregates(autotune_id, run, definition, matured_after_ms, as_of_ms, holdout=False)

    def _aggregates(
        self, autotune_id: str, run: int, definition: Definition, matured_after_ms: int, as_of_ms: int, *, holdout: bool
    ) -> list[Aggregate]:
        """The bandit's (or with `holdout` the holdout's) sums of the units matured in the window."""
        return self._read(
            matured_aggregates,
            autotune_id=autotune_id,
            run=run,
            definition=definition,
            matured_after_ms=matured_after_ms,
            as_of_ms=as_of_ms,
            holdout=holdout,
        )

    def matured_units(
        self,
        *,
        autotune_id: str,
        run: int,
        definition: Definition,
        as_of_ms: int,
        matured_after_ms: int = BEGINNING_MS,
    ) -> list[UnitRow]:
        if matured_after_ms != BEGINNING_MS:
            raise ValueError("the SQL store reads every matured unit of a run (matured_after_ms unsupported)")
        return self._read(
            contextual.matured_units, autotune_id=autotune_id, run=run, definition=definition, as_of_ms=as_of_ms
        )

    def holdout_aggregates(
        self, *, autotune_id: str, run: int, definition: Definition, matured_after_ms: int, as_of_ms: int
    ) -> list[Aggregate]:
        return self._aggregates(autotune_id, run, definition, matured_after_ms, as_of_ms, holdout=True)

    def delay_histogram(
        self, *, autotune_id: str, run: int, definition: Definition, matured_after_ms: int, as_of_ms: int, bins: int
    ) -> list[int]:
        return self._read(
            delay.delay_histogram,
            autotune_id=autotune_id,
            run=run,
            definition=definition,
            matured_after_ms=matured_after_ms,
            as_of_ms=as_of_ms,
            bins=bins,
        )

    def immature_cells(
        self, *, autotune_id: str, run: int, definition: Definition, as_of_ms: int, bins: int
    ) -> list[delay.ImmatureCell]:
        return self._read(
            delay.immature_cells, autotune_id=autotune_id, run=run, definition=definition, as_of_ms=as_of_ms, bins=bins
        )

    def recent_exposures(self, *, autotune_id: str, limit: int) -> list[LoggedExposure]:
        return self._read(exposure_log.recent, autotune_id, limit)

    def daily_exposures(self, *, autotune_id: str, run: int) -> dict[tuple[int, str], int]:
        return self._read(exposure_log.daily_counts, autotune_id, run)

    def forget_autotune(self, autotune_id: str) -> None:
        """Delete the units and exposures of a deleted autotune (a no-op repeat when this is the main
        database, whose deleting transaction already did it; needed when the events URL names another)."""
        with self.db.write() as conn:
            ingest.forget_autotune(conn, autotune_id)

    def wait_forgotten(self, autotune_id: str) -> bool:
        """`forget_autotune` deleted in its own transaction: nothing to wait for."""
        return True

    def counts(self) -> tuple[int, int]:
        """(units, events) stored: one per (autotune, run, unit) and one per dedup key."""
        with self.db.read() as conn:
            units = conn.execute(sa.select(sa.func.count()).select_from(units_table)).scalar_one()
            events = conn.execute(sa.select(sa.func.count()).select_from(events_table)).scalar_one()
        return int(units), int(events)

    def exposure_count(self) -> int:
        """Raw exposures stored (one per dedup key)."""
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(exposures_table)).scalar_one())

    def page(self, table: str, after: Sequence[Any] | None, size: int) -> list[dict[str, Any]]:
        """Up to `size` rows of `units` (by autotune, run, unit), `events` or `exposures` (by dedup key)
        after `after`."""
        source, names = COPY_SOURCES[table]
        key = [source.c[name] for name in COPY_KEYS[table]]
        columns = [source.c[name] for name in names]
        query = sa.select(*columns).order_by(*key).limit(size)
        if after is not None:
            query = query.where(sa.tuple_(*key) > sa.tuple_(*[sa.literal(value) for value in after]))
        with self.db.read() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def close(self) -> None:
        """The main database belongs to its owner; nothing to close here."""


def open_events(url: str | None, db: Database) -> EventStore:
    """The event store an events URL names; unset or empty: the main database."""
    if not url:
        return SqlEvents(db)
    if is_clickhouse(url):
        from openautotune.store.clickhouse.store import ClickHouseEvents

        return ClickHouseEvents(url)
    return SqlEvents(Database.from_url(url))
