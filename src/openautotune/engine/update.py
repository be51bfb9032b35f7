"""One update of one autotune at `as_of` (engine.md, "Updates"):

lock -> newly matured aggregates (SQL) -> cumulative sums -> stats summary -> stage, weights and
winner -> new allocation when the published thresholds change -> update record. Everything after
the lock happens in ONE write transaction, so an update is either entirely visible or not at all.
Contextual autotunes add one step (`contextual.training.learn`, contextual.md): their policy sets the
weights, publishes a model with each allocation, and never declares a winner.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Connection

from openautotune.clock import Clock
from openautotune.contextual import training as contextual
from openautotune.domain import lifecycle
from openautotune.domain.allocation import cumulative_thresholds, exploration_weights, winner_weights
from openautotune.domain.autotune import Actor, Allocation, Autotune, Definition, Stage, Status
from openautotune.engine import delayed, metric_source_step
from openautotune.engine import holdout as holdout_step
from openautotune.engine.health import HealthOptions, check_health
from openautotune.engine.ingest_lag import DEFAULT_WAIT_SECONDS, wait_for_ingest
from openautotune.stats import (
    DEFAULT_ESTIMATOR,
    DEFAULT_WINNER_RULE,
    ESTIMATORS,
    WINNER_RULES,
    Decision,
    EstimatorName,
    Summary,
    VariantAggregate,
    WinnerRuleName,
    decide,
    summarize,
)
from openautotune.stats.guardrails import exclude
from openautotune.stats.winner_rule import traffic_weights
from openautotune.store import audit, spec_changes, table_statistics, updates
from openautotune.store import autotunes as autotune_store
from openautotune.store import delay as delay_store
from openautotune.store.attribution import BEGINNING_MS, Aggregate, matured_aggregates
from openautotune.store.database import Database
from openautotune.store.event_store import EventStore

ENGINE_ACTOR = Actor(id="engine", name="ENGINE")
DEFAULT_LEASE_MS = 10 * 60_000

log = logging.getLogger("openautotune.engine")

NOT_FOUND = "autotune not found"
LOCKED = "another update of this autotune is running"


def default_owner() -> str:
    """Who holds a lock: host, process and a random part (two threads never share an owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class UpdateOutcome:
    """What one update did, or why it did nothing (`updated` False and a `reason`)."""

    autotune_id: str
    as_of_ms: int
    updated: bool
    reason: str | None = None
    stage: Stage | None = None
    winner_variant_id: str | None = None
    allocation_version: int | None = None
    new_units: int = 0
    pob: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()
    seconds: float = 0.0  # wall time of this update (`update_running` measures it; /metrics shows it)
    health: dict[str, Any] | None = None
    """The record's `health` part (sample ratio, guardrails, exclusions; engine/health.py)."""


def _pooled(definition_ids: Sequence[str], aggregates: Sequence[Aggregate]) -> tuple[list[VariantAggregate], int]:
    """Pool the periods per variant, in definition order; units of unknown variants are counted apart."""
    sums = {variant_id: [0, 0, 0.0, 0.0] for variant_id in definition_ids}
    unknown = 0
    for item in aggregates:
        slot = sums.get(item.variant_id)
        if slot is None:
            unknown += item.units
            continue
        slot[0] += item.units
        slot[1] += item.successes
        slot[2] += item.total
        slot[3] += item.total_sq
    pooled = [
        VariantAggregate(units=int(s[0]), successes=int(s[1]), total=float(s[2]), total_sq=float(s[3]))
        for s in (sums[variant_id] for variant_id in definition_ids)
    ]
    return pooled, unknown


def _periods(definition_ids: Sequence[str], aggregates: Sequence[Aggregate]) -> list[list[VariantAggregate]]:
    """One aggregate per variant (definition order) for every period, in period order."""
    position = {variant_id: k for k, variant_id in enumerate(definition_ids)}
    cells: dict[int, list[VariantAggregate]] = {}
    for item in aggregates:
        k = position.get(item.variant_id)
        if k is None:
            continue
        row = cells.setdefault(item.period, [VariantAggregate(0)] * len(definition_ids))
        row[k] = row[k] + VariantAggregate(item.units, item.successes, item.total, item.total_sq)
    return [cells[period] for period in sorted(cells)]


def _estimator(definition: Definition) -> EstimatorName:
    for name in ESTIMATORS:
        if definition.estimator == name:
            return name
    return DEFAULT_ESTIMATOR


def _winner_rule(definition: Definition) -> WinnerRuleName:
    for name in WINNER_RULES:
        if definition.winner_rule == name:
            return name
    return DEFAULT_WINNER_RULE


def _aggregate_json(item: Aggregate) -> dict[str, Any]:
    return {
        "variantId": item.variant_id,
        "period": item.period,
        "units": item.units,
        "successes": item.successes,
        "total": item.total,
        "totalSq": item.total_sq,
        "rejected": item.rejected,
    }


def _skip(autotune_id: str, as_of_ms: int, reason: str) -> UpdateOutcome:
    return UpdateOutcome(autotune_id=autotune_id, as_of_ms=as_of_ms, updated=False, reason=reason)


def _skip_reason(conn: Connection, autotune: Autotune | None, as_of_ms: int) -> str | None:
    if autotune is None:
        return NOT_FOUND
    if autotune.status is not Status.RUNNING or autotune.started_at_ms is None:
        return f"autotune is {autotune.status.value}, not running"
    if as_of_ms < autotune.started_at_ms:
        return f"as_of {as_of_ms} is before the current run started ({autotune.started_at_ms})"
    last = updates.last_as_of(conn, autotune.id, autotune.created_ms)
    if last is not None and as_of_ms <= last:
        return f"an update at or after as_of already exists (last as_of {last}); as_of never goes backwards"
    return None


def update_autotune(
    db: Database,
    clock: Clock,
    autotune_id: str,
    as_of_ms: int,
    *,
    owner: str | None = None,
    lease_ms: int = DEFAULT_LEASE_MS,
    health: HealthOptions | None = None,
) -> UpdateOutcome:
    """Update one autotune at `as_of_ms`; skips (with a reason) rather than raising."""
    owner = owner or default_owner()
    with db.write() as conn:
        taken = updates.try_lock(conn, autotune_id, owner, clock.now_ms(), lease_ms)
    if not taken:
        return _skip(autotune_id, as_of_ms, LOCKED)
    try:
        prepared = contextual.prepare(db, autotune_id, as_of_ms)  # contextual fits, before the write transaction
        # A metric source is read before the write transaction too; one that fails skips this update.
        sourced = metric_source_step.prepare(db, autotune_id, as_of_ms)
        with db.write() as conn:
            return _update_locked(
                conn,
                clock,
                autotune_id,
                as_of_ms,
                prepared,
                sourced,
                events=db.events,
                options=health or HealthOptions(),
            )
    except metric_source_step.SourceFailed as failure:
        log.warning("update of %s as of %d: %s", autotune_id, as_of_ms, failure.reason)
        metric_source_step.record_failure(db, autotune_id, failure, clock.now_ms())
        return _skip(autotune_id, as_of_ms, failure.reason)
    finally:
        with db.write() as conn:
            updates.unlock(conn, autotune_id, owner)


def update_running(
    db: Database,
    clock: Clock,
    as_of_ms: int | None = None,
    *,
    owner: str | None = None,
    ingest_wait_seconds: float = DEFAULT_WAIT_SECONDS,
    health: HealthOptions | None = None,
) -> list[UpdateOutcome]:
    """Update every running autotune at `as_of_ms` (default: the clock's now), once the batches
    logged before it are processed (or `ingest_wait_seconds` passed: engine/ingest_lag.py)."""
    at = clock.now_ms() if as_of_ms is None else as_of_ms
    wait_for_ingest(db, at, ingest_wait_seconds)
    if not db.is_sqlite:  # PostgreSQL: no join planned blind (store/table_statistics.py)
        with db.write() as conn:
            table_statistics.analyse_stale(conn)
    with db.read() as conn:
        ids = autotune_store.running_ids(conn)
    outcomes = []
    for autotune_id in ids:
        started = time.perf_counter()
        try:
            outcome = update_autotune(db, clock, autotune_id, at, owner=owner, health=health)
            outcomes.append(replace(outcome, seconds=time.perf_counter() - started))
        except Exception as error:  # one autotune's failure must not hold back the others
            log.exception("update of %s as of %d failed", autotune_id, at)
            outcomes.append(_skip(autotune_id, at, f"failed: {type(error).__name__}: {error}"))
    return outcomes


def _update_locked(
    conn: Connection,
    clock: Clock,
    autotune_id: str,
    as_of_ms: int,
    prepared: contextual.Prepared | None = None,
    sourced: metric_source_step.Sourced | None = None,
    *,
    events: EventStore | None = None,
    options: HealthOptions | None = None,
) -> UpdateOutcome:
    autotune = autotune_store.get(conn, autotune_id, for_update=True)
    reason = _skip_reason(conn, autotune, as_of_ms)
    if reason is not None or autotune is None or autotune.started_at_ms is None:
        return _skip(autotune_id, as_of_ms, reason or NOT_FOUND)
    definition = autotune.definition
    key = updates.RunKey(autotune.id, autotune.created_ms, autotune.run)
    previous = updates.last_as_of(conn, autotune.id, autotune.created_ms, autotune.run)
    new = metric_source_step.new_aggregates(sourced, autotune, previous)
    if new is None:  # success data from SDK events
        # Units and events in another store (ClickHouse): read there; a failure there (EventStoreUnavailable)
        # rolls this transaction back, so the next update starts from the same previous as_of.
        read = functools.partial(matured_aggregates, conn) if events is None else events.matured_aggregates
        new = read(
            autotune_id=autotune.id,
            run=autotune.run,
            definition=definition,
            matured_after_ms=BEGINNING_MS if previous is None else previous,
            as_of_ms=as_of_ms,
        )
    updates.add_to_cumulative(conn, key, new)
    cumulative = updates.cumulative(conn, key)
    variant_ids = [variant.id for variant in definition.variants]
    pooled, unknown_units = _pooled(variant_ids, cumulative)
    rule = _winner_rule(definition)
    summary = summarize(
        "value" if definition.optimizes_value else "occurrence",
        pooled,
        lower_is_better=definition.lower_is_better,
        long_term=definition.long_term_share,
        periods=_periods(variant_ids, cumulative),
        estimator=_estimator(definition),
    )
    # Delayed conversions (engine/delayed.py): the allocation may also read immature units; the
    # winner rule below reads the mature summary only.
    carried = (
        delay_store.carried(conn, autotune.id, autotune.created_ms, autotune.run) if previous is not None else None
    )
    delay = delayed.step(
        conn,
        autotune,
        previous,
        as_of_ms,
        carried,
        from_metric_source=definition.metric_source_id is not None,
        events=events,
    )
    allocation_summary = delayed.allocation_summary(
        delay,
        summary,
        variant_ids,
        cumulative,
        lower_is_better=definition.lower_is_better,
        long_term=definition.long_term_share,
    )
    exploring = as_of_ms < autotune.started_at_ms + definition.exploration_ms
    stage = Stage.EXPLORING if exploring else Stage.EXPLOITING
    decision = decide(
        rule,
        means=[v.estimate.mean for v in summary.variants],
        variances=[v.estimate.variance for v in summary.variants],
        pob=summary.pob,
        leader=summary.leader,
        threshold=definition.threshold,
        enough_data=summary.enough_data,
    )
    winner_index = None if exploring else decision.winner
    weights = (
        exploration_weights(definition)
        if exploring
        else traffic_weights(decision, allocation_summary.pob, definition.long_term_share)
    )
    # Contextual autotunes: the personalized policy decides the weights and never declares a winner.
    learned = (
        contextual.learn(conn, autotune, as_of_ms, exploring, prepared, events=events)
        if definition.is_contextual
        else None
    )
    if learned is not None:
        winner_index = None
        weights = learned.weights if learned.weights is not None else weights
    # Health (engine/health.py): the sample-ratio check, and guardrails that can exclude a variant.
    health = check_health(
        conn,
        autotune,
        key,
        cumulative,
        BEGINNING_MS if previous is None else previous,
        as_of_ms,
        options or HealthOptions(),
        pooled=summary.estimator == "pooled",
        events=events,
        explore_traffic=learned.traffic if learned is not None else None,
    )
    winner_index = None if winner_index in health.may_not_win else winner_index
    if health.excluded:
        # A contextual policy withholds an excluded variant entirely (floor 0, contextual/withhold.py).
        floor = 0.0 if learned is not None else definition.long_term_share / len(variant_ids)
        weights = exclude(weights, health.excluded, floor)
    if learned is not None:
        learned = contextual.withhold(conn, autotune, learned, [variant_ids[k] for k in health.excluded])
    now = clock.now_ms()
    after = autotune
    if winner_index is not None:
        stage = Stage.FINISHED
        after = lifecycle.decide(autotune, variant_ids[winner_index], now, ENGINE_ACTOR)
        weights = winner_weights(definition, variant_ids[winner_index])
    thresholds = cumulative_thresholds(weights)
    latest = autotune_store.latest_allocation(conn, autotune.id)
    published: int | None = None
    republish = learned is not None and learned.publishes
    if (
        winner_index is not None
        or republish
        or latest is None
        or latest.run != autotune.run
        or latest.thresholds != thresholds
    ):
        if after is autotune:
            after = replace(autotune, allocation_version=autotune.allocation_version + 1)
        published = after.allocation_version
        autotune_store.save(conn, after)
        autotune_store.insert_allocation(
            conn,
            Allocation(
                autotune_id=autotune.id,
                run=autotune.run,
                version=published,
                as_of_ms=as_of_ms,
                stage=stage,
                weights=tuple(weights),
                thresholds=thresholds,
            ),
        )
        if learned is not None:
            contextual.save(conn, autotune, published, as_of_ms, learned)
        spec_changes.bump(conn, now)
    if winner_index is not None:
        audit.record_change(
            conn,
            "make_decision",
            ENGINE_ACTOR,
            now,
            autotune,
            after,
            detail=(
                f"winner {definition.variants[winner_index].name!r} by the {rule} rule: probability of best "
                f"{summary.pob[winner_index]:.6f} >= {definition.threshold:g} at as_of {as_of_ms}"
                + ("; sequential test passed against every other variant" if rule == "sequential" else "")
            ),
        )
    new_units = sum(item.units for item in new)
    record = _record_json(
        autotune=autotune,
        as_of_ms=as_of_ms,
        previous=previous,
        stage=stage,
        new=new,
        cumulative=cumulative,
        pooled=pooled,
        summary=summary,
        decision=None if exploring else decision,
        weights=weights,
        thresholds=thresholds,
        published=published,
        winner_id=variant_ids[winner_index] if winner_index is not None else None,
        diagnostics={
            "newUnits": new_units,
            "newRejected": sum(item.rejected for item in new),
            "rejected": sum(item.rejected for item in cumulative),
            "unknownVariantUnits": unknown_units,
            "enoughData": summary.enough_data,
            "message": summary.message,
        },
    )
    record["delay"] = _finite(delayed.record_json(delay, variant_ids, allocation_summary))
    record["holdout"] = _finite(holdout_step.step(conn, autotune, previous, as_of_ms, carried, pooled, events=events))
    record["health"] = _finite(health.record)
    if learned is not None:
        record["contextual"] = _finite(learned.record)
    source_entry = metric_source_step.record_read(conn, sourced, now)
    if source_entry is not None:
        record["metricSource"] = source_entry
    updates.insert_record(
        conn,
        updates.UpdateRecord(
            autotune_id=autotune.id,
            incarnation_ms=autotune.created_ms,
            run=autotune.run,
            as_of_ms=as_of_ms,
            computed_ms=now,
            stage=stage.value,
            decision="winner" if winner_index is not None else None,
            allocation_version=published,
            record=record,
        ),
    )
    return UpdateOutcome(
        autotune_id=autotune.id,
        as_of_ms=as_of_ms,
        updated=True,
        stage=stage,
        winner_variant_id=variant_ids[winner_index] if winner_index is not None else None,
        allocation_version=published,
        new_units=new_units,
        pob=summary.pob,
        weights=tuple(weights),
        health=record["health"],
    )


def _record_json(
    *,
    autotune: Autotune,
    as_of_ms: int,
    previous: int | None,
    stage: Stage,
    new: Sequence[Aggregate],
    cumulative: Sequence[Aggregate],
    pooled: Sequence[VariantAggregate],
    summary: Summary,
    decision: Decision | None,
    weights: Sequence[float],
    thresholds: Sequence[int],
    published: int | None,
    winner_id: str | None,
    diagnostics: dict[str, Any],
) -> dict[str, Any]:
    """Everything needed to recompute the decision from the record alone."""
    definition = autotune.definition
    record: dict[str, Any] = _finite(
        {
            "asOf": as_of_ms,
            "previousAsOf": previous,
            "run": autotune.run,
            "stage": stage.value,
            "startedAt": autotune.started_at_ms,
            "explorationWindowMs": definition.exploration_ms,
            "attributionWindowMs": definition.attribution_ms,
            "metric": summary.metric,
            "lowerIsBetter": summary.lower_is_better,
            "longTerm": summary.long_term,
            "winnerThreshold": definition.threshold,
            "winnerRule": _decision_json(decision) if decision is not None else None,
            "estimator": summary.estimator,
            "strata": summary.strata,
            "credibleLevel": summary.credible_level,
            "variants": [
                {
                    "id": variant.id,
                    "name": variant.name,
                    "units": item.units,
                    "successes": sums.successes,
                    "total": sums.total,
                    "totalSq": sums.total_sq,
                    "posterior": dict(item.posterior.params()),
                    "estimator": item.estimate.estimator,
                    "mean": item.estimate.mean,
                    "variance": item.estimate.variance,
                    "posteriorMean": item.mean,
                    "ciLow": item.ci_low,
                    "ciHigh": item.ci_high,
                    "probabilityOfBest": item.pob,
                    "weight": weight,
                }
                for variant, sums, item, weight in zip(
                    definition.variants, pooled, summary.variants, weights, strict=True
                )
            ],
            "new": [_aggregate_json(item) for item in new],
            "cumulative": [_aggregate_json(item) for item in cumulative],
            "weights": list(weights),
            "thresholds": list(thresholds),
            "allocationVersion": published,
            "decision": {"winner": winner_id} if winner_id is not None else None,
            "diagnostics": diagnostics,
        }
    )
    return record


def _decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "rule": decision.rule,
        "leader": decision.leader,
        "winner": decision.winner,
        "probabilityOfBestPassed": decision.pob_passed,
        "comparisons": [
            {"challenger": c.challenger, "logRatio": c.log_ratio, "logBoundary": c.log_boundary, "passed": c.passed}
            for c in decision.comparisons
        ],
        "reason": decision.reason,
    }


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity (PostgreSQL's json type refuses them): such a number becomes null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
