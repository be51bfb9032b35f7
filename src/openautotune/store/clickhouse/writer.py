"""Bulk writes of units, events and raw exposures into ClickHouse, idempotent on retry.

`write_rows(units, events, exposures)` is the one entry point for whoever produces rows (the request
path, the log processor, the NATS consumer). Each table gets one INSERT per chunk of up to `CHUNK`
rows, never row by row.
ClickHouse has no unique key, so before inserting, the writer asks which rows are already stored:

- events by `dedup_key` (restricted to the batch's event names and time range, so the check reads
  only those parts and granules): a re-delivered or retried batch inserts nothing twice;
- raw exposures the same way, by `dedup_key` within the batch's autotunes and time range (the
  table's sort key, so the check reads only those granules);
- units by (autotune, run, unit): a unit is written when it is new or strictly earlier than what is
  stored (a late exposure, flagged `late` so the query groups that unit with argMin, and copied to
  `late_units` first, where the reads look for late units), exactly the SQL stores' upsert rule.

The keys of a check go to ClickHouse as data (`Client.rows_with_keys`), not as literals. Events stored
twice (two writers racing on one batch) are harmless: the query takes the first event per unit.
Two racing writers storing different exposures of one new unit can leave two unflagged rows; see
docs/scale.md for when that counts the unit twice. Units go before events:
an event stored without its unit would be invisible anyway, and a failure between the two leaves a
batch that the retry completes. Any failure raises `EventStoreUnavailable`: the caller must not
acknowledge the batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

from openautotune.store.clickhouse.client import Client, literal
from openautotune.store.clickhouse.schema import (
    EVENT_COLUMNS,
    EXPOSURE_COLUMNS,
    INSERTED_UNIT_COLUMNS,
    UNIT_COLUMNS,
    late_units_name,
)

CHUNK = 50_000
# Keys per "already stored?" query (sent as data, not as literals: see Client.rows_with_keys).
CHECK_CHUNK = 50_000
Row = Mapping[str, Any]


def _chunks(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _in_list(values: Sequence[object]) -> str:
    return ", ".join(literal(value) for value in values)


def new_units(client: Client, table: str, rows: Sequence[Row]) -> list[tuple[Row, bool]]:
    """The rows to insert: per unit the earliest of the batch, when new or earlier than the stored one,
    each with its `late` flag (True: a later exposure of the unit is stored; the query then groups it)."""
    earliest: dict[tuple[str, int, str], Row] = {}
    for row in rows:
        key = (str(row["autotune_id"]), int(row["run"]), str(row["unit_id"]))
        kept = earliest.get(key)
        if kept is None or int(row["first_exposure_ms"]) < int(kept["first_exposure_ms"]):
            earliest[key] = row
    by_run: dict[tuple[str, int], list[str]] = defaultdict(list)
    for autotune_id, run, unit_id in earliest:
        by_run[(autotune_id, run)].append(unit_id)
    stored: dict[tuple[str, int, str], int] = {}
    for (autotune_id, run), unit_ids in by_run.items():
        for part in _chunks(unit_ids, CHECK_CHUNK):
            query = (
                f"SELECT unit_id, min(first_exposure_ms) FROM {table} "
                f"WHERE autotune_id = {literal(autotune_id)} AND run = {run} AND unit_id IN {{keys}} "
                "GROUP BY unit_id"
            )
            for unit_id, first_ms in client.rows_with_keys(query, part):
                stored[(autotune_id, run, str(unit_id))] = int(first_ms)
    return [
        (row, key in stored)
        for key, row in earliest.items()
        if key not in stored or int(row["first_exposure_ms"]) < stored[key]
    ]


def _not_stored(client: Client, table: str, rows: Sequence[Row], name_column: str) -> list[Row]:
    """The rows whose `dedup_key` is not stored yet (nor repeated earlier in the batch); the check is
    bounded by the rows' `name_column` values and time range, the leading columns of the table's key."""
    unique: dict[str, Row] = {}
    for row in rows:
        unique.setdefault(str(row["dedup_key"]), row)
    if not unique:
        return []
    stored: set[str] = set()
    keyed = list(unique.values())
    for part in _chunks(keyed, CHECK_CHUNK):
        names = sorted({str(row[name_column]) for row in part})
        low = min(int(row["time_ms"]) for row in part)
        high = max(int(row["time_ms"]) for row in part)
        query = (
            f"SELECT dedup_key FROM {table} WHERE {name_column} IN ({_in_list(names)}) "
            f"AND time_ms >= {low} AND time_ms <= {high} AND dedup_key IN {{keys}}"
        )
        stored.update(str(key) for (key,) in client.rows_with_keys(query, [str(row["dedup_key"]) for row in part]))
    return [row for key, row in unique.items() if key not in stored]


def new_events(client: Client, table: str, rows: Sequence[Row]) -> list[Row]:
    """The event rows whose `dedup_key` is not stored yet (nor repeated earlier in the batch)."""
    return _not_stored(client, table, rows, "event_name")


def new_exposures(client: Client, table: str, rows: Sequence[Row]) -> list[Row]:
    """The raw exposures whose `dedup_key` is not stored yet (nor repeated earlier in the batch)."""
    return _not_stored(client, table, rows, "autotune_id")


def unit_tuple(row: Row, late: bool = False) -> tuple[Any, ...]:
    version = row.get("allocation_version")
    propensity = row.get("propensity")
    return (
        str(row["autotune_id"]),
        int(row["run"]),
        str(row["unit_id"]),
        str(row["variant_id"]),
        int(row["first_exposure_ms"]),
        None if version is None else int(version),
        1 if row.get("explore") else 0,
        _json_text(row.get("features")),
        None if propensity is None else float(propensity),
        1 if row.get("holdout") else 0,
        1 if late else 0,
    )


def event_tuple(row: Row) -> tuple[Any, ...]:
    value = row.get("value")
    return (
        str(row["id_type"]),
        str(row["unit_id"]),
        str(row["event_name"]),
        None if value is None else str(value),
        _json_text(row.get("metadata")),
        int(row["time_ms"]),
        int(row["received_ms"]),
        str(row["dedup_key"]),
    )


def exposure_tuple(row: Row) -> tuple[Any, ...]:
    run, version, propensity = row.get("run"), row.get("config_version"), row.get("propensity")
    return (
        str(row["autotune_id"]),
        None if run is None else int(run),
        str(row["unit_id"]),
        str(row["rule_id"]),
        None if row.get("variant_id") is None else str(row["variant_id"]),
        1 if row.get("explore") else 0,
        None if version is None else int(version),
        int(row["time_ms"]),
        int(row["received_ms"]),
        _json_text(row.get("user")),
        None if propensity is None else float(propensity),
        1 if row.get("analysable") else 0,
        str(row.get("reason") or ""),
        str(row["dedup_key"]),
    )


def write_rows(
    client: Client,
    units: Sequence[Row],
    events: Sequence[Row],
    *,
    tables: tuple[str, str, str],
    exposures: Sequence[Row] = (),
) -> int:
    """Store units, events and raw exposures not stored yet; returns the number of rows inserted.
    Raises `EventStoreUnavailable` when anything could not be stored (then nothing may be acknowledged)."""
    units_table, events_table, exposures_table = tables
    fresh_units = [unit_tuple(row, late) for row, late in new_units(client, units_table, units)]
    fresh_events = [event_tuple(row) for row in new_events(client, events_table, events)]
    fresh_exposures = [exposure_tuple(row) for row in new_exposures(client, exposures_table, exposures)]
    # Late rows go to `late_units` before `units`: once a late row is in `units` the check above no
    # longer offers it, so a failure between the two inserts must leave the copy, not the row (a copy
    # without its row, retried, is copied again: harmless, see schema.py).
    late_copies = [row[: len(UNIT_COLUMNS)] for row in fresh_units if row[-1]]
    for part in _chunks(late_copies, CHUNK):
        client.insert(late_units_name(units_table), UNIT_COLUMNS, part)
    for part in _chunks(fresh_units, CHUNK):
        client.insert(units_table, INSERTED_UNIT_COLUMNS, part)
    for part in _chunks(fresh_events, CHUNK):
        client.insert(events_table, EVENT_COLUMNS, part)
    for part in _chunks(fresh_exposures, CHUNK):
        client.insert(exposures_table, EXPOSURE_COLUMNS, part)
    return len(fresh_units) + len(fresh_events) + len(fresh_exposures)
