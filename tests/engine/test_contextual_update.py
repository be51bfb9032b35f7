"""Contextual autotunes through the engine (contextual.md): per-unit features and outcomes from the store,
one model per variant, the published CMAB weights and the v1 marginal shares, propensities recomputed
from the version a unit names, and the off-policy value in the update record. SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sqlalchemy as sa

from openautotune.contextual import training as contextual
from openautotune.contextual.models import ModelFit
from openautotune.engine.update import update_autotune
from openautotune.service import autotunes as autotune_service
from openautotune.service import specs as spec_service
from openautotune.serving.cmab import cmab_configs
from openautotune.store import contextual as contextual_store
from openautotune.store import updates
from openautotune.store.ingest_tables import units_table
from tests.contextual.sdk import sdk_score
from tests.engine.conftest import ACTOR, Env

HOUR = 3_600_000
# Success probabilities: variant a suits DE users, b suits FR users.
RATES = {("DE", 0): 0.6, ("DE", 1): 0.1, ("FR", 0): 0.1, ("FR", 1): 0.6}


def _serve(env: Env, autotune_id: str, rows: list[dict[str, object]]) -> None:
    with env.db.write() as conn:
        conn.execute(units_table.insert(), rows)


def _traffic(env: Env, autotune, rng: np.random.Generator, n: int, at_ms: int, choose) -> list[str]:  # type: ignore[no-untyped-def]
    rows, converted = [], []
    variants = autotune.definition.variants
    for i in range(n):
        country = "DE" if rng.random() < 0.5 else "FR"
        unit = f"{at_ms}-{i}"
        user = {"userID": unit, "custom": {"country": country, "age": int(rng.integers(18, 70))}}
        k, version = choose(user)
        rows.append(
            {
                "autotune_id": autotune.id,
                "run": autotune.run,
                "unit_id": unit,
                "variant_id": variants[k].id,
                "first_exposure_ms": at_ms + i,
                "allocation_version": version,
                "explore": False,
                "features": user,
                "propensity": None,
            }
        )
        if rng.random() < RATES[(country, k)]:
            converted.append(unit)
    _serve(env, autotune.id, rows)
    env.events([(unit, at_ms + 10 * 60_000) for unit in converted])
    return [str(r["unit_id"]) for r in rows]


def test_contextual_update_learns_publishes_and_records(env: Env) -> None:
    autotune = env.create("ctx", is_contextual=True, exploration_window="1hr", feature_list=["country"])
    rng = np.random.default_rng(4)
    start = autotune.started_at_ms
    assert start is not None
    _traffic(env, autotune, rng, 800, start + 1000, lambda user: (int(rng.integers(0, 2)), autotune.allocation_version))

    exploring = update_autotune(env.db, env.clock, autotune.id, start + 30 * 60_000)
    assert exploring.updated and exploring.stage is not None and exploring.stage.value == "exploring"
    outcome = update_autotune(env.db, env.clock, autotune.id, start + 3 * HOUR)
    assert outcome.updated and outcome.stage is not None and outcome.stage.value == "exploiting"
    assert outcome.winner_variant_id is None and outcome.allocation_version is not None

    state = spec_service.load(env.db)
    entries = cmab_configs(state.pairs, state.cmab_policies)
    entry = entries[autotune.id]
    assert entry["version"] == outcome.allocation_version and 0.01 <= entry["sampleRate"] < 1
    a, b = (v.id for v in autotune.definition.variants)
    config = entry["config"]
    assert set(config) == {a, b}
    assert set(config[a]["weightsCategorical"]) == {"country"} and config[a]["records"] + config[b]["records"] == 800
    de = {"userID": "x", "custom": {"country": "DE"}}
    fr = {"userID": "y", "custom": {"country": "FR"}}
    assert sdk_score(config[a], de) > sdk_score(config[b], de)
    assert sdk_score(config[b], fr) > sdk_score(config[a], fr)
    assert abs(sum(outcome.weights) - 1) < 1e-9  # v1 gets the policy's marginal shares

    with env.db.read() as conn:
        propensities = conn.execute(sa.select(units_table.c.propensity).where(units_table.c.autotune_id == autotune.id))
        assert {p for (p,) in propensities} == {0.5}  # served by the exploration window's equal split
        record = updates.latest_record(conn, autotune.id, autotune.created_ms)
    part = record.record["contextual"]
    assert part["units"] == 800 and [v["id"] for v in part["variants"]] == [a, b]
    value = part["policyValue"]
    assert value["personalized"]["dr"] > value["bestSingle"]["drInterval"][1]
    assert value["uniform"]["drInterval"][0] < 0.35 < value["uniform"]["drInterval"][1]

    # Exploit traffic served by the published version: its propensity is recomputed from that version.
    with env.db.read() as conn:
        server = contextual.model_from_json(
            contextual_store.policies_of_run(conn, autotune.id, autotune.created_ms, autotune.run)[
                entry["version"]
            ].model
        )

    def served(user: dict[str, object]) -> tuple[int, int]:
        return int(server.policy.greedy(server.encoding.transform([user]))[0]), int(entry["version"])

    later = _traffic(env, autotune, rng, 200, start + 3 * HOUR + 1000, served)
    update_autotune(env.db, env.clock, autotune.id, start + 6 * HOUR)
    with env.db.read() as conn:
        rows = conn.execute(
            sa.select(
                units_table.c.unit_id, units_table.c.variant_id, units_table.c.features, units_table.c.propensity
            ).where(units_table.c.unit_id.in_(later))
        ).all()
    s = entry["sampleRate"]
    q = 1 / (np.array([config[a]["records"], config[b]["records"]]) + 1)
    q = q / q.sum()
    for _unit, variant_id, _features, propensity in rows:
        k = [a, b].index(variant_id)
        assert propensity == pytest.approx((1 - s) + s * q[k])  # each was its version's best variant


def test_value_metric_lower_is_better_and_a_recreated_autotune_starts_afresh(env: Env) -> None:
    autotune = env.create(
        "ctxv", is_contextual=True, exploration_window="1hr", optimization_parameter="value", higher_is_better=False
    )
    start = autotune.started_at_ms
    assert start is not None
    rng = np.random.default_rng(5)
    rows, converted = [], []
    for i in range(400):
        age = int(rng.integers(18, 70))
        k = i % 2
        unit = f"v{i}"
        rows.append(
            {
                "autotune_id": autotune.id,
                "run": autotune.run,
                "unit_id": unit,
                "variant_id": autotune.definition.variants[k].id,
                "first_exposure_ms": start + i,
                "allocation_version": autotune.allocation_version,
                "explore": True,
                "features": {"userID": unit, "custom": {"age": age}},
                "propensity": None,
            }
        )
        # Cost: variant a is cheap for the young, b for the old (lower is better).
        cost = (age if k == 0 else 90 - age) + rng.normal(0, 5)
        converted.append((unit, round(cost, 2)))
    _serve(env, autotune.id, rows)
    for unit, cost in converted:
        env.event(unit, start + 60_000, value=str(cost))
    outcome = update_autotune(env.db, env.clock, autotune.id, start + 3 * HOUR)
    assert outcome.updated and outcome.allocation_version is not None
    state = spec_service.load(env.db)
    entry = cmab_configs(state.pairs, state.cmab_policies)[autotune.id]
    assert entry["higherIsBetter"] is False
    a, b = (v.id for v in autotune.definition.variants)
    young, old = {"custom": {"age": 20}}, {"custom": {"age": 70}}
    assert sdk_score(entry["config"][a], young) < sdk_score(entry["config"][b], young)  # a is cheaper
    assert sdk_score(entry["config"][b], old) < sdk_score(entry["config"][a], old)
    assert entry["config"][a]["alpha"] < 0  # the exploration bonus points towards lower costs
    with env.db.read() as conn:
        record = updates.latest_record(conn, autotune.id, autotune.created_ms)
    assert record is not None
    part = record.record["contextual"]
    assert {v["id"]: v["successes"] for v in part["variants"]} == {a: None, b: None}
    value = part["policyValue"]
    assert value["personalized"]["dr"] < value["bestSingle"]["dr"]  # lower is better

    # Deleted and created again under the same id: the old policy is not served.
    autotune_service.delete(env.db, env.clock, ACTOR, autotune.id)
    env.clock.advance(1000)
    again = env.create("ctxv", is_contextual=True, exploration_window="1hr")
    assert again.id == autotune.id
    state = spec_service.load(env.db)
    assert "config" not in cmab_configs(state.pairs, state.cmab_policies)[again.id]


def test_fits_are_prepared_outside_the_write_transaction_and_stale_ones_are_ignored(env: Env) -> None:
    autotune = env.create("ctxp", is_contextual=True, exploration_window="1hr", feature_list=["country"])
    start = autotune.started_at_ms
    assert start is not None
    rng = np.random.default_rng(9)
    _traffic(env, autotune, rng, 300, start + 1000, lambda user: (int(rng.integers(0, 2)), autotune.allocation_version))
    assert contextual.prepare(env.db, "no-such-autotune", start) is None
    prepared = contextual.prepare(env.db, autotune.id, start + 3 * HOUR)
    assert prepared is not None and not prepared.exploring and prepared.learned.config is not None
    assert len(prepared.filled) == 300
    stale = dataclasses.replace(prepared, run=prepared.run + 1, filled={})
    with env.db.write() as conn:
        learned = contextual.learn(conn, autotune, start + 3 * HOUR, False, stale)  # recomputed, fills propensities
    assert learned.record["units"] == 300
    with env.db.read() as conn:
        values = conn.execute(sa.select(units_table.c.propensity).where(units_table.c.autotune_id == autotune.id))
        assert {p for (p,) in values} == {0.5}


def test_a_model_with_non_finite_weights_is_not_published() -> None:
    fine = ModelFit("occurrence", np.zeros(2), np.eye(2), 30, 3, False, "", 1, np.eye(2), None, None)
    broken = ModelFit("occurrence", np.array([0.0, np.nan]), np.eye(2), 30, 3, False, "", 1, np.eye(2), None, None)
    assert contextual.publishable([fine, fine], np.zeros(2))
    assert not contextual.publishable([fine, broken], np.zeros(2))
    assert not contextual.publishable([fine, fine], np.array([0.0, np.inf]))
