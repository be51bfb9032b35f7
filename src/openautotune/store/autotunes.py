"""Autotunes, their runs and their allocations."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from openautotune.domain.autotune import (
    Actor,
    Allocation,
    Autotune,
    Definition,
    Stage,
    Status,
    UserIdOverride,
    Variant,
)
from openautotune.domain.guardrails import guardrails_from_json
from openautotune.store.metadata import EpochMs, metadata

autotunes_table = sa.Table(
    "autotunes",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("run", sa.Integer, nullable=False),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("started_at_ms", EpochMs, nullable=True),
    sa.Column("winner_variant_id", sa.String(64), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("allocation_version", sa.Integer, nullable=False),
    sa.Column("created_ms", EpochMs, nullable=False),
    sa.Column("modified_ms", EpochMs, nullable=False),
    sa.Column("creator", sa.JSON, nullable=False),
    sa.Column("modifier", sa.JSON, nullable=False),
    sa.Column("user_id_overrides", sa.JSON, nullable=False),
)

runs_table = sa.Table(
    "runs",
    metadata,
    sa.Column("autotune_id", sa.String(200), primary_key=True),
    sa.Column("run", sa.Integer, primary_key=True),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("started_at_ms", EpochMs, nullable=False),
    sa.Column("ended_ms", EpochMs, nullable=True),
)

allocations_table = sa.Table(
    "allocations",
    metadata,
    sa.Column("autotune_id", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("run", sa.Integer, nullable=False),
    sa.Column("as_of_ms", EpochMs, nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("weights", sa.JSON, nullable=False),
    sa.Column("thresholds", sa.JSON, nullable=False),
)


def definition_to_json(definition: Definition) -> dict[str, Any]:
    data = dataclasses.asdict(definition)
    if definition.feature_list is not None:
        data["feature_list"] = list(definition.feature_list)
    return data


def definition_from_json(data: dict[str, Any]) -> Definition:
    fields = dict(data)
    fields["variants"] = tuple(Variant(**variant) for variant in fields["variants"])
    if fields.get("feature_list") is not None:
        fields["feature_list"] = tuple(fields["feature_list"])
    fields["guardrails"] = guardrails_from_json(fields.get("guardrails"))
    return Definition(**fields)


def _actor(data: dict[str, Any]) -> Actor:
    return Actor(id=data["id"], name=data["name"], email=data.get("email"))


def _row_to_autotune(row: sa.Row[tuple[object, ...]]) -> Autotune:
    m = row._mapping
    return Autotune(
        id=m["id"],
        definition=definition_from_json(m["definition"]),
        status=Status(m["status"]),
        run=m["run"],
        salt=m["salt"],
        started_at_ms=m["started_at_ms"],
        winner_variant_id=m["winner_variant_id"],
        version=m["version"],
        allocation_version=m["allocation_version"],
        created_ms=m["created_ms"],
        modified_ms=m["modified_ms"],
        creator=_actor(m["creator"]),
        modifier=_actor(m["modifier"]),
        user_id_overrides=tuple(
            UserIdOverride(
                group_id=o["group_id"],
                ids=tuple(o["ids"]),
                environment=o.get("environment"),
                unit_type=o.get("unit_type"),
            )
            for o in m["user_id_overrides"]
        ),
    )


def _values(autotune: Autotune) -> dict[str, Any]:
    return {
        "id": autotune.id,
        "definition": definition_to_json(autotune.definition),
        "status": autotune.status.value,
        "run": autotune.run,
        "salt": autotune.salt,
        "started_at_ms": autotune.started_at_ms,
        "winner_variant_id": autotune.winner_variant_id,
        "version": autotune.version,
        "allocation_version": autotune.allocation_version,
        "created_ms": autotune.created_ms,
        "modified_ms": autotune.modified_ms,
        "creator": dataclasses.asdict(autotune.creator),
        "modifier": dataclasses.asdict(autotune.modifier),
        "user_id_overrides": [{**dataclasses.asdict(o), "ids": list(o.ids)} for o in autotune.user_id_overrides],
    }


def autotune_to_json(autotune: Autotune) -> dict[str, Any]:
    """The stored form, also used for before/after snapshots in the audit log."""
    return _values(autotune)


def insert(conn: Connection, autotune: Autotune) -> None:
    conn.execute(autotunes_table.insert().values(**_values(autotune)))


def save(conn: Connection, autotune: Autotune) -> None:
    conn.execute(autotunes_table.update().where(autotunes_table.c.id == autotune.id).values(**_values(autotune)))


def get(conn: Connection, autotune_id: str, *, for_update: bool = False) -> Autotune | None:
    query = sa.select(autotunes_table).where(autotunes_table.c.id == autotune_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _row_to_autotune(row) if row is not None else None


def exists(conn: Connection, autotune_id: str) -> bool:
    query = sa.select(autotunes_table.c.id).where(autotunes_table.c.id == autotune_id)
    return conn.execute(query).first() is not None


def page(conn: Connection, limit: int, offset: int) -> tuple[list[Autotune], int]:
    total = int(conn.execute(sa.select(sa.func.count()).select_from(autotunes_table)).scalar_one())
    query = (
        sa.select(autotunes_table)
        .order_by(autotunes_table.c.created_ms, autotunes_table.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [_row_to_autotune(row) for row in conn.execute(query)], total


def readable_autotunes(conn: Connection) -> tuple[list[Autotune], dict[str, str]]:
    """Every autotune, and apart the ids of rows that cannot be read as one (a row written by hand or by
    a broken version: a definition without variants, say) with the reason, so that one such row cannot
    keep every other autotune from being served."""
    query = sa.select(autotunes_table).order_by(autotunes_table.c.created_ms, autotunes_table.c.id)
    readable: list[Autotune] = []
    unreadable: dict[str, str] = {}
    for row in conn.execute(query):
        try:
            readable.append(_row_to_autotune(row))
        # Deliberately broad: whatever a malformed stored document makes the conversion raise.
        except Exception as error:
            unreadable[str(row._mapping["id"])] = f"the stored row cannot be read: {type(error).__name__}: {error}"
    return readable, unreadable


def running_ids(conn: Connection) -> list[str]:
    query = sa.select(autotunes_table.c.id).where(autotunes_table.c.status == Status.RUNNING.value)
    return [row[0] for row in conn.execute(query.order_by(autotunes_table.c.id))]


def delete(conn: Connection, autotune_id: str) -> None:
    conn.execute(autotunes_table.delete().where(autotunes_table.c.id == autotune_id))
    conn.execute(allocations_table.delete().where(allocations_table.c.autotune_id == autotune_id))
    conn.execute(runs_table.delete().where(runs_table.c.autotune_id == autotune_id))


def start_run(conn: Connection, autotune: Autotune) -> None:
    """Record the autotune's current run (after /start or /reset) and close the one before."""
    assert autotune.started_at_ms is not None
    conn.execute(
        runs_table.update()
        .where(runs_table.c.autotune_id == autotune.id, runs_table.c.ended_ms.is_(None))
        .values(ended_ms=autotune.started_at_ms)
    )
    conn.execute(
        runs_table.insert().values(
            autotune_id=autotune.id,
            run=autotune.run,
            salt=autotune.salt,
            started_at_ms=autotune.started_at_ms,
            ended_ms=None,
        )
    )


