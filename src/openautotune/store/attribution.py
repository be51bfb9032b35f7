"""Attribution in SQL: which units matured in a window, and what each one's outcome was (engine.md).

One query text serves SQLite and PostgreSQL; only the "JSON field as text" expression and the
numeric guard differ between them. Its shape follows DESIGN.md ("Making attribution fast"):

- `matured`: the units of one (autotune, run) whose `first_exposure_ms + W` falls in
  `(previous as_of, as_of]`, read through the covering index `ix_units_maturity`;
- `exposed`: those units counted per (variant, period) from the units table alone;
- `hits`: only the units that converted, joined to their success events (same id type and unit id,
  `first exposure <= time <= first exposure + W`, the value when `successEventValue` is set), with the
  logically redundant bound `previous as_of - W < time <= as_of` so the scan of events stays as short
  as the newest W + 1 update interval however long the history;
- `firsts`: each converted unit's FIRST success event (by time, then `dedup_key`: a tie in time is
  broken by the event's content hash, not by arrival order, so every store, ClickHouse included,
  picks the same event however batches were delivered) and its number;
- the two small aggregates joined at the end.

A value that is not a plain decimal number (JSON number grammar, at most 40 characters, an exponent
of at most two digits, so it always fits a double) is rejected: the unit scores 0 and the rejection
is counted. SQLite's CAST would silently turn `'n/a'` into 0 and PostgreSQL aborts the whole query
on a bad cast, so both test the text before casting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from openautotune.domain.autotune import Definition
from openautotune.store.ingest_tables import events_table, units_table

# Before any update: every unit of the run is "newly matured".
BEGINNING_MS = -(2**62)

_MATURED = """
WITH matured AS (
    SELECT u.unit_id, u.variant_id, COALESCE(u.allocation_version, 0) AS period, u.first_exposure_ms
    FROM units u
    WHERE u.autotune_id = :autotune_id AND u.run = :run
      AND u.first_exposure_ms > :matured_after - :window_ms
      AND u.first_exposure_ms <= :as_of - :window_ms
      AND u.holdout = :holdout
),
exposed AS (
    SELECT variant_id, period, COUNT(*) AS units FROM matured GROUP BY variant_id, period
),
hits AS (
    SELECT m.variant_id, m.period, {raw} AS raw,
           ROW_NUMBER() OVER (PARTITION BY m.unit_id ORDER BY e.time_ms, e.dedup_key) AS position
    FROM matured m
    JOIN events e
      ON e.event_name = :event_name AND e.id_type = :id_type AND e.unit_id = m.unit_id
     AND e.time_ms >= m.first_exposure_ms AND e.time_ms <= m.first_exposure_ms + :window_ms
     AND e.time_ms > :matured_after - :window_ms AND e.time_ms <= :as_of
     {value_filter}
),
firsts AS (
    SELECT variant_id, period, {number} AS x FROM hits WHERE position = 1
),
converted AS (
    SELECT variant_id, period, COUNT(*) AS converted, COUNT(x) AS successes,
           SUM(x) AS total, SUM(x * x) AS total_sq
    FROM firsts GROUP BY variant_id, period
)
SELECT ex.variant_id, ex.period, ex.units,
       COALESCE(c.successes, 0) AS successes,
       COALESCE(c.total, 0) AS total,
       COALESCE(c.total_sq, 0) AS total_sq,
       COALESCE(c.converted, 0) - COALESCE(c.successes, 0) AS rejected
