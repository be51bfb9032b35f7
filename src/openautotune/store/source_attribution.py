"""Attribution for autotunes whose success data is a metric source (docs/metric-sources.md).

The same rules as store/attribution.py, with the source's rows in place of SDK events:

- the units that matured in `(previous as_of, as_of]` (first exposure + W), read from our units table;
- a unit's outcome is its FIRST source row (by timestamp; ties by value) with
  `first exposure <= timestamp <= first exposure + W`; for `value` optimization that row's value
  column is the unit's number (not a plain number: the unit scores 0 and counts as rejected); for
  `occurrence`, any such row is a success;
- sums per (variant, period), the same `Aggregate`s the engine adds to its running totals.

The source is read once per update for just those units and the time range they can convert in
(`min first exposure` to `max first exposure + W`), so like the events scan, an update reads only what
the newest units need however long the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from openautotune.domain.autotune import Definition
from openautotune.domain.metric_sources import MetricSource, outcome_number, value_column_for
from openautotune.store.attribution import Aggregate
from openautotune.store.metric_source_reader import SourceFailure, SourceRow, read_rows

_MATURED_UNITS = """
SELECT u.unit_id, u.variant_id, COALESCE(u.allocation_version, 0) AS period, u.first_exposure_ms
FROM units u
WHERE u.autotune_id = :autotune_id AND u.run = :run
  AND u.first_exposure_ms > :matured_after - :window_ms
  AND u.first_exposure_ms <= :as_of - :window_ms
  AND u.holdout = :holdout
"""


class MaturedUnit(NamedTuple):
    """A tuple rather than a frozen dataclass: a backlog holds one per unit, and this builds 3x faster."""

    variant_id: str
    period: int
    first_exposure_ms: int


@dataclass(frozen=True)
class SourceRead:
    """What one update read from a source: the sums, and how many rows it looked at."""

    aggregates: list[Aggregate]
    rows_read: int
    units_matched: int


def matured_units(
    conn: Connection, *, autotune_id: str, run: int, window_ms: int, matured_after_ms: int, as_of_ms: int
) -> dict[str, MaturedUnit]:
    params = {
        "autotune_id": autotune_id,
        "run": run,
        "window_ms": window_ms,
        "matured_after": matured_after_ms,
        "as_of": as_of_ms,
        "holdout": False,  # the holdout's units are compared apart (engine.md, "Holdout")
    }
    # Plain tuples, fetched at once: named attribute access per row cost more than the query itself.
    rows = conn.execute(sa.text(_MATURED_UNITS), params).tuples().all()
    return {
        str(unit_id): MaturedUnit(str(variant_id), int(period), int(first_exposure_ms))
        for unit_id, variant_id, period, first_exposure_ms in rows
    }


def _sort_key(row: SourceRow) -> tuple[int, int, float, str]:
    number = outcome_number(row.value)
    return (row.time_ms, 0 if number is not None else 1, number if number is not None else 0.0, str(row.value))


def first_rows(units: dict[str, MaturedUnit], rows: list[SourceRow], window_ms: int) -> dict[str, SourceRow]:
    """Each matured unit's first row inside its attribution window."""
    firsts: dict[str, SourceRow] = {}
    for row in rows:
        unit = units.get(row.unit_id)
        if unit is None or not unit.first_exposure_ms <= row.time_ms <= unit.first_exposure_ms + window_ms:
            continue
        best = firsts.get(row.unit_id)
        if best is None or _sort_key(row) < _sort_key(best):
            firsts[row.unit_id] = row
    return firsts


def aggregate(units: dict[str, MaturedUnit], firsts: dict[str, SourceRow], optimizes_value: bool) -> list[Aggregate]:
    """Per-(variant, period) sums, in the shape and order of `attribution.matured_aggregates`."""
    cells: dict[tuple[str, int], list[float]] = {}
    for unit_id, unit in units.items():
        cell = cells.setdefault((unit.variant_id, unit.period), [0, 0, 0.0, 0.0, 0])
        cell[0] += 1
        row = firsts.get(unit_id)
        if row is None:
            continue
        x = outcome_number(row.value) if optimizes_value else 1.0
        if x is None:
            cell[4] += 1
            continue
        cell[1] += 1
        cell[2] += x
        cell[3] += x * x
    return [
        Aggregate(
            variant_id=variant_id,
            period=period,
            units=int(c[0]),
            successes=int(c[1]),
            total=float(c[2]),
            total_sq=float(c[3]),
            rejected=int(c[4]),
        )
        for (variant_id, period), c in sorted(cells.items())
    ]


def source_aggregates(source: MetricSource, definition: Definition, units: dict[str, MaturedUnit]) -> SourceRead:
    """The matured `units`' sums with outcomes read from `source`; `SourceFailure` if it cannot be read.

    Called outside any transaction on our own database: a slow source never holds our write lock.
    """
    window_ms = definition.attribution_ms
    value_column = value_column_for(definition, source) if definition.optimizes_value else None
    if definition.optimizes_value and value_column is None:
        raise SourceFailure("the autotune optimizes a value but neither it nor the metric source names a valueColumn")
    if not units:
        return SourceRead([], 0, 0)
    exposures = [unit.first_exposure_ms for unit in units.values()]
    rows = read_rows(source, value_column, min(exposures), max(exposures) + window_ms, units.keys())
    firsts = first_rows(units, rows, window_ms)
    return SourceRead(aggregate(units, firsts, definition.optimizes_value), len(rows), len(firsts))
