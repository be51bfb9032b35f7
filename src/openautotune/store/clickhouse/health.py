"""The reads of an update's holdout and delayed-conversion parts in ClickHouse: the same answers as
`store.attribution.matured_aggregates(holdout=True)`, `store.delay.delay_histogram` and
`store.delay.immature_cells` (guardrails need nothing new: they are attribution's aggregates with the
guardrail event as the outcome, `ClickHouseEvents.matured_aggregates`).

The rules are those of `attribution.py` (read its docstring): one text that runs unchanged on
ClickHouse 18.16 and 26.x (no CTEs, no window functions, no JSONExtract, joins on equality only), a
success is what it is there (same value text, number grammar and id type), a unit's first success
event is `argMin(..., EVENT_ORDER)` (time, then dedup_key), and on a cluster the text runs on every shard over its
local tables and the caller adds the per-shard sums. The units are read the same way too: most units
have one row and are read as stored; the few with a `late` row are read from `late_units`, grouped
with `argMin(..., first_exposure_ms)` and kept when their earliest exposure is in range. One difference: the holdout
flag of a late unit is its earliest row's (`argMin(holdout, ...)`, as the SQL stores keep it), so every
unit is either the bandit's or the holdout's, never both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openautotune.domain.autotune import Definition
from openautotune.store.attribution import Aggregate

# Shared with the attribution query so a success means the same thing in every read.
from openautotune.store.clickhouse.attribution import LATE_UNIT_IDS, success_events_sql, success_terms
from openautotune.store.clickhouse.client import literal
from openautotune.store.clickhouse.schema import late_units_name
from openautotune.store.delay import ImmatureCell

# The units of (autotune, run) whose earliest exposure is in `(low, high]`, one row each, with the
# holdout flag `h` (filtered by `{plain_holdout}` / `{grouped_holdout}` when the read wants one side).
_UNITS = """
    SELECT unit_id, variant_id AS v, ifNull(allocation_version, 0) AS p, first_exposure_ms AS first_ms,
           holdout AS h
    FROM {units}
    WHERE autotune_id = {autotune_id} AND run = {run}
      AND first_exposure_ms > {low} AND first_exposure_ms <= {high}{plain_holdout}
      AND unit_id NOT IN ({late_unit_ids})
    UNION ALL
    SELECT unit_id, argMin(variant_id, first_exposure_ms) AS v,
           argMin(ifNull(allocation_version, 0), first_exposure_ms) AS p,
           min(first_exposure_ms) AS first_ms, argMin(holdout, first_exposure_ms) AS h
    FROM {late_units}
    WHERE autotune_id = {autotune_id} AND run = {run} AND first_exposure_ms <= {high}
    GROUP BY unit_id
    HAVING first_ms > {low}{grouped_holdout}"""

# Each unit's first success event in `[first exposure, first exposure + W]` (and in the scan's time
# bound `(events_after, as_of]`): when it came and its value text.
_FIRST_HITS = """
    SELECT unit_id, any(v) AS v, any(p) AS p, any(first_ms) AS first_ms, min(time_ms) AS first_time,
           argMin(raw, event_order) AS first_raw
    FROM (
        SELECT unit_id, v, p, first_ms, time_ms, event_order, raw
        FROM ({success_events}) AS e ALL INNER JOIN ({units_in_range}) AS m USING unit_id
        WHERE time_ms >= first_ms AND time_ms <= first_ms + {window}
    )
    GROUP BY unit_id"""

# Sums per (variant, period, key): exposed units from the units, converted ones from the first hits,
# told apart by `kind` (added up by the caller, as for attribution's aggregates).
_SUMS = """
SELECT 'units' AS kind, v, p, k, count() AS n, toUInt64(0) AS successes,
       toFloat64(0) AS total, toFloat64(0) AS total_sq
FROM (SELECT v, p, {key} AS k FROM ({units_in_range}))
GROUP BY v, p, k
UNION ALL
SELECT 'hits' AS kind, v, p, k, count() AS n, count(x) AS successes,
       sum(ifNull(x, 0)) AS total, sum(ifNull(x * x, 0)) AS total_sq