FROM exposed ex
LEFT JOIN converted c ON c.variant_id = ex.variant_id AND c.period = ex.period
ORDER BY ex.variant_id, ex.period
"""

# SQLite: JSON number grammar (json_valid on a text made only of number characters), short, and an
# exponent of at most two digits.
_SQLITE_NUMBER = """CASE WHEN {t} IS NOT NULL AND length({t}) <= 40 AND {t} NOT GLOB '*[^-+.0-9eE]*'
    AND json_valid({t}) AND json_type({t}) IN ('integer', 'real')
    AND {t} NOT GLOB '*[eE][0-9][0-9][0-9]*' AND {t} NOT GLOB '*[eE][-+][0-9][0-9][0-9]*'
    THEN CAST({t} AS REAL) END"""
_SQLITE_FIELD = """CASE WHEN json_valid(e.metadata) THEN CASE json_type(e.metadata, :metadata_path)
    WHEN 'integer' THEN CAST(json_extract(e.metadata, :metadata_path) AS TEXT)
    WHEN 'real' THEN CAST(json_extract(e.metadata, :metadata_path) AS TEXT)
    WHEN 'text' THEN json_extract(e.metadata, :metadata_path) END END"""

_POSTGRES_NUMBER = """CASE WHEN length({t}) <= 40
    AND {t} ~ '^-?(0|[1-9][0-9]*)([.][0-9]+)?([eE][-+]?[0-9]{{1,2}})?$'
    THEN CAST({t} AS DOUBLE PRECISION) END"""
_POSTGRES_FIELD = "(e.metadata ->> :metadata_field)"


@dataclass(frozen=True)
class Aggregate:
    """Sums over the units of one (variant, period): a period is an allocation version."""

    variant_id: str
    period: int
    units: int
    successes: int
    total: float
    total_sq: float
    rejected: int = 0

    def plus(self, other: Aggregate) -> Aggregate:
        return Aggregate(
            variant_id=self.variant_id,
            period=self.period,
            units=self.units + other.units,
            successes=self.successes + other.successes,
            total=self.total + other.total,
            total_sq=self.total_sq + other.total_sq,
            rejected=self.rejected + other.rejected,
        )


def _metadata_path(field: str) -> str:
    escaped = field.replace("\\", "\\\\").replace('"', '\\"')
    return f'$."{escaped}"'


def run_outcome_query(
    conn: Connection, text: str, definition: Definition, params: dict[str, object]
) -> sa.CursorResult[Any]:
    """Run an attribution query with the bind parameters that say what a success is.

    Shared by the aggregate query here and the per-unit query of contextual training, so both read
    success events, values and id types the same way. Only the parameters the text uses are bound.
    """
    params = {
        **params,
        "window_ms": definition.attribution_ms,
        "event_name": definition.success_event,
        # Ingestion stores user ids under "userID"; SDKs match that id type case-insensitively.
        "id_type": "userID" if definition.id_type.lower() == "userid" else definition.id_type,
    }
    if definition.success_event_value:
        params["success_value"] = definition.success_event_value
    if definition.optimizes_value and definition.metadata_field:
        params["metadata_path"] = _metadata_path(definition.metadata_field)
        params["metadata_field"] = definition.metadata_field
    used = {name: value for name, value in params.items() if f":{name}" in text}
    return conn.execute(sa.text(text), used)


def query_text(dialect: str, definition: Definition, template: str = _MATURED) -> str:
    """An attribution query for one definition on one dialect (`sqlite` or `postgresql`).

    `template` is the aggregate query by default; contextual training passes its per-unit one. Both
    take the same `{raw}` (the success event's value text), `{number}` and `{value_filter}`.
    """
    sqlite = dialect == "sqlite"
    if definition.optimizes_value:
        field_text = _SQLITE_FIELD if sqlite else _POSTGRES_FIELD
        raw = field_text if definition.metadata_field else "e.value"
        number = (_SQLITE_NUMBER if sqlite else _POSTGRES_NUMBER).format(t="raw")
    else:
        raw, number = "1", "1.0"
    value_filter = "AND e.value = :success_value" if definition.success_event_value else ""
    return template.format(raw=raw, number=number, value_filter=value_filter)


def matured_aggregates(
    conn: Connection,
    *,
    autotune_id: str,
    run: int,
    definition: Definition,
    matured_after_ms: int,
    as_of_ms: int,
    holdout: bool = False,
) -> list[Aggregate]:
    """Per-(variant, period) sums over the units that matured in `(matured_after_ms, as_of_ms]`: the
    bandit's units, or with `holdout` those of the holdout (engine.md, "Holdout")."""
    params = {
        "autotune_id": autotune_id,
        "run": run,
        "matured_after": matured_after_ms,
        "as_of": as_of_ms,
        "holdout": holdout,
    }
    rows = run_outcome_query(conn, query_text(conn.dialect.name, definition), definition, params)
    return [
        Aggregate(
            variant_id=str(row.variant_id),
            period=int(row.period),
            units=int(row.units),
            successes=int(row.successes),
            total=float(row.total),
            total_sq=float(row.total_sq),
            rejected=int(row.rejected),
        )
        for row in rows
    ]


# --- bulk rows (the simulator's direct path and benchmarks; ingestion has its own writer) ------

UNIT_COLUMNS = ("autotune_id", "run", "unit_id", "variant_id", "first_exposure_ms", "allocation_version", "explore")
EVENT_COLUMNS = ("id_type", "unit_id", "event_name", "value", "metadata", "time_ms", "received_ms", "dedup_key")


def _insert_many(conn: Connection, table: str, columns: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    # Straight to the driver's executemany: SQLAlchemy's per-row parameter processing would cost
    # more than the insert itself at simulator and benchmark volumes.
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(mark for _ in columns)})"
    conn.exec_driver_sql(statement, rows)


def insert_units(conn: Connection, rows: list[tuple[object, ...]]) -> None:
    """Insert first exposures, as tuples in `UNIT_COLUMNS` order (`explore` False for plain autotunes)."""
    _insert_many(conn, units_table.name, UNIT_COLUMNS, rows)


def insert_events(conn: Connection, rows: list[tuple[object, ...]]) -> None:
    """Insert events, as tuples in `EVENT_COLUMNS` order (`metadata` as JSON text or None)."""
    _insert_many(conn, events_table.name, EVENT_COLUMNS, rows)
