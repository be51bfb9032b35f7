"""The attribution query in ClickHouse: the same aggregates and per-unit rows as `store.attribution`.

One text runs unchanged on ClickHouse 18.16 (Debian's server) and 26.x (chdb): no CTEs, no window
functions, no JSONExtract, joins on equality only (the time conditions go in WHERE or in -If combinators). Its parts:

- matured units: the rows of (autotune, run) first exposed in the window, read as stored; the few units
  with a `late` row (an earlier exposure that arrived after a later one was stored, copied to
  `late_units`) are read from `late_units`, grouped with `argMin(..., first_exposure_ms)` and left
  out unless their earliest exposure is in the window, as the SQL stores (which keep only the
  earliest row) would;
- hits: the success events in the window's time bound (`previous as_of - W < time <= as_of`, redundant
  but what keeps an hourly update's scan short) joined to those units, kept in
  `[first exposure, first exposure + W]`; the first one per unit is `argMin(value, (time_ms,
  dedup_key))` (ties in time broken by the content hash, like the SQL path; the pair is written as one
  byte string, `EVENT_ORDER`), so an event stored twice changes nothing;
- the sums per (variant, period), in one of two forms chosen by the read (`aggregates_sql`): the full
  recompute counts exposed units from the units alone and converted ones from the hits (two small
  aggregates); a windowed (hourly) read joins the units to their events once and groups by unit
  (`countIf` / `argMinIf`, the time conditions inside the -If), which is ~30% faster there but 1.6x
  slower over every unit.

On a cluster this text runs on every shard over its local tables (units and events are sharded by
`cityHash64(unit_id)`, so each unit's join is shard-local) and the per-shard sums are added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openautotune.domain.autotune import Definition
from openautotune.store.attribution import BEGINNING_MS
from openautotune.store.clickhouse.client import literal
from openautotune.store.clickhouse.schema import late_units_name

# A NULL allocation version (or propensity) read through argMin, which skips NULLs, as a sentinel.
NO_VERSION = -1
NO_PROPENSITY = -1.0

# The matured units, one row each. Most units have one row (the writer skips what is stored): they are
# read as they are, with no GROUP BY over every unit (that alone cost more than the whole query). A unit
# whose earlier exposure arrived after a later one was stored has two rows, the earlier one flagged
# `late` and copied to `late_units`; those few units are grouped with argMin and kept only when their
# earliest exposure is in the window, as the SQL stores (which keep only the earliest row) would. A
# late row is earlier than every row stored before it, so a late unit's earliest exposure is among its
# late rows: the second branch reads only those, from `late_units`, and so does the set the first
# branch leaves out. Both read a table as small as late exposures are rare, not the run's `late`
# column (about 2.2 ms a read on 2M units against 1.7 ms; the rest of the late handling's ~4 ms of a
# 19 ms hourly read is per-subquery planning), and an hourly update's cost follows the new units.
_MATURED = """
    SELECT unit_id, variant_id AS v, ifNull(allocation_version, {no_version}) AS p,
           first_exposure_ms AS first_ms{plain}
    FROM {units}
    WHERE autotune_id = {autotune_id} AND run = {run}
      AND first_exposure_ms > {after} - {window} AND first_exposure_ms <= {as_of} - {window}
      AND holdout = 0 AND unit_id NOT IN ({late_unit_ids})
    UNION ALL
    SELECT unit_id, argMin(variant_id, first_exposure_ms) AS v,
           argMin(ifNull(allocation_version, {no_version}), first_exposure_ms) AS p,
           min(first_exposure_ms) AS first_ms{grouped}
    FROM {late_units}
    WHERE autotune_id = {autotune_id} AND run = {run} AND holdout = 0
      AND first_exposure_ms <= {as_of} - {window}
    GROUP BY unit_id
    HAVING first_ms > {after} - {window}"""

LATE_UNIT_IDS = "SELECT unit_id FROM {late_units} WHERE autotune_id = {autotune_id} AND run = {run}"

# The order of a unit's success events, (time_ms, dedup_key), as one String that compares byte by
# byte the same way: the time's 8 bytes big-endian with the sign bit flipped (unsigned bytes then
# order as the signed times do), then the key. `argMin` over a String compares bytes; over the tuple it
# compared generic values, 12-15 ms of a 0.19 s full recompute of 2M units. `reinterpretAsString`
# drops trailing zero bytes (little-endian: the high ones); with the sign bit flipped the high byte is
# zero only for times more than 2^63 - 2^56 ms (290 million years) before 1970, so the prefix is
# always 8 bytes long.
EVENT_ORDER = (
    "concat(reverse(reinterpretAsString(bitXor(toUInt64(time_ms), toUInt64(9223372036854775808)))), dedup_key)"
)

# The success events scanned in `(events_after, as_of]`, each with its `event_order` and value text:
# the (small) left side of every join that finds a unit's first success (here and in health.py).
_SUCCESS_EVENTS = f"""
            SELECT unit_id, time_ms, {EVENT_ORDER} AS event_order, ifNull({{raw}}, '') AS raw
            FROM {{events}}
            WHERE event_name = {{event_name}} AND id_type = {{id_type}}
              AND time_ms > {{events_after}} AND time_ms <= {{as_of}}{{value_filter}}"""

_HITS = """
    SELECT unit_id{carry}, argMin(raw, event_order) AS first_raw
    FROM (
        SELECT unit_id, v, p, first_ms, time_ms, event_order, raw
        FROM ({success_events}) AS e ALL INNER JOIN ({matured_keys}) AS m USING unit_id
        WHERE time_ms >= first_ms AND time_ms <= first_ms + {window}
    )
    GROUP BY unit_id"""

# The full recompute (every unit of the run): exposed units per (variant, period) straight from the
# matured rows, converted ones from the hits: two small aggregates, told apart by `kind` and added by
# the caller. The matured units are read twice, but a GROUP BY over every unit (the one-pass form
# below) made this read 1.6x slower (0.35 s vs 0.22 s on 2M units).
_AGGREGATES = """
SELECT 'units' AS kind, v, p, count() AS n, toUInt64(0) AS converted, toUInt64(0) AS successes,
       toFloat64(0) AS total, toFloat64(0) AS total_sq
