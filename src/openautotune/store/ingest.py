"""Writes of ingestion (exposures, units, events) and the autotune facts it needs to classify exposures.

Every write here is one `executemany` of a pre-built list of rows, inside the caller's
transaction: a batch costs three statements whatever its size. "Insert unless already there" is
`ON CONFLICT (...) DO NOTHING`, the same text on SQLite and PostgreSQL; the one dialect
difference (the driver's placeholder) lives in `_Insert._sql`.
"""

from __future__ import annotations

import operator
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from openautotune.domain.autotune import Stage, Status
from openautotune.store import spec_changes
from openautotune.store.autotunes import allocations_table, autotunes_table, definition_from_json
from openautotune.store.ingest_tables import events_table, exposures_table, units_table

Row = Mapping[str, Any]


@dataclass(frozen=True)
class AllocationFact:
    run: int
    stage: Stage
    as_of_ms: int


@dataclass(frozen=True)
class AutotuneFacts:
    """What classifying an exposure needs to know about its autotune, loaded once per batch."""

    id: str
    id_type: str
    status: Status
    run: int
    variant_ids: frozenset[str]
    allocations: Mapping[int, AllocationFact]

    @property
    def finished_at_ms(self) -> int | None:
        """When the current run was finished (its first `finished` allocation), if it was."""
        times = [
            fact.as_of_ms for fact in self.allocations.values() if fact.run == self.run and fact.stage is Stage.FINISHED
        ]
        return min(times) if times else None


def specs_changed_at(conn: Connection) -> int:
    """The time anything about autotunes last changed (see `spec_changes`): the cache's validity marker."""
    return spec_changes.last_change(conn)


def load_facts(conn: Connection, autotune_ids: Collection[str]) -> dict[str, AutotuneFacts]:
    """Facts of the named autotunes that exist (two queries, whatever the number of ids)."""
    if not autotune_ids:
        return {}
    ids = sorted(autotune_ids)
    a = autotunes_table.c
    rows = conn.execute(sa.select(a.id, a.definition, a.status, a.run).where(a.id.in_(ids))).all()
    if not rows:
        return {}
    al = allocations_table.c
    allocations: dict[str, dict[int, AllocationFact]] = {row.id: {} for row in rows}
    query = sa.select(al.autotune_id, al.version, al.run, al.stage, al.as_of_ms).where(
        al.autotune_id.in_(list(allocations))
    )
    for alloc in conn.execute(query):
        allocations[alloc.autotune_id][int(alloc.version)] = AllocationFact(
            run=int(alloc.run), stage=Stage(alloc.stage), as_of_ms=int(alloc.as_of_ms)
        )
    facts: dict[str, AutotuneFacts] = {}
    for row in rows:
        definition = definition_from_json(row.definition)
        facts[row.id] = AutotuneFacts(
            id=row.id,
            id_type=definition.id_type,
            status=Status(row.status),
            run=int(row.run),
            variant_ids=frozenset(variant.id for variant in definition.variants),
            allocations=allocations[row.id],
        )
    return facts


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


class _Insert:
    """One table's insert, as driver SQL: rows go to the DB-API `executemany` as tuples.

    Going around SQLAlchemy's per-row bind processing (JSON is serialised here, once, with
    orjson) roughly halves the Python cost of a batch; the SQL text is the same on SQLite and
    PostgreSQL except the placeholder, which `_sql` alone decides.
    """

    def __init__(self, table: sa.Table, conflict: str) -> None:
        self.table = table
        self.conflict = conflict
        self.columns = tuple(column.name for column in table.columns if column.autoincrement is not True)
        json_columns = {column.name for column in table.columns if isinstance(column.type, sa.JSON)}
        self._json_positions = [i for i, name in enumerate(self.columns) if name in json_columns]
        self._getter = operator.itemgetter(*self.columns)

    def _sql(self, conn: Connection) -> str:
        mark = "%s" if conn.dialect.name == "postgresql" else "?"  # psycopg: format; sqlite3: qmark
        names = ", ".join(f'"{name}"' for name in self.columns)
        marks = ", ".join([mark] * len(self.columns))
        return f"INSERT INTO {self.table.name} ({names}) VALUES ({marks}) {self.conflict}"

    def execute(self, conn: Connection, rows: Sequence[Row]) -> None:
        if not rows:
            return
        values: list[tuple[Any, ...]] = [self._getter(row) for row in rows]
        if self._json_positions:
            for number, row_values in enumerate(values):
                serialised = list(row_values)
                for position in self._json_positions:
                    serialised[position] = _json(serialised[position])
                values[number] = tuple(serialised)
        conn.exec_driver_sql(self._sql(conn), values)


_EXPOSURES = _Insert(exposures_table, "ON CONFLICT (dedup_key) DO NOTHING")
_EVENTS = _Insert(events_table, "ON CONFLICT (dedup_key) DO NOTHING")
_UNIT_REPLACED = (
    "variant_id",
    "first_exposure_ms",
    "allocation_version",
    "explore",
    "features",
    "propensity",
    "holdout",
)
_UNITS = _Insert(
    units_table,
    "ON CONFLICT (autotune_id, run, unit_id) DO UPDATE SET "
    + ", ".join(f'"{name}" = excluded."{name}"' for name in _UNIT_REPLACED)
    + " WHERE excluded.first_exposure_ms < units.first_exposure_ms",
)


def insert_exposures(conn: Connection, rows: Sequence[Row]) -> None:
    """Raw exposures; a row whose `dedup_key` is already stored (a re-sent batch) is skipped."""
    _EXPOSURES.execute(conn, rows)


def insert_events(conn: Connection, rows: Sequence[Row]) -> None:
    """Event rows (one per event and id type); re-sent ones are skipped by `dedup_key`."""
    _EVENTS.execute(conn, rows)


def upsert_units(conn: Connection, rows: Sequence[Row]) -> None:
    """Record each unit's first analysable exposure.

    A new unit is inserted; a known unit is replaced only by a strictly earlier exposure (one
    that arrived late), so the row always holds the earliest analysable exposure stored so far.
    The rows must not repeat a unit (the caller keeps the earliest one per unit).
    """
    _UNITS.execute(conn, rows)


def forget_autotune(conn: Connection, autotune_id: str) -> None:
    """Delete the exposures and units of a deleted autotune, in the deleting transaction.

    Without this, an autotune re-created under the same name (same id, run 1 again) would
    inherit the units of its namesake. Events are not per autotune and stay.
    """
    conn.execute(units_table.delete().where(units_table.c.autotune_id == autotune_id))
    conn.execute(exposures_table.delete().where(exposures_table.c.autotune_id == autotune_id))
