"""Contextual autotunes in the store: published policies, and the per-unit rows their models train on.

- `contextual_policies`: one row per (autotune, run, version) the engine published after the
  exploration window. `config` is the SDK's `cmab_configs[...].config` map (raw-unit weights per
  variant id), `model` everything needed to rebuild the server's own policy (encoding, posterior
  means and covariances, alphas, records), so that propensities of SDK-served exposures and server-side
  Thompson sampling use exactly the published version. The version is the allocation version
  published with it, which SDKs echo as `configVersion`.
- `matured_units`: every unit of a run matured at `as_of`, with its features (the user object of its
  first exposure), explore flag, propensity and outcome, attributed exactly as `attribution.py` does
  for the aggregates (same success-event rules, same numeric guard).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from openautotune.domain.autotune import Definition
from openautotune.store import contextual_runs
from openautotune.store.attribution import BEGINNING_MS, query_text, run_outcome_query
from openautotune.store.ingest_tables import units_table
from openautotune.store.metadata import EpochMs, metadata

policies_table = sa.Table(
    "contextual_policies",
    metadata,
    sa.Column("autotune_id", sa.String(200), primary_key=True),
    # The autotune's creation time: an autotune deleted and created again under the same id starts afresh.
    sa.Column("incarnation_ms", EpochMs, primary_key=True),
    sa.Column("run", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("as_of_ms", EpochMs, nullable=False),
    sa.Column("sample_rate", sa.Float, nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("model", sa.JSON, nullable=False),
)


@dataclass(frozen=True)
class Policy:
    autotune_id: str
    incarnation_ms: int
    run: int
    version: int
    as_of_ms: int
    sample_rate: float
    config: dict[str, Any]
    model: dict[str, Any]


@dataclass(frozen=True)
class UnitRow:
    unit_id: str
    variant_id: str
    allocation_version: int | None
    explore: bool
    features: dict[str, Any]
    propensity: float | None
    converted: bool
    value: float | None


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _policy(row: Any) -> Policy:
    return Policy(
        autotune_id=row.autotune_id,
        incarnation_ms=int(row.incarnation_ms),
        run=int(row.run),
        version=int(row.version),
        as_of_ms=int(row.as_of_ms),
        sample_rate=float(row.sample_rate),
        config=_json(row.config),
        model=_json(row.model) if "model" in row._fields else {},
    )


def insert_policy(conn: Connection, policy: Policy) -> None:
    conn.execute(
        policies_table.insert().values(
            autotune_id=policy.autotune_id,
            incarnation_ms=policy.incarnation_ms,
            run=policy.run,
            version=policy.version,
            as_of_ms=policy.as_of_ms,
            sample_rate=policy.sample_rate,
            config=policy.config,
            model=policy.model,
        )
    )


def latest_policies(
    conn: Connection, autotune_ids: Sequence[str] | None = None, *, with_model: bool = False
) -> dict[str, Policy]:
    """The newest policy (latest incarnation, then greatest run, then version) of each autotune that has
    one; `model` is only read when asked for (spec rendering needs the SDK weights alone)."""
    t = policies_table
    newer = sa.alias(t, "newer")
    columns = [t.c.autotune_id, t.c.incarnation_ms, t.c.run, t.c.version, t.c.as_of_ms, t.c.sample_rate, t.c.config]
    query = sa.select(*columns, *([t.c.model] if with_model else [])).where(
        ~sa.exists().where(
            newer.c.autotune_id == t.c.autotune_id,
            sa.or_(
                newer.c.incarnation_ms > t.c.incarnation_ms,
                sa.and_(newer.c.incarnation_ms == t.c.incarnation_ms, newer.c.run > t.c.run),
                sa.and_(
                    newer.c.incarnation_ms == t.c.incarnation_ms,
                    newer.c.run == t.c.run,
                    newer.c.version > t.c.version,
                ),
            ),
        )
    )
    if autotune_ids is not None:
        query = query.where(t.c.autotune_id.in_(list(autotune_ids)))
    return {row.autotune_id: _policy(row) for row in conn.execute(query)}


def policies_of_run(conn: Connection, autotune_id: str, incarnation_ms: int, run: int) -> dict[int, Policy]:
    t = policies_table
    rows = conn.execute(
        sa.select(t).where(t.c.autotune_id == autotune_id, t.c.incarnation_ms == incarnation_ms, t.c.run == run)
    )
    return {int(row.version): _policy(row) for row in rows}


def policies_of_versions(
    conn: Connection, autotune_id: str, incarnation_ms: int, run: int, versions: Sequence[int]
) -> dict[int, Policy]:
    """The run's policies published under `versions` only (what newly matured units name)."""
    if not versions:
        return {}
    t = policies_table
    rows = conn.execute(
        sa.select(t).where(
            t.c.autotune_id == autotune_id,
            t.c.incarnation_ms == incarnation_ms,
            t.c.run == run,
            t.c.version.in_(sorted(set(versions))),
        )
    )
    return {int(row.version): _policy(row) for row in rows}


