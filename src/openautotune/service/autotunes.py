"""Autotune use cases: create, read, update, delete, and the lifecycle (start, decide, reset).

Every mutation runs in one transaction that also writes the audit entry, any new allocation,
and marks the SDK specs as changed, so what SDKs see never disagrees with what the API said.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Connection

from openautotune.clock import Clock
from openautotune.domain import lifecycle, rules
from openautotune.domain.allocation import cumulative_thresholds, exploration_weights, winner_weights
from openautotune.domain.autotune import Actor, Allocation, Autotune, Definition, Stage, Status, Variant
from openautotune.domain.errors import Conflict, FieldProblem, InvalidInput, NotFound
from openautotune.domain.field_limits import reason_problems
from openautotune.domain.ids import autotune_id_from_name, could_be_autotune_id
from openautotune.service import tokens
from openautotune.store import audit, contextual, health, ingest, spec_changes, updates
from openautotune.store import autotunes as autotune_store
from openautotune.store.database import Database

NOT_FOUND = "Autotune Experiment not found."
NAME_IN_USE = "Name is already in use"


@dataclass(frozen=True)
class VariantInput:
    name: str
    json: dict[str, Any]
    size: float | None = None


def _variants(inputs: list[VariantInput], existing: tuple[Variant, ...]) -> tuple[Variant, ...]:
    """Variants keep their ids across edits when their name stays: ids are what SDKs log."""
    ids_by_name = {variant.name: variant.id for variant in existing}
    return tuple(
        Variant(id=ids_by_name.get(item.name) or tokens.opaque_id(), name=item.name, json=item.json, size=item.size)
        for item in inputs
    )


def _definition(fields: Mapping[str, Any], base: Definition | None) -> Definition:
    values = dict(fields)
    values["variants"] = _variants(values["variants"], base.variants if base else ())
    if values.get("feature_list") is not None:
        values["feature_list"] = tuple(values["feature_list"])
    definition = Definition(**values)
    rules.validate(definition)
    return definition


def _get(conn: Connection, autotune_id: str, *, for_update: bool = False) -> Autotune:
    if not could_be_autotune_id(autotune_id):
        raise NotFound(NOT_FOUND)
    autotune = autotune_store.get(conn, autotune_id, for_update=for_update)
    if autotune is None:
        raise NotFound(NOT_FOUND)
    return autotune


def _allocation(autotune: Autotune, now_ms: int) -> Allocation:
    """The allocation a lifecycle change publishes at once: exploration split or the winner."""
    definition = autotune.definition
    if autotune.status is Status.FINISHED and autotune.winner_variant_id is not None:
        weights, stage = winner_weights(definition, autotune.winner_variant_id), Stage.FINISHED
    else:
        weights, stage = exploration_weights(definition), Stage.EXPLORING
    return Allocation(
        autotune_id=autotune.id,
        run=autotune.run,
        version=autotune.allocation_version,
        as_of_ms=now_ms,
        stage=stage,
        weights=weights,
        thresholds=cumulative_thresholds(weights),
    )


def _record(
    conn: Connection,
    action: str,
    actor: Actor,
    now_ms: int,
    before: Autotune | None,
    after: Autotune | None,
    detail: str = "",
) -> None:
    audit.record_change(conn, action, actor, now_ms, before, after, detail)
    spec_changes.bump(conn, now_ms)


def create(db: Database, clock: Clock, actor: Actor, fields: Mapping[str, Any]) -> Autotune:
    definition = _definition(fields, None)
    autotune_id = autotune_id_from_name(definition.name)
    if not autotune_id.strip("_"):
        raise InvalidInput.field("name", "must contain at least one letter or digit")
    now = clock.now_ms()
    autotune = Autotune(
        id=autotune_id,
        definition=definition,
        status=Status.DRAFT,
        run=1,
        salt=tokens.salt(),
        started_at_ms=None,
        winner_variant_id=None,
        version=1,
        allocation_version=0,
        created_ms=now,
        modified_ms=now,
        creator=actor,
        modifier=actor,
    )
    with db.write() as conn:
        if autotune_store.exists(conn, autotune_id):
            raise Conflict(NAME_IN_USE)
        autotune_store.insert(conn, autotune)
        _record(conn, "create", actor, now, None, autotune)
    return autotune


def get(db: Database, autotune_id: str) -> Autotune:
    with db.read() as conn:
        return _get(conn, autotune_id)


def page(db: Database, limit: int, page_number: int) -> tuple[list[Autotune], int]:
    with db.read() as conn:
        return autotune_store.page(conn, limit, (page_number - 1) * limit)


def mutate(
    db: Database,
    clock: Clock,
    actor: Actor,
    autotune_id: str,
    action: str,
    change: Callable[[Autotune, int], Autotune],
    detail: str = "",
) -> Autotune:
    now = clock.now_ms()
    with db.write() as conn:
        before = _get(conn, autotune_id, for_update=True)
        after = change(before, now)
        autotune_store.save(conn, after)
        if after.run != before.run or (after.started_at_ms and not before.started_at_ms):
            autotune_store.start_run(conn, after)
        if after.allocation_version != before.allocation_version:
            autotune_store.insert_allocation(conn, _allocation(after, now))
        _record(conn, action, actor, now, before, after, detail)
    return after


def _check_echoes(autotune: Autotune, echoes: Mapping[str, Any]) -> None:
    """Read-only fields clients echo back must match; they change only through their endpoints."""
    problems: list[FieldProblem] = []
    if "id" in echoes and echoes["id"] != autotune.id:
        problems.append(FieldProblem("id", "must equal the id in the path; an autotune's id never changes"))
    if "isStarted" in echoes and echoes["isStarted"] != autotune.is_started:
        problems.append(FieldProblem("isStarted", "changes only through /start, /make_decision and /reset"))
    if "name" in echoes and echoes["name"] != autotune.definition.name:
        problems.append(FieldProblem("name", "is set at creation and cannot change (the id derives from it)"))
    if problems:
        raise InvalidInput(problems)


def _apply_definition(autotune: Autotune, definition: Definition, now: int, actor: Actor) -> Autotune:
    if autotune.is_started:
        problems = rules.frozen_changes(autotune.definition, definition)
        if problems:
            raise InvalidInput(problems)
    return replace(autotune, definition=definition, version=autotune.version + 1, modified_ms=now, modifier=actor)


def full_update(
    db: Database, clock: Clock, actor: Actor, autotune_id: str, fields: Mapping[str, Any], echoes: Mapping[str, Any]
) -> Autotune:
    def change(autotune: Autotune, now: int) -> Autotune:
        _check_echoes(autotune, echoes)
        definition = _definition({**fields, "name": autotune.definition.name}, autotune.definition)
        return _apply_definition(autotune, definition, now, actor)

    return mutate(db, clock, actor, autotune_id, "update", change)


def partial_update(
    db: Database, clock: Clock, actor: Actor, autotune_id: str, fields: Mapping[str, Any], echoes: Mapping[str, Any]
) -> Autotune:
    def change(autotune: Autotune, now: int) -> Autotune:
        _check_echoes(autotune, echoes)
        current = autotune.definition
        merged: dict[str, Any] = {
            key: getattr(current, key) for key in Definition.__dataclass_fields__ if key != "variants"
        }
        merged["variants"] = [VariantInput(v.name, v.json, v.size) for v in current.variants]
        merged.update(fields)
        merged["name"] = current.name
        return _apply_definition(autotune, _definition(merged, current), now, actor)

    return mutate(db, clock, actor, autotune_id, "update", change)


def delete(db: Database, clock: Clock, actor: Actor, autotune_id: str) -> None:
    now = clock.now_ms()
    with db.write() as conn:
        before = _get(conn, autotune_id, for_update=True)
        autotune_store.delete(conn, autotune_id)
        # A namesake created later starts at run 1 again: it must not inherit this one's data.
        ingest.forget_autotune(conn, autotune_id)
        updates.delete_autotune(conn, autotune_id)
        health.delete_autotune(conn, autotune_id)
        contextual.delete_policies(conn, autotune_id)
        _record(conn, "delete", actor, now, before, None)
        if db.events is not None:
            # Units in an event store of their own (ClickHouse) go too, submitted before the main database
            # commits: if that store is down this raises EventStoreUnavailable (503) and nothing is
            # deleted, since a namesake (same id, run 1) would read the units left behind (docs/scale.md).
            db.events.forget_autotune(autotune_id)
    if db.events is not None:
        # ClickHouse deletes in the background: wait (bounded) outside the main transaction, so that
        # a namesake created after this answer starts empty without holding the main write lock.
        db.events.wait_forgotten(autotune_id)


def start(db: Database, clock: Clock, actor: Actor, autotune_id: str) -> Autotune:
    return mutate(db, clock, actor, autotune_id, "start", lambda a, now: lifecycle.start(a, now, actor))


def make_decision(
    db: Database, clock: Clock, actor: Actor, autotune_id: str, variant_ref: str, reason: str
) -> Autotune:
    problems = reason_problems(reason)
    if problems:
        raise InvalidInput(problems)
    return mutate(
        db,
        clock,
        actor,
        autotune_id,
        "make_decision",
        lambda a, now: lifecycle.decide(a, variant_ref, now, actor),
        detail=reason,
    )


def reset(db: Database, clock: Clock, actor: Actor, autotune_id: str) -> Autotune:
    return mutate(db, clock, actor, autotune_id, "reset", lambda a, now: lifecycle.reset(a, now, tokens.salt(), actor))


def audit_history(db: Database, autotune_id: str, limit: int = 100) -> list[audit.AuditEntry]:
    with db.read() as conn:
        _get(conn, autotune_id)
        return audit.history(conn, autotune_id, limit)
