"""Update records (written by the engine) turned into `series.UpdatePoint`s, and other result reads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from openautotune.domain.autotune import Autotune, Stage, Status
from openautotune.engine import history
from openautotune.service import autotunes as autotune_service
from openautotune.service import exposures_log
from openautotune.store.database import Database
from openautotune.web.series import UpdatePoint, VariantState

_EMPTY: Mapping[str, Any] = {}
_NUMBER_TYPES = (int, float)


def _number(value: Any) -> float | None:
    return float(value) if type(value) in _NUMBER_TYPES else None


_STAGES = {stage.value: stage for stage in Stage}


def _stage(text: str) -> Stage:
    return _STAGES.get(text, Stage.EXPLORING)


def point_from_record(autotune: Autotune, as_of_ms: int, stage: str, record: Mapping[str, Any]) -> UpdatePoint:
    """One engine record (its JSON) as an `UpdatePoint`."""
    return point_from_variants(autotune, as_of_ms, stage, record.get("metric"), record.get("variants") or ())


def point_from_variants(
    autotune: Autotune, as_of_ms: int, stage: str, metric: Any, variant_items: Sequence[Any]
) -> UpdatePoint:
    """One record's per-variant numbers in the definition's variant order (missing variants count zero).

    Called once per update for every chart (2,160 times for 90 days of hourly updates): kept tight.
    """
    by_id: dict[str, Mapping[str, Any]] = {}
    for item in variant_items:
        if isinstance(item, Mapping):
            by_id[str(item.get("id"))] = item
    successes_key = "total" if metric == "value" else "successes"
    states: list[VariantState] = []
    for variant in autotune.definition.variants:
        item = by_id.get(variant.id, _EMPTY)
        units = int(_number(item.get("units")) or 0)
        successes = _number(item.get(successes_key)) or 0.0
        # Observed rate (or mean per unit) for charts and tables: the estimator's when the record names
        # one (period-weighted by default), else the pooled one; the interval is the record's.
        counted = units > 0
        observed = _number(item.get("mean")) if "estimator" in item else None
        states.append(
            VariantState(
                variant.id,
                units,
                successes,
                (observed if observed is not None else successes / units) if counted else None,
                _number(item.get("ciLow")) if counted else None,
                _number(item.get("ciHigh")) if counted else None,
                _number(item.get("probabilityOfBest")),
                _number(item.get("weight")) or 0.0,
            )
        )
    return UpdatePoint(as_of_ms=as_of_ms, stage=_stage(stage), variants=tuple(states))


def points(db: Database, autotune: Autotune, cache: PointsCache | None = None) -> list[UpdatePoint]:
    """Every update of the autotune's current run, oldest first (only the new ones read when cached)."""
    if cache is not None:
        return cache.points(db, autotune)
    return [
        point_from_variants(autotune, body.as_of_ms, body.stage, body.metric, body.variants)
        for body in history.run_bodies(db, autotune)
    ]


_RunKey = tuple[str, int, int, tuple[str, ...]]


class PointsCache:
    """The parsed update history of recently viewed runs, topped up with only the records written since.

    Sound because update records are append-only and, within a run, their `as_of` only grows (engine.md:
    updates of one autotune never overlap and `as_of` never goes backwards): every record not yet
    cached has an `as_of` after the last cached one. The key holds the autotune's creation time (a
    deleted and re-created autotune is another history), its run and its variant ids (the points'
    order). Safe across server processes: each keeps its own copy of immutable data.
    """

    def __init__(self, max_runs: int = 32) -> None:
        self._max_runs = max_runs
        self._entries: OrderedDict[_RunKey, tuple[UpdatePoint, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()

    def points(self, db: Database, autotune: Autotune) -> list[UpdatePoint]:
        key: _RunKey = (
            autotune.id,
            autotune.created_ms,
            autotune.run,
            tuple(v.id for v in autotune.definition.variants),
        )
        with self._lock:
            cached = self._entries.get(key, ())
        after = cached[-1].as_of_ms if cached else None
        new = tuple(
            point_from_variants(autotune, body.as_of_ms, body.stage, body.metric, body.variants)
            for body in history.run_bodies(db, autotune, after_as_of_ms=after)
        )
        combined = cached + new
        with self._lock:
            current = self._entries.get(key, ())
            if len(combined) >= len(current):  # another request may have topped it up further meanwhile
                self._entries[key] = combined
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_runs:
                self._entries.popitem(last=False)
        return list(combined)


def latest_points(db: Database, autotunes: Sequence[Autotune]) -> dict[str, UpdatePoint]:
    by_id = {autotune.id: autotune for autotune in autotunes}
    latest = history.latest_records(db, list(autotunes))
    return {
        autotune_id: point_from_record(by_id[autotune_id], record.as_of_ms, record.stage, record.record)
        for autotune_id, record in latest.items()
    }


def daily_exposures(db: Database, autotune: Autotune) -> dict[tuple[int, str], int]:
    return exposures_log.daily_counts(db, autotune.id, autotune.run)


def finished_at(db: Database, autotune: Autotune, run_points: Sequence[UpdatePoint]) -> int | None:
    """When the current run finished: the engine's finishing update, else the latest decision in the audit log."""
    if autotune.status is not Status.FINISHED:
        return None
    for point in reversed(run_points):
        if point.stage is Stage.FINISHED:
            return point.as_of_ms
    for entry in autotune_service.audit_history(db, autotune.id, limit=20):
        if entry.action == "make_decision":
            return entry.at_ms
    return autotune.modified_ms
