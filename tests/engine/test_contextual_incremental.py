"""Contextual updates through the store read only newly matured units (docs/contextual.md, "Incremental
updates"): a value autotune updated every hour ends with the same posterior as one updated once over
the same units; late categories and features, and a feature missing for some units, included.
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa

from openautotune.contextual.training import model_from_json
from openautotune.engine.update import update_autotune
from openautotune.store import contextual as contextual_store
from openautotune.store import contextual_runs
from openautotune.store.ingest_tables import units_table
from tests.engine.conftest import Env

HOUR = 3_600_000


def _load(env: Env, autotune: Any, hours: int, rng: np.random.Generator) -> None:
    start = autotune.started_at_ms
    for hour in range(hours):
        rows, events = [], []
        for i in range(60):
            unit = f"{hour}-{i}"
            custom: dict[str, Any] = {"age": int(rng.integers(18, 70)), "plan": str(rng.choice(["free", "pro"]))}
            if rng.random() < 0.3:
                del custom["age"]
            if hour >= hours // 2:
                custom["plan"] = str(rng.choice(["free", "pro", "team"]))
                custom["visits"] = int(rng.integers(0, 20))
            k = int(rng.integers(0, 2))
            at = start + hour * HOUR + i * 1000
            rows.append(
                {
                    "autotune_id": autotune.id,
                    "run": autotune.run,
                    "unit_id": unit,
                    "variant_id": autotune.definition.variants[k].id,
                    "first_exposure_ms": at,
                    "allocation_version": autotune.allocation_version,
                    "explore": True,
                    "features": {"userID": unit, "custom": custom},
                    "propensity": 0.5,
                }
            )
            cost = custom.get("age", 40) * (1 if k == 0 else -1) + 3 * (custom["plan"] == "team") + rng.normal(0, 3)
            events.append((unit, at + 60_000, round(float(cost), 3)))
        with env.db.write() as conn:
            conn.execute(units_table.insert(), rows)
        for unit, at, value in events:
            env.event(unit, at, value=str(value))


def _latest_model(env: Env, autotune_id: str) -> Any:
    with env.db.read() as conn:
        return contextual_store.latest_policies(conn, [autotune_id], with_model=True)[autotune_id].model


def test_hourly_updates_give_the_posterior_of_one_update_over_every_unit(env: Env) -> None:
    hours = 8
    fields = {"is_contextual": True, "exploration_window": "1hr", "optimization_parameter": "value"}
    hourly = env.create("hourly", **fields)
    once = env.create("once", **fields)
    for autotune, seed in ((hourly, 11), (once, 11)):
        _load(env, autotune, hours, np.random.default_rng(seed))
    start = hourly.started_at_ms
    assert start is not None and once.started_at_ms == start
    end = start + (hours + 2) * HOUR
    for hour in range(1, hours + 2):
        assert update_autotune(env.db, env.clock, hourly.id, start + hour * HOUR).updated
    assert update_autotune(env.db, env.clock, hourly.id, end).updated
    assert update_autotune(env.db, env.clock, once.id, end).updated
    a, b = model_from_json(_latest_model(env, hourly.id)), model_from_json(_latest_model(env, once.id))
    assert a.encoding.column_names == b.encoding.column_names
    assert "plan=team" in a.encoding.column_names and "visits" in a.encoding.column_names
    np.testing.assert_allclose(a.means, b.means, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a.covariances, b.covariances, rtol=1e-9, atol=1e-9)
    with env.db.read() as conn:
        key = contextual_runs.RunKey(hourly.id, hourly.created_ms, hourly.run)
        state = contextual_runs.get_state(conn, key)
        stored = conn.execute(
            sa.select(sa.func.count(), sa.func.sum(contextual_runs.batches_table.c.units)).where(
                contextual_runs.batches_table.c.autotune_id == hourly.id
            )
        ).one()
    assert state is not None and state.as_of_ms == end
    assert stored[1] == hours * 60 and stored[0] <= hours + 2  # each unit encoded once, at most a batch an update


def test_an_update_reads_only_units_matured_since_the_last(env: Env) -> None:
    fields = {"is_contextual": True, "exploration_window": "1hr"}
    autotune = env.create("reads", **fields)
    _load(env, autotune, 3, np.random.default_rng(2))
    start = autotune.started_at_ms
    assert start is not None
    first = update_autotune(env.db, env.clock, autotune.id, start + 2 * HOUR)
    assert first.updated
    # Units already absorbed are not read again: removing their user dicts changes nothing.
    with env.db.write() as conn:
        conn.execute(
            units_table.update()
            .where(units_table.c.autotune_id == autotune.id, units_table.c.first_exposure_ms < start + HOUR)
            .values(features=None)
        )
    assert update_autotune(env.db, env.clock, autotune.id, start + 5 * HOUR).updated
    model = model_from_json(_latest_model(env, autotune.id))
    assert int(model.policy.records.sum()) == 180  # the first hour's units still count, from their encoded rows
    plan = [f for f in model.encoding.features if f.name == "plan"]
    # The first hour's units still have their plan: shares over all 180 units, not only the last 120.
    assert plan and sum(plan[0].centres) == 1.0  # type: ignore[union-attr]
