"""An autotune's current results, read from its latest update record (reads only, never writes).

The stage is the autotune's own when it is a draft or finished, else the stage of the latest update of
its current run (`exploring` before the first one). Every number comes from that record, so before the
first update all are zero; `weight` is the weight that update computed, except that a finished
autotune shows what it serves: 1 for the winner, 0 for the others.

`mean`, `ci_low`, `ci_high` are the estimator's observed rate (value per unit) and its 95% interval;
`posterior_mean` the posterior's mean; `lift` the relative lift over the leader (the highest P(best))
with a 95% interval (records written before the estimator existed have no variance: no lift).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openautotune.domain.autotune import Autotune, Stage, Status, Variant
from openautotune.store import updates
from openautotune.store.database import Database

if TYPE_CHECKING:  # the lift and verdict need scipy: imported by the first results read, not at server start
    from openautotune.stats.lift import Lift


@dataclass(frozen=True)
class VariantResult:
    id: str
    name: str
    units: int
    successes: int
    total: float
    mean: float
    ci_low: float
    ci_high: float
    probability_of_best: float
    weight: float
    posterior_mean: float = 0.0
    lift: Lift | None = None
    immature_units: int = 0
    """Units still inside their attribution window at the latest update (engine/delayed.py)."""


@dataclass(frozen=True)
class Results:
    id: str
    run: int
    stage: Stage
    as_of_ms: int | None
    winner: Variant | None
    metric: str
    allocation_version: int
    variants: tuple[VariantResult, ...]
    message: str | None
    verdict: str = ""
    estimator: str | None = None
    # Contextual autotunes: the update record's `contextual` part (coefficients, policy value; docs/contextual.md).
    contextual: dict[str, Any] | None = None
    # The bandit against its holdout (the update record's `holdout` block; engine/holdout.py), or None.
    holdout: dict[str, Any] | None = None
    # The latest update's health checks: sample ratio and guardrails (engine/health.py; docs/engine.md).
    health: dict[str, Any] | None = None


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _stage(autotune: Autotune, record: updates.UpdateRecord | None) -> Stage:
    if autotune.status is Status.DRAFT:
        return Stage.DRAFT
    if autotune.status is Status.FINISHED:
        return Stage.FINISHED
    return Stage(record.stage) if record is not None else Stage.EXPLORING


def _lifts(items: list[dict[str, Any]], pob: list[float]) -> list[Lift | None]:
    """Each variant's lift over the leader (the leader's own is 0 with a zero-width interval)."""
    from openautotune.stats.lift import Lift, relative_lift

    if not items or not all(isinstance(item.get("variance"), int | float) for item in items):
        return [None] * len(items)
    leader = max(range(len(pob)), key=lambda k: pob[k])
    reference, reference_variance = _float(items[leader].get("mean")), _float(items[leader].get("variance"))
    return [
        Lift(0.0, 0.0, 0.0)
        if k == leader
        else relative_lift(_float(item.get("mean")), _float(item.get("variance")), reference, reference_variance)
        for k, item in enumerate(items)
    ]


def read_results(db: Database, autotune: Autotune) -> Results:
    """The results of `autotune`'s current run (the caller has read the autotune, so it exists)."""
    from openautotune.engine.verdict import verdict

    with db.read() as conn:
        record = updates.latest_record(conn, autotune.id, autotune.created_ms, autotune.run)
    winner_id = autotune.winner_variant_id if autotune.status is Status.FINISHED else None
    by_id: dict[str, dict[str, Any]] = {}
    if record is not None:
        by_id = {item["id"]: item for item in record.record.get("variants", []) if isinstance(item, dict)}
    items = [by_id.get(variant.id, {}) for variant in autotune.definition.variants]
    pob = [_float(item.get("probabilityOfBest")) for item in items]
    lifts = _lifts(items, pob) if record is not None else [None] * len(items)
    immature = _immature(record.record if record is not None else None, len(items))
    variants = []
    for variant, item, lift, young in zip(autotune.definition.variants, items, lifts, immature, strict=True):
        variants.append(
            VariantResult(
                id=variant.id,
                name=variant.name,
                units=int(_float(item.get("units"))),
                successes=int(_float(item.get("successes"))),
                total=_float(item.get("total")),
                mean=_float(item.get("mean")),
                ci_low=_float(item.get("ciLow")),
                ci_high=_float(item.get("ciHigh")),
                probability_of_best=_float(item.get("probabilityOfBest")),
                weight=_float(item.get("weight")) if winner_id is None else float(variant.id == winner_id),
                posterior_mean=_float(item.get("posteriorMean", item.get("mean"))),
                lift=lift,
                immature_units=young,
            )
        )
    diagnostics = record.record.get("diagnostics", {}) if record is not None else {}
    stage = _stage(autotune, record)
    names = [variant.name for variant in autotune.definition.variants]
    body = record.record if record is not None else None
    estimator = body.get("estimator") if body is not None else None
    return Results(
        id=autotune.id,
        run=autotune.run,
        stage=stage,
        as_of_ms=record.as_of_ms if record is not None else None,
        winner=autotune.winner,
        metric="value" if autotune.definition.optimizes_value else "occurrence",
        allocation_version=autotune.allocation_version,
        variants=tuple(variants),
        message=diagnostics.get("message") if isinstance(diagnostics, dict) else None,
        verdict=verdict(autotune, stage, body, names, pob, lifts),
        estimator=estimator if isinstance(estimator, str) else None,
        contextual=record.record.get("contextual") if record is not None else None,
        holdout=_holdout(autotune, record.record if record is not None else None),
        health=record.record.get("health") if record is not None else None,
    )


def _immature(record: dict[str, Any] | None, count: int) -> list[int]:
    block = record.get("delay") if record is not None else None
    values = block.get("immatureUnits") if isinstance(block, dict) else None
    if isinstance(values, list) and len(values) == count:
        return [int(_float(value)) for value in values]
    return [0] * count


def _holdout(autotune: Autotune, record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The holdout block of the latest record; an empty one (zero units) before the first update."""
    if not autotune.definition.holdout_share:
        return None
    block = record.get("holdout") if record is not None else None
    if isinstance(block, dict):
        return block
    return {
        "percent": autotune.definition.holdout_percent,
        "units": 0,
        "banditUnits": 0,
        "variants": [],
        "holdoutMean": 0.0,
        "banditMean": 0.0,
        "lift": None,
        "relativeLift": None,
        "regretAvoided": None,
        "level": 0.95,
        "message": "no update yet",
    }