def insert_allocation(conn: Connection, allocation: Allocation) -> None:
    conn.execute(
        allocations_table.insert().values(
            autotune_id=allocation.autotune_id,
            version=allocation.version,
            run=allocation.run,
            as_of_ms=allocation.as_of_ms,
            stage=allocation.stage.value,
            weights=list(allocation.weights),
            thresholds=list(allocation.thresholds),
        )
    )


def _row_to_allocation(row: sa.Row[tuple[object, ...]]) -> Allocation:
    m = row._mapping
    return Allocation(
        autotune_id=m["autotune_id"],
        run=m["run"],
        version=m["version"],
        as_of_ms=m["as_of_ms"],
        stage=Stage(m["stage"]),
        weights=tuple(m["weights"]),
        thresholds=tuple(m["thresholds"]),
    )


def latest_allocation(conn: Connection, autotune_id: str) -> Allocation | None:
    query = (
        sa.select(allocations_table)
        .where(allocations_table.c.autotune_id == autotune_id)
        .order_by(allocations_table.c.version.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return _row_to_allocation(row) if row is not None else None


def latest_allocations(conn: Connection) -> dict[str, Allocation]:
    """The newest allocation of every autotune, in one query (spec rendering reads all of them)."""
    newest = (
        sa.select(
            allocations_table.c.autotune_id,
            sa.func.max(allocations_table.c.version).label("version"),
        )
        .group_by(allocations_table.c.autotune_id)
        .subquery()
    )
    query = sa.select(allocations_table).join(
        newest,
        sa.and_(
            allocations_table.c.autotune_id == newest.c.autotune_id,
            allocations_table.c.version == newest.c.version,
        ),
    )
    return {row._mapping["autotune_id"]: _row_to_allocation(row) for row in conn.execute(query)}


def allocations_of_run(conn: Connection, autotune_id: str, run: int) -> list[Allocation]:
    query = (
        sa.select(allocations_table)
        .where(allocations_table.c.autotune_id == autotune_id, allocations_table.c.run == run)
        .order_by(allocations_table.c.version)
    )
    return [_row_to_allocation(row) for row in conn.execute(query)]