FROM (SELECT v, p, {key} AS k, {number} AS x FROM ({hits}))
GROUP BY v, p, k"""

# Conversion delays of the first hits, counted per bin of `(W + 1) / bins`.
_DELAYS = """
SELECT bin, count() AS n
FROM (SELECT intDiv((first_time - first_ms) * {bins}, {window} + 1) AS bin FROM ({hits}))
GROUP BY bin"""


@dataclass(frozen=True)
class Range:
    """Units of (autotune, run) first exposed in `(low, high]` as SQL expressions, the events scanned
    in `(events_after, as_of]`, and which side: the bandit's (0), the holdout's (1) or both (None)."""

    autotune_id: str
    run: int
    low: str
    high: str
    events_after: str
    as_of_ms: int
    holdout: int | None


def _units_in_range(span: Range, units: str) -> str:
    side = "" if span.holdout is None else f" AND holdout = {span.holdout}"
    keys = {"autotune_id": literal(span.autotune_id), "run": literal(span.run), "late_units": late_units_name(units)}
    return _UNITS.format(
        units=units,
        late_unit_ids=LATE_UNIT_IDS.format(**keys),
        **keys,
        low=span.low,
        high=span.high,
        plain_holdout=side,
        grouped_holdout="" if span.holdout is None else f" AND h = {span.holdout}",
    )


def _hits(definition: Definition, span: Range, units: str, events: str, *, values: bool) -> str:
    success = success_terms(definition)
    success_events = success_events_sql(
        success,
        events=events,
        events_after=span.events_after,
        as_of=literal(span.as_of_ms),
        raw=None if values else "'1'",
    )
    return _FIRST_HITS.format(
        success_events=success_events,
        units_in_range=_units_in_range(span, units),
        window=literal(definition.attribution_ms),
    )


def _sums(definition: Definition, span: Range, key: str, units: str, events: str) -> str:
    return _SUMS.format(
        key=key,
        units_in_range=_units_in_range(span, units),
        hits=_hits(definition, span, units, events, values=True),
        number=success_terms(definition).number,
    )


def _matured(
    autotune_id: str, run: int, definition: Definition, after_ms: int, as_of_ms: int, holdout: int | None
) -> Range:
    """Units matured in `(after, as_of]` (first exposed in `(after - W, as_of - W]`), as attribution reads them."""
    window = literal(definition.attribution_ms)
    return Range(
        autotune_id=autotune_id,
        run=run,
        low=f"{literal(after_ms)} - {window}",
        high=f"{literal(as_of_ms)} - {window}",
        events_after=f"{literal(after_ms)} - {window}",
        as_of_ms=as_of_ms,
        holdout=holdout,
    )


def holdout_aggregates_sql(
    definition: Definition, *, autotune_id: str, run: int, matured_after_ms: int, as_of_ms: int, units: str, events: str
) -> str:
    """Sums of the holdout's units matured in `(matured_after_ms, as_of_ms]`: rows (kind, v, p, k, n,
    successes, total, total_sq) read by `aggregates_from`."""
    span = _matured(autotune_id, run, definition, matured_after_ms, as_of_ms, holdout=1)
    return _sums(definition, span, "toInt64(0)", units, events)


def delay_histogram_sql(
    definition: Definition,
    *,
    autotune_id: str,
    run: int,
    matured_after_ms: int,
    as_of_ms: int,
    bins: int,
    units: str,
    events: str,
) -> str:
    """Conversion delays of every unit (held out or not) matured in the window: rows (bin, n)."""
    span = _matured(autotune_id, run, definition, matured_after_ms, as_of_ms, holdout=None)
    hits = _hits(definition, span, units, events, values=False)
    return _DELAYS.format(bins=literal(bins), window=literal(definition.attribution_ms), hits=hits)


def immature_cells_sql(
    definition: Definition, *, autotune_id: str, run: int, as_of_ms: int, bins: int, units: str, events: str
) -> str:
    """The bandit's units exposed in `(as_of - W, as_of]`, summed per (variant, period, age bin)."""
    window, as_of = literal(definition.attribution_ms), literal(as_of_ms)
    span = Range(
        autotune_id=autotune_id,
        run=run,
        low=f"{as_of} - {window}",
        high=as_of,
        events_after=f"{as_of} - {window}",
        as_of_ms=as_of_ms,
        holdout=0,
    )
    age_bin = f"intDiv(({as_of} - first_ms) * {literal(bins)}, {window})"
    return _sums(definition, span, age_bin, units, events)


def _summed(rows: Sequence[Sequence[Any]]) -> dict[tuple[str, int, int], list[float]]:
    """Per (variant, period, key): [units, converted, successes, total, total_sq], shards added."""
    out: dict[tuple[str, int, int], list[float]] = {}
    for kind, v, p, k, n, successes, total, total_sq in rows:
        sums = out.setdefault((str(v), int(p), int(k)), [0, 0, 0, 0.0, 0.0])
        if kind == "units":
            sums[0] += int(n)
        else:
            sums[1] += int(n)
            sums[2] += int(successes)
            sums[3] += float(total)
            sums[4] += float(total_sq)
    return out


def aggregates_from(rows: Sequence[Sequence[Any]]) -> list[Aggregate]:
    """The rows of `holdout_aggregates_sql` (from every shard) as attribution's aggregates."""
    return [
        Aggregate(
            variant_id=variant,
            period=period,
            units=int(s[0]),
            successes=int(s[2]),
            total=float(s[3]),
            total_sq=float(s[4]),
            rejected=int(s[1]) - int(s[2]),
        )
        for (variant, period, _), s in sorted(_summed(rows).items())
    ]


def histogram_from(rows: Sequence[Sequence[Any]], bins: int) -> list[int]:
    """The rows of `delay_histogram_sql` (from every shard) as counts per bin."""
    counts = [0] * bins
    for bin_, n in rows:
        counts[min(bins - 1, max(0, int(bin_)))] += int(n)
    return counts


def cells_from(rows: Sequence[Sequence[Any]], bins: int) -> list[ImmatureCell]:
    """The rows of `immature_cells_sql` (from every shard) as the SQL store's immature cells."""
    return [
        ImmatureCell(
            variant_id=variant,
            period=period,
            bin=min(bins - 1, max(0, age_bin)),
            units=int(s[0]),
            successes=int(s[2]),
            total=float(s[3]),
            total_sq=float(s[4]),
        )
        for (variant, period, age_bin), s in sorted(_summed(rows).items())
    ]