FROM ({matured}) GROUP BY v, p
UNION ALL
SELECT 'hits' AS kind, v, p, toUInt64(0) AS n, count() AS converted, count(x) AS successes,
       sum(ifNull(x, 0)) AS total, sum(ifNull(x * x, 0)) AS total_sq
FROM (SELECT v, p, {number} AS x FROM ({hits_carrying}))
GROUP BY v, p"""

# A windowed read (an hourly update: few units): one pass. Every matured unit LEFT JOINed to the
# filtered success events and grouped by unit, counting its hits in [first exposure, + W] and taking
# the first one's value (argMinIf by `EVENT_ORDER`); then summed per (variant, period). A unit
# with no event gets the join's defaults (time_ms 0, raw ''), which fail the If-conditions because
# its first exposure is after 0 (this form is used only when `after - W >= 0`, see `aggregates_sql`).
# About 30% faster than the two-part form on an hourly read (it reads the matured units once). Rows
# have the same shape as `_AGGREGATES`'s, of kind `both`.
_AGGREGATES_WINDOWED = """
SELECT 'both' AS kind, v, p, count() AS n, countIf(hits > 0) AS converted, count(x) AS successes,
       sum(ifNull(x, 0)) AS total, sum(ifNull(x * x, 0)) AS total_sq
FROM (
    SELECT v, p, hits, if(hits > 0, {number}, NULL) AS x
    FROM (
        SELECT unit_id, any(v) AS v, any(p) AS p,
               countIf(time_ms >= first_ms AND time_ms <= first_ms + {window}) AS hits,
               argMinIf(raw, event_order, time_ms >= first_ms AND time_ms <= first_ms + {window})
                   AS first_raw
        FROM ({matured}) AS m ALL LEFT JOIN ({success_events}) AS e USING unit_id
        GROUP BY unit_id
    )
)
GROUP BY v, p"""

_UNITS = """
SELECT unit_id, v, p, ex, feat, prop, hit, {number} AS x, first_ms
FROM ({matured}) AS m ANY LEFT JOIN (SELECT unit_id, 1 AS hit, first_raw FROM ({hits})) AS h USING unit_id
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


