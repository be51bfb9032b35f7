"""Two small attribution queries for delayed conversions (engine.md, "Delayed conversions").

- `delay_histogram`: how long the units that matured in `(matured_after, as_of]` took to convert
  (first success event minus first exposure), counted in `bins` equal bins over the attribution
  window. Every unit counts, held out or not: the delay does not depend on who served the variant.
- `immature_cells`: the bandit's units still inside their window at `as_of` (exposed in
  `(as_of - W, as_of]`), counted per (variant, period, age bin), with the success events they have
  sent so far (the unit's first one by time, then `dedup_key`, as for mature units: the content hash,
  not arrival order, breaks a tie, so ClickHouse (`clickhouse/health.py`) picks the same event).

Both use the attribution query's placeholders (`{raw}`, `{number}`, `{value_filter}`) through
`attribution.query_text`, so a success means exactly what it means for mature units, and both read
only the last W of units and events: their cost grows with traffic, never with history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from openautotune.domain.autotune import Definition
from openautotune.store.attribution import query_text, run_outcome_query
from openautotune.store.updates import updates_table

_SUCCESS_JOIN = """JOIN events e
      ON e.event_name = :event_name AND e.id_type = :id_type AND e.unit_id = m.unit_id
     AND e.time_ms >= m.first_exposure_ms"""

_DELAYS = (
    """
WITH m AS (
    SELECT u.unit_id, u.first_exposure_ms
    FROM units u
    WHERE u.autotune_id = :autotune_id AND u.run = :run
      AND u.first_exposure_ms > :matured_after - :window_ms
      AND u.first_exposure_ms <= :as_of - :window_ms
),
hits AS (
    SELECT e.time_ms - m.first_exposure_ms AS delay,
           ROW_NUMBER() OVER (PARTITION BY m.unit_id ORDER BY e.time_ms, e.dedup_key) AS position
    FROM m
    """
    + _SUCCESS_JOIN
    + """
     AND e.time_ms <= m.first_exposure_ms + :window_ms
     AND e.time_ms > :matured_after - :window_ms AND e.time_ms <= :as_of
     {value_filter}
)
SELECT (delay * :bins) / (:window_ms + 1) AS bin, COUNT(*) AS n
FROM hits WHERE position = 1
GROUP BY (delay * :bins) / (:window_ms + 1)
"""
)

_IMMATURE = (
    """
WITH m AS (
    SELECT u.unit_id, u.variant_id, COALESCE(u.allocation_version, 0) AS period, u.first_exposure_ms,
           ((:as_of - u.first_exposure_ms) * :bins) / :window_ms AS bin
    FROM units u
    WHERE u.autotune_id = :autotune_id AND u.run = :run
      AND u.first_exposure_ms > :as_of - :window_ms
      AND u.first_exposure_ms <= :as_of
      AND u.holdout = :holdout
),
cells AS (
    SELECT variant_id, period, bin, COUNT(*) AS units FROM m GROUP BY variant_id, period, bin
),
hits AS (
    SELECT m.variant_id, m.period, m.bin, {raw} AS raw,
           ROW_NUMBER() OVER (PARTITION BY m.unit_id ORDER BY e.time_ms, e.dedup_key) AS position
    FROM m
    """
    + _SUCCESS_JOIN
    + """
     AND e.time_ms > :as_of - :window_ms AND e.time_ms <= :as_of
     {value_filter}
),
firsts AS (
    SELECT variant_id, period, bin, {number} AS x FROM hits WHERE position = 1
),
converted AS (
    SELECT variant_id, period, bin, COUNT(x) AS successes, SUM(x) AS total, SUM(x * x) AS total_sq
    FROM firsts GROUP BY variant_id, period, bin
)
SELECT c.variant_id, c.period, c.bin, c.units,
       COALESCE(v.successes, 0) AS successes,
       COALESCE(v.total, 0) AS total,
       COALESCE(v.total_sq, 0) AS total_sq
FROM cells c
LEFT JOIN converted v ON v.variant_id = c.variant_id AND v.period = c.period AND v.bin = c.bin
ORDER BY c.variant_id, c.period, c.bin
"""
)


@dataclass(frozen=True)
class ImmatureCell:
    """The bandit's immature units of one (variant, period) whose age is in bin `bin` (of `bins`)."""

    variant_id: str
    period: int
    bin: int
    units: int
    successes: int
    total: float
    total_sq: float


def delay_histogram(
    conn: Connection,
    *,
    autotune_id: str,
    run: int,
    definition: Definition,
    matured_after_ms: int,
    as_of_ms: int,
    bins: int,
) -> list[int]:
    """Counts of conversion delays of the newly matured units, bin `j` covering `[j, j+1) x (W+1)/bins`."""
    params = {
        "autotune_id": autotune_id,
        "run": run,
        "matured_after": matured_after_ms,
        "as_of": as_of_ms,
        "bins": bins,
    }
    counts = [0] * bins
    text = query_text(conn.dialect.name, definition, _DELAYS)
    for row in run_outcome_query(conn, text, definition, params):
        counts[min(bins - 1, max(0, int(row.bin)))] += int(row.n)
    return counts


def immature_cells(
    conn: Connection, *, autotune_id: str, run: int, definition: Definition, as_of_ms: int, bins: int
) -> list[ImmatureCell]:
    """The bandit's (not held-out) units exposed less than W before `as_of_ms`, by age bin."""
    params = {"autotune_id": autotune_id, "run": run, "as_of": as_of_ms, "bins": bins, "holdout": False}
    text = query_text(conn.dialect.name, definition, _IMMATURE)
    return [
        ImmatureCell(
            variant_id=str(row.variant_id),
            period=int(row.period),
            bin=min(bins - 1, max(0, int(row.bin))),
            units=int(row.units),
            successes=int(row.successes),
            total=float(row.total),
            total_sq=float(row.total_sq),
        )
        for row in run_outcome_query(conn, text, definition, params)
    ]


def carried(conn: Connection, autotune_id: str, incarnation_ms: int, run: int) -> dict[str, Any]:
    """The `delay` and `holdout` blocks of the run's latest update record, read as two JSON fields.

    Only these small blocks are carried from one update to the next; reading them alone keeps the
    update from parsing the whole previous record (whose `cumulative` list grows with the periods).
    """
    record = updates_table.c.record
    t = updates_table.c
    row = conn.execute(
        sa.select(record["delay"], record["holdout"])
        .where(t.autotune_id == autotune_id, t.incarnation_ms == incarnation_ms, t.run == run)
        .order_by(t.as_of_ms.desc(), t.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return {}
    return {key: value for key, value in zip(("delay", "holdout"), row, strict=True) if isinstance(value, dict)}
