"""Update records (written by the engine) turned into `series.UpdatePoint`s, and other result reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openautotune.domain.autotune import Autotune, Stage, Status
from openautotune.engine import history
from openautotune.service import autotunes as autotune_service
from openautotune.service import exposures_log
from openautotune.store.database import Database
from openautotune.web.series import UpdatePoint, VariantState


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _stage(text: str) -> Stage:
    try:
        return Stage(text)
    except ValueError:
        return Stage.EXPLORING


def point_from_record(autotune: Autotune, as_of_ms: int, stage: str, record: Mapping[str, Any]) -> UpdatePoint:
    """One record's per-variant numbers in the definition's variant order (missing variants count zero)."""
    by_id: dict[str, Mapping[str, Any]] = {}
    for item in record.get("variants") or ():
        if isinstance(item, Mapping) and isinstance(item.get("id"), str):
            by_id[item["id"]] = item
    value_metric = record.get("metric") == "value"
    states: list[VariantState] = []
    for variant in autotune.definition.variants:
        item = by_id.get(variant.id, {})
        units = int(_number(item.get("units")) or 0)
        successes = _number(item.get("total" if value_metric else "successes")) or 0.0
        # Observed rate (or mean per unit) for charts and tables; the interval comes from the posterior.
        mean = successes / units if units > 0 else None
        states.append(
            VariantState(
                variant_id=variant.id,
                units=units,
                successes=successes,
                mean=mean,
                ci_low=_number(item.get("ciLow")) if units > 0 else None,
                ci_high=_number(item.get("ciHigh")) if units > 0 else None,
                probability_of_best=_number(item.get("probabilityOfBest")),
                weight=_number(item.get("weight")) or 0.0,
            )
        )
    return UpdatePoint(as_of_ms=as_of_ms, stage=_stage(stage), variants=tuple(states))


def points(db: Database, autotune: Autotune) -> list[UpdatePoint]:
    """Every update of the autotune's current run, oldest first."""
    return [
        point_from_record(autotune, record.as_of_ms, record.stage, record.record)
        for record in history.run_records(db, autotune)
    ]


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