@dataclass(frozen=True)
class SuccessTerms:
    """What a success is, as SQL pieces every ClickHouse text shares (attribution here, the health
    reads in `health.py`): the success event's name and id type, the `value = ...` filter, its value as
    text (`raw`) and that text as a number or NULL (`number`, over a column named `first_raw`)."""

    event_name: str
    id_type: str
    value_filter: str
    raw: str
    number: str


def success_events_sql(
    success: SuccessTerms, *, events: str, events_after: str, as_of: str, raw: str | None = None
) -> str:
    """The success events of `events` in `(events_after, as_of]` (SQL expressions), with their value
    text `raw` (the success's own by default)."""
    return _SUCCESS_EVENTS.format(
        raw=success.raw if raw is None else raw,
        events=events,
        event_name=success.event_name,
        id_type=success.id_type,
        events_after=events_after,
        as_of=as_of,
        value_filter=success.value_filter,
    )


def success_terms(definition: Definition) -> SuccessTerms:
    if definition.optimizes_value:
        raw = _FIELD.format(field=literal(definition.metadata_field)) if definition.metadata_field else "value"
        number = _NUMBER
    else:
        raw, number = "'1'", "1.0"
    value_filter = f" AND value = {literal(definition.success_event_value)}" if definition.success_event_value else ""
    return SuccessTerms(literal(definition.success_event), literal(_id_type(definition)), value_filter, raw, number)


def _parts(definition: Definition, window: Window, units: str, events: str, contextual: bool) -> dict[str, str]:
    values: dict[str, Any] = {
        "autotune_id": literal(window.autotune_id),
        "run": literal(window.run),
        "after": literal(window.matured_after_ms),
        "as_of": literal(window.as_of_ms),
        "window": literal(definition.attribution_ms),
        "no_version": NO_VERSION,
        "units": units,
        "late_units": late_units_name(units),
        "events": events,
    }
    values["late_unit_ids"] = LATE_UNIT_IDS.format(**values)
    plain, grouped = (_CONTEXT_PLAIN, _CONTEXT_GROUPED) if contextual else ("", "")
    matured = _MATURED.format(plain=plain, grouped=grouped, **values)
    matured_keys = _MATURED.format(plain="", grouped="", **values)
    success = success_terms(definition)
    number = success.number
    success_events = success_events_sql(
        success, events=events, events_after=f"{values['after']} - {values['window']}", as_of=values["as_of"]
    )
    hit_values = {"matured_keys": matured_keys, "success_events": success_events, **values}
    return {
        "matured": matured,
        "success_events": success_events,
        "window": values["window"],
        "hits": _HITS.format(carry="", **hit_values),
        "hits_carrying": _HITS.format(carry=", any(v) AS v, any(p) AS p", **hit_values),
        "number": number,
    }


_CONTEXT_PLAIN = f", explore AS ex, ifNull(features, '') AS feat, ifNull(propensity, {NO_PROPENSITY}) AS prop"
_CONTEXT_GROUPED = (
    ", argMin(explore, first_exposure_ms) AS ex, argMin(ifNull(features, ''), first_exposure_ms) AS feat"
    f", argMin(ifNull(propensity, {NO_PROPENSITY}), first_exposure_ms) AS prop"
)


def is_windowed(definition: Definition, window: Window) -> bool:
    """Whether the read takes the one-pass form: an incremental read (not from the beginning) whose
    earliest matured exposure is after time 0, so a join default (time 0) can never count as a hit."""
    return window.matured_after_ms != BEGINNING_MS and window.matured_after_ms - definition.attribution_ms >= 0


def aggregates_sql(definition: Definition, window: Window, *, units: str, events: str) -> str:
    """Sums of the units matured in the window: rows (kind, v, p, n, converted, successes, total,
    total_sq), each row holding the part of the sums it knows (zeros elsewhere): kind `units` the
    exposed units (n), kind `hits` the converted ones and their values, kind `both` everything. The
    caller adds the rows per (v, p), over shards too."""
    text = _AGGREGATES_WINDOWED if is_windowed(definition, window) else _AGGREGATES
    return text.format(**_parts(definition, window, units, events, contextual=False))


def units_sql(definition: Definition, window: Window, *, units: str, events: str) -> str:
    """Every matured unit with its features and outcome, in (first exposure, unit id) order (contextual)."""
    return _UNITS.format(**_parts(definition, window, units, events, contextual=True))
