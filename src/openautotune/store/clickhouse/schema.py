"""The ClickHouse tables of the event store, laid out for the attribution query (DESIGN.md, "Scale").

- `units`: first exposures, `ORDER BY (autotune_id, run, first_exposure_ms)` so an hourly update
  reads only the granules of units that matured in the last hour (ordering by unit was 3-4x slower);
- `events`: one row per (event, id type), `PARTITION BY` day and `ORDER BY (event_name, id_type,
  time_ms)` so the redundant time bound of the query prunes whole parts and granules;
- `exposures`: every exposure as logged (the dashboard's log stream and the results' daily traffic),
  `PARTITION BY` day and `ORDER BY (autotune_id, time_ms)`: both readers ask for one autotune, the
  log stream its newest rows first (read in order from the end of the key), so they read only that
  autotune's granules.

ClickHouse has no unique key: the writer skips rows already stored (`writer.py`) and flags a late,
earlier exposure (`late`), which the query resolves with `argMin(..., first_exposure_ms)`. Each late
row is also copied to `late_units` (`ORDER BY (autotune_id, run, unit_id)`), a table as small as late
exposures are rare: the reads find the late units there instead of reading the run's `late` column
twice.
On a cluster (`?cluster=NAME`) each shard holds `units_local` / `late_units_local` / `events_local` /
`exposures_local` and every node a `Distributed` table named `units` / `late_units` / `events` /
`exposures` over them, sharded by `cityHash64(unit_id)`, so a unit, its late rows and its events live
on the same shard.
The statements run unchanged on ClickHouse 18.16 and 26.x; `migrate` is idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence

from openautotune.store.clickhouse.client import Client

# 2: the `exposures` table (raw exposures out of the main database); 3: `late_units`.
SCHEMA_VERSION = 3
LATE_UNITS_VERSION = 3

UNIT_COLUMNS = (
    "autotune_id",
    "run",
    "unit_id",
    "variant_id",
    "first_exposure_ms",
    "allocation_version",
    "explore",
    "features",
    "propensity",
    "holdout",
)
# `late` (1: written while a later exposure of the unit was stored) is ClickHouse's own bookkeeping.
INSERTED_UNIT_COLUMNS = (*UNIT_COLUMNS, "late")
EVENT_COLUMNS = ("id_type", "unit_id", "event_name", "value", "metadata", "time_ms", "received_ms", "dedup_key")
# The main database's `exposures` columns but its autoincrement id (the readers break ties by dedup key).
EXPOSURE_COLUMNS = (
    "autotune_id",
    "run",
    "unit_id",
    "rule_id",
    "variant_id",
    "explore",
    "config_version",
    "time_ms",
    "received_ms",
    "user",
    "propensity",
    "analysable",
    "reason",
    "dedup_key",
)

# UNIT_COLUMNS with their types: `units` adds the `late` flag, `late_units` (copies of the rows with
# `late = 1`) has them as they are.
_UNIT_COLUMN_TYPES = """autotune_id String, run Int32, unit_id String, variant_id String, first_exposure_ms Int64,
    allocation_version Nullable(Int32), explore UInt8, features Nullable(String), propensity Nullable(Float64),
    holdout UInt8 DEFAULT 0"""

_UNITS = f"""CREATE TABLE IF NOT EXISTS {{name}} (
    {_UNIT_COLUMN_TYPES}, late UInt8 DEFAULT 0
) ENGINE = MergeTree ORDER BY (autotune_id, run, first_exposure_ms)"""

_LATE_UNITS = f"""CREATE TABLE IF NOT EXISTS {{name}} (
    {_UNIT_COLUMN_TYPES}
) ENGINE = MergeTree ORDER BY (autotune_id, run, unit_id)"""

_EVENTS = """CREATE TABLE IF NOT EXISTS {name} (
    id_type String, unit_id String, event_name String, value Nullable(String), metadata Nullable(String),
    time_ms Int64, received_ms Int64, dedup_key String
) ENGINE = MergeTree PARTITION BY toDate(toDateTime(intDiv(time_ms, 1000)))
ORDER BY (event_name, id_type, time_ms)"""

_EXPOSURES = """CREATE TABLE IF NOT EXISTS {name} (
    autotune_id String, run Nullable(Int32), unit_id String, rule_id String, variant_id Nullable(String),
    explore UInt8, config_version Nullable(Int32), time_ms Int64, received_ms Int64, user Nullable(String),
    propensity Nullable(Float64), analysable UInt8, reason String, dedup_key String
) ENGINE = MergeTree PARTITION BY toDate(toDateTime(intDiv(time_ms, 1000)))
ORDER BY (autotune_id, time_ms)"""

_DISTRIBUTED = """CREATE TABLE IF NOT EXISTS {name} AS {local}
ENGINE = Distributed({cluster}, {database}, {short}, cityHash64(unit_id))"""

_VERSION = """CREATE TABLE IF NOT EXISTS {name} (version UInt32, applied_ms Int64)
ENGINE = MergeTree ORDER BY version"""


def local_names(cluster: str | None) -> tuple[str, str]:
    """The tables that hold the rows on a node: (units, events)."""
    return ("units_local", "events_local") if cluster else ("units", "events")


def late_units_name(units: str) -> str:
    """The table of late unit rows beside a units table: `late_units` for `units`, `late_units_local`
    for `units_local` (the reads and the writer are given the units table's name)."""
    database, dot, name = units.rpartition(".")
    return f"{database}{dot}late_{name}"


def exposures_local_name(cluster: str | None) -> str:
    """The table that holds a node's raw exposures (kept apart from `local_names`, whose pair the
    attribution and health reads unpack)."""
    return "exposures_local" if cluster else "exposures"


def migrate(nodes: Sequence[Client], *, database: str, cluster: str | None, now_ms: int) -> int:
    """Create the tables on every node (each shard of a cluster); returns the schema version."""
    # Names are qualified: the nodes may be connected to `default` while `database` is being created.
    units, events = (f"{database}.{name}" for name in local_names(cluster))
    exposures = f"{database}.{exposures_local_name(cluster)}"
    late_units = late_units_name(units)
    for node in nodes:
        node.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        node.execute(_UNITS.format(name=units))
        node.execute(_LATE_UNITS.format(name=late_units))
        node.execute(_EVENTS.format(name=events))
        node.execute(_EXPOSURES.format(name=exposures))
        if cluster:
            tables = (("units", units), ("late_units", late_units), ("events", events), ("exposures", exposures))
            for name, local in tables:
                node.execute(
                    _DISTRIBUTED.format(
                        name=f"{database}.{name}",
                        local=local,
                        cluster=cluster,
                        database=database,
                        short=local.split(".")[-1],
                    )
                )
        node.execute(_VERSION.format(name=f"{database}.openautotune_schema"))
        stored = node.rows(f"SELECT max(version) FROM {database}.openautotune_schema")
        if not stored or not stored[0][0] or int(stored[0][0]) < SCHEMA_VERSION:
            if stored and stored[0][0] and int(stored[0][0]) < LATE_UNITS_VERSION:
                # A store from before `late_units`: copy its late rows there (per node, local tables).
                # Run again after a crash here, the copy may repeat rows: harmless, the reads group a
                # late unit's rows by unit and take the earliest.
                columns = ", ".join(UNIT_COLUMNS)
                node.execute(f"INSERT INTO {late_units} ({columns}) SELECT {columns} FROM {units} WHERE late = 1")
            # Through `insert` (a data block): clickhouse-driver waits for one after any INSERT text.
            node.insert(f"{database}.openautotune_schema", ("version", "applied_ms"), [(SCHEMA_VERSION, now_ms)])
    return SCHEMA_VERSION
