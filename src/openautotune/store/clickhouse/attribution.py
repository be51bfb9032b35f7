"""The attribution query in ClickHouse: the same aggregates and per-unit rows as `store.attribution`.

One text runs unchanged on ClickHouse 18.16 (Debian's server) and 26.x (chdb): no CTEs, no window
functions, no JSONExtract, joins on equality only (the time conditions go in WHERE). Its parts:

- matured units: the rows of (autotune, run) first exposed in the window, grouped by unit with
  `argMin(..., first_exposure_ms)`, so a unit stored twice (a race of two writers) still counts once
  with its earliest exposure; a unit with an earlier row outside the window is left out (`HAVING`),
  as the SQL stores, which keep only the earliest row, would;
- hits: those units joined to their success events in `[first exposure, first exposure + W]`, with the
  redundant bound `previous as_of - W < time <= as_of`; the first one per unit is
  `argMin(value, (time_ms, dedup_key))` (ties in time broken by the content hash, like the SQL path);
- every matured unit LEFT JOINed to its first hit (ClickHouse builds the hash table from the small
  right side, the hits, and streams the units), summed per (variant, period).

On a cluster this text runs on every shard over its local tables (units and events are sharded by
`cityHash64(unit_id)`, so each unit's join is shard-local) and the per-shard sums are added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openautotune.domain.autotune import Definition
from openautotune.store.clickhouse.client import literal

# A NULL allocation version (or propensity) read through argMin, which skips NULLs, as a sentinel.
NO_VERSION = -1
NO_PROPENSITY = -1.0

_MATURED = """
    SELECT unit_id, argMin(variant_id, first_exposure_ms) AS v,
           argMin(ifNull(allocation_version, {no_version}), first_exposure_ms) AS p,
           min(first_exposure_ms) AS first_ms{extra}
    FROM {units}
    WHERE autotune_id = {autotune_id} AND run = {run} AND first_exposure_ms <= {as_of} - {window}
      AND unit_id IN (
          SELECT unit_id FROM {units}
          WHERE autotune_id = {autotune_id} AND run = {run}
            AND first_exposure_ms > {after} - {window} AND first_exposure_ms <= {as_of} - {window})
    GROUP BY unit_id
    HAVING first_ms > {after} - {window}"""

_HITS = """
    SELECT unit_id, 1 AS hit, argMin(raw, (time_ms, dedup_key)) AS first_raw
    FROM (
        SELECT unit_id, first_ms, time_ms, dedup_key, raw
        FROM ({matured_keys}) AS m ALL INNER JOIN (
            SELECT unit_id, time_ms, dedup_key, ifNull({raw}, '') AS raw
            FROM {events}
            WHERE event_name = {event_name} AND id_type = {id_type}
              AND time_ms > {after} - {window} AND time_ms <= {as_of}{value_filter}
        ) AS e USING unit_id
        WHERE time_ms >= first_ms AND time_ms <= first_ms + {window}
    )
    GROUP BY unit_id"""

_AGGREGATES = """
SELECT v, p, count() AS units, sum(hit) AS converted, count(x) AS successes,
       sum(ifNull(x, 0)) AS total, sum(ifNull(x * x, 0)) AS total_sq
FROM (
    SELECT v, p, hit, if(hit = 1, {number}, NULL) AS x
    FROM ({matured}) AS m ANY LEFT JOIN ({hits}) AS h USING unit_id
)
GROUP BY v, p
ORDER BY v, p"""

_UNITS = """
SELECT unit_id, v, p, ex, feat, prop, hit, {number} AS x, first_ms
FROM ({matured}) AS m ANY LEFT JOIN ({hits}) AS h USING unit_id
ORDER BY first_ms, unit_id"""

# JSON number grammar, at most 40 characters, exponent of at most two digits (always fits a double):
# anything else is rejected (the unit scores 0 and is counted), as on SQLite and PostgreSQL.
_NUMBER = (
    "if(length(first_raw) <= 40 AND match(first_raw, '^-?(0|[1-9][0-9]*)([.][0-9]+)?([eE][-+]?[0-9]{1,2})?$'), "
    "toFloat64OrZero(first_raw), NULL)"
)
# A top-level metadata field as text: a JSON string unescaped, a number as written, anything else
# (true, null, objects) left as is for the number test to reject. visitParam* reads flat JSON: it
# finds the first `"field":` at any depth, so metadata that repeats the name in a nested object may
# differ from the SQL stores (documented in docs/scale.md).
_FIELD = (
    "if(startsWith(visitParamExtractRaw(ifNull(metadata, ''), {field}), '\"'), "
    "visitParamExtractString(ifNull(metadata, ''), {field}), "
    "visitParamExtractRaw(ifNull(metadata, ''), {field}))"
)


@dataclass(frozen=True)
class Window:
    autotune_id: str
    run: int
    matured_after_ms: int
    as_of_ms: int


def _id_type(definition: Definition) -> str:
    # Ingestion stores user ids under "userID"; SDKs match that id type case-insensitively.
    return "userID" if definition.id_type.lower() == "userid" else definition.id_type


def _parts(definition: Definition, window: Window, units: str, events: str, extra: str) -> dict[str, str]:
    values: dict[str, Any] = {
        "autotune_id": literal(window.autotune_id),
        "run": literal(window.run),
        "after": literal(window.matured_after_ms),
        "as_of": literal(window.as_of_ms),
        "window": literal(definition.attribution_ms),
        "no_version": NO_VERSION,
        "units": units,
        "events": events,
    }
    matured = _MATURED.format(extra=extra, **values)
    matured_keys = _MATURED.format(extra="", **values)
    if definition.optimizes_value:
        raw = _FIELD.format(field=literal(definition.metadata_field)) if definition.metadata_field else "value"
        number = _NUMBER
    else:
        raw, number = "'1'", "1.0"
    value_filter = f" AND value = {literal(definition.success_event_value)}" if definition.success_event_value else ""
    hits = _HITS.format(
        matured_keys=matured_keys,
        raw=raw,
        event_name=literal(definition.success_event),
        id_type=literal(_id_type(definition)),
        value_filter=value_filter,
        **values,
    )
    return {"matured": matured, "hits": hits, "number": number}


def aggregates_sql(definition: Definition, window: Window, *, units: str, events: str) -> str:
    """Per-(variant, period) sums of the units matured in the window: columns v, p, units, converted,
    successes, total, total_sq (rejected = converted - successes)."""
    return _AGGREGATES.format(**_parts(definition, window, units, events, ""))


def units_sql(definition: Definition, window: Window, *, units: str, events: str) -> str:
    """Every matured unit with its features and outcome, in (first exposure, unit id) order (contextual)."""
    extra = (
        ",\n           argMin(explore, first_exposure_ms) AS ex"
        ",\n           argMin(ifNull(features, ''), first_exposure_ms) AS feat"
        f",\n           argMin(ifNull(propensity, {NO_PROPENSITY}), first_exposure_ms) AS prop"
    )
    return _UNITS.format(**_parts(definition, window, units, events, extra))