def delete_policies(conn: Connection, autotune_id: str) -> None:
    """Forget the autotune's policies and what its runs learned (state and encoded batches)."""
    conn.execute(policies_table.delete().where(policies_table.c.autotune_id == autotune_id))
    contextual_runs.delete_runs(conn, autotune_id)


# One pass: every matured unit left-joined to its success events in its window, numbered by time; the first
# row per unit carries its first success (or none). A unit without events has exactly one row, all-NULL
# on the event side, so the NULL ordering of the dialects does not matter.
_UNITS = """
WITH matured AS (
    SELECT u.unit_id, u.variant_id, u.allocation_version, u.explore, u.features, u.propensity,
           u.first_exposure_ms
    FROM units u
    WHERE u.autotune_id = :autotune_id AND u.run = :run
      AND u.first_exposure_ms > :matured_after - :window_ms
      AND u.first_exposure_ms <= :as_of - :window_ms
),
joined AS (
    SELECT m.unit_id, m.variant_id, m.allocation_version, m.explore, m.features, m.propensity,
           m.first_exposure_ms, e.id AS event_id, {raw} AS raw,
           ROW_NUMBER() OVER (PARTITION BY m.unit_id ORDER BY e.time_ms, e.dedup_key) AS position
    FROM matured m
    LEFT JOIN events e
      ON e.event_name = :event_name AND e.id_type = :id_type AND e.unit_id = m.unit_id
     AND e.time_ms >= m.first_exposure_ms AND e.time_ms <= m.first_exposure_ms + :window_ms
     AND e.time_ms <= :as_of
     {value_filter}
)
SELECT unit_id, variant_id, allocation_version, explore, features, propensity,
       CASE WHEN event_id IS NULL THEN 0 ELSE 1 END AS converted, {number} AS x
FROM joined
WHERE position = 1
ORDER BY first_exposure_ms, unit_id
"""


def matured_units(
    conn: Connection,
    *,
    autotune_id: str,
    run: int,
    definition: Definition,
    as_of_ms: int,
    matured_after_ms: int = BEGINNING_MS,
) -> list[UnitRow]:
    """Every unit of the run whose attribution window has passed at `as_of_ms` but had not at
    `matured_after_ms` (default: every matured unit), with its outcome.

    `converted`: it has a success event in its window; `value`: that first event's number (value
    metrics; None when not numeric, which the caller counts as 0, like the aggregates do).
    """
    params = {"autotune_id": autotune_id, "run": run, "as_of": as_of_ms, "matured_after": matured_after_ms}
    rows = run_outcome_query(conn, query_text(conn.dialect.name, definition, _UNITS), definition, params)
    out: list[UnitRow] = []
    for row in rows:
        features = _json(row.features)
        out.append(
            UnitRow(
                unit_id=str(row.unit_id),
                variant_id=str(row.variant_id),
                allocation_version=None if row.allocation_version is None else int(row.allocation_version),
                explore=bool(row.explore),
                features=features if isinstance(features, dict) else {},
                propensity=None if row.propensity is None else float(row.propensity),
                converted=bool(row.converted),
                value=None if row.x is None else float(row.x),
            )
        )
    return out


def set_propensities(conn: Connection, autotune_id: str, run: int, values: Mapping[str, float]) -> None:
    """Store the recomputed propensity of units that had none (SDK-served exposures)."""
    if not values:
        return
    t = units_table
    statement = (
        t.update()
        .where(t.c.autotune_id == autotune_id, t.c.run == run, t.c.unit_id == sa.bindparam("u"))
        .values(propensity=sa.bindparam("p"))
    )
    conn.execute(statement, [{"u": unit, "p": p} for unit, p in values.items()])
