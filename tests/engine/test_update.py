"""One engine update: skips, stages, weights, the winner, allocations, records, locks, incremental cost."""

from __future__ import annotations

import pytest

from openautotune.domain.autotune import Autotune, Stage, Status
from openautotune.engine.update import ENGINE_ACTOR, LOCKED, update_autotune, update_running
from openautotune.service import autotunes as autotune_service
from openautotune.service.autotunes import VariantInput
from openautotune.stats import VariantAggregate, decide, summarize
from openautotune.stats.winner_rule import traffic_weights
from openautotune.store import audit, updates
from openautotune.store import autotunes as autotune_store
from openautotune.testing import START_MS

from .conftest import ACTOR, Env

MIN = 60_000
HOUR = 60 * MIN
T0 = START_MS + 10 * MIN
AFTER_EXPLORATION = START_MS + 25 * HOUR


def populate(
    env: Env, autotune: Autotune, counts: list[tuple[int, int]], at: int = T0, period: int | None = None
) -> None:
    """`counts[k] = (units, successes)` for variant k, all exposed at `at` (in allocation `period`,
    default the current one), converting a minute later."""
    rows: list[tuple[str, int | str, int]] = []
    converting: list[tuple[str, int]] = []
    for k, (units, successes) in enumerate(counts):
        for i in range(units):
            unit_id = f"{autotune.id}-{at}-{k}-{i}"
            rows.append((unit_id, k, at))
            if i < successes:
                converting.append((unit_id, at + MIN))
    env.units(autotune, rows, period=period)
    if converting:
        env.events(converting)


def current(env: Env, autotune: Autotune) -> Autotune:
    return autotune_service.get(env.db, autotune.id)


def test_draft_is_skipped_with_a_reason(env: Env) -> None:
    autotune = env.create(start=False)
    outcome = update_autotune(env.db, env.clock, autotune.id, START_MS + HOUR)
    assert not outcome.updated
    assert outcome.reason is not None and "draft" in outcome.reason
    with env.db.read() as conn:
        assert updates.records(conn, autotune.id, autotune.created_ms) == []


def test_unknown_autotune_is_skipped(env: Env) -> None:
    outcome = update_autotune(env.db, env.clock, "nope", START_MS)
    assert (outcome.updated, outcome.reason) == (False, "autotune not found")


def test_as_of_never_goes_backwards(env: Env) -> None:
    autotune = env.create()
    assert update_autotune(env.db, env.clock, autotune.id, START_MS + 2 * HOUR).updated
    for at in (START_MS + 2 * HOUR, START_MS + HOUR):
        outcome = update_autotune(env.db, env.clock, autotune.id, at)
        assert not outcome.updated
        assert outcome.reason is not None and "never goes backwards" in outcome.reason
    with env.db.read() as conn:
        assert len(updates.records(conn, autotune.id, autotune.created_ms)) == 1


def test_exploration_is_an_equal_split_and_publishes_nothing_new(env: Env) -> None:
    autotune = env.create()
    populate(env, autotune, [(100, 5), (100, 50)])
    outcome = update_autotune(env.db, env.clock, autotune.id, START_MS + 2 * HOUR)
    assert outcome.stage is Stage.EXPLORING
    assert outcome.weights == (0.5, 0.5)
    assert outcome.allocation_version is None  # the start already published this split
    assert outcome.pob[1] > 0.99  # the data is analysed all the same
    with env.db.read() as conn:
        record = updates.latest_record(conn, autotune.id, autotune.created_ms)
    assert record is not None and record.stage == "exploring"
    assert record.record["thresholds"] == [500, 1000]
    assert current(env, autotune).allocation_version == autotune.allocation_version


def test_exploration_uses_the_size_split(env: Env) -> None:
    variants = [VariantInput("a", {}, 20.0), VariantInput("b", {}, 80.0)]
    autotune = env.create(variants=variants)
    outcome = update_autotune(env.db, env.clock, autotune.id, START_MS + HOUR)
    assert outcome.stage is Stage.EXPLORING
    assert outcome.weights == pytest.approx((0.2, 0.8))
    with env.db.read() as conn:
        allocation = autotune_store.latest_allocation(conn, autotune.id)
    assert allocation is not None and allocation.thresholds == (200, 1000)


def test_exploitation_weights_are_the_probability_of_best(env: Env) -> None:
    autotune = env.create(winner_threshold="99%", winner_rule="statsig")
    populate(env, autotune, [(1000, 100), (1000, 120)])
    outcome = update_autotune(env.db, env.clock, autotune.id, AFTER_EXPLORATION)
    expected = summarize("occurrence", [VariantAggregate(1000, 100), VariantAggregate(1000, 120)])
    assert outcome.stage is Stage.EXPLOITING
    assert outcome.pob == pytest.approx(expected.pob, abs=1e-12)
    assert outcome.weights == pytest.approx(expected.pob, abs=1e-12)
    assert outcome.winner_variant_id is None
    after = current(env, autotune)
    assert outcome.allocation_version == after.allocation_version == autotune.allocation_version + 1
    with env.db.read() as conn:
        allocation = autotune_store.latest_allocation(conn, autotune.id)
    assert allocation is not None
    assert allocation.stage is Stage.EXPLOITING and allocation.as_of_ms == AFTER_EXPLORATION
    assert allocation.thresholds == (round(1000 * expected.pob[0]), 1000)


def test_long_term_floor(env: Env) -> None:
    autotune = env.create(winner_threshold="99%", longterm_exploration_allocation=0.2, winner_rule="statsig")
    populate(env, autotune, [(1000, 100), (1000, 120)])
    outcome = update_autotune(env.db, env.clock, autotune.id, AFTER_EXPLORATION)
    assert outcome.stage is Stage.EXPLOITING
    assert outcome.weights == pytest.approx(tuple(0.1 + 0.8 * p for p in outcome.pob), abs=1e-12)
    assert min(outcome.weights) >= 0.1 - 1e-12


@pytest.mark.parametrize(("successes", "declared"), [(124, True), (122, False)])
def test_winner_at_threshold_and_not_below(env: Env, successes: int, declared: bool) -> None:
    # P(best) of b: 0.9554 with 124/1000 against 100/1000, 0.9410 with 122/1000 (threshold 95%).
    autotune = env.create(winner_threshold="95%", winner_rule="statsig")
    populate(env, autotune, [(1000, 100), (1000, successes)])
    outcome = update_autotune(env.db, env.clock, autotune.id, AFTER_EXPLORATION)
    after = current(env, autotune)
    b = autotune.definition.variants[1].id
    if not declared:
        assert outcome.pob[1] < 0.95
        assert outcome.stage is Stage.EXPLOITING and after.status is Status.RUNNING
        return
    assert outcome.pob[1] >= 0.95
    assert outcome.stage is Stage.FINISHED and outcome.winner_variant_id == b
    assert after.status is Status.FINISHED and after.winner_variant_id == b
    assert after.allocation_version == autotune.allocation_version + 1 == outcome.allocation_version
    with env.db.read() as conn:
        allocation = autotune_store.latest_allocation(conn, autotune.id)
        entries = audit.history(conn, autotune.id)
        record = updates.latest_record(conn, autotune.id, autotune.created_ms)
    assert allocation is not None and allocation.weights == (0.0, 1.0) and allocation.stage is Stage.FINISHED
    assert entries[0].actor_name == ENGINE_ACTOR.name == "ENGINE"
    assert entries[0].after is not None and entries[0].after["status"] == "finished"
    assert record is not None and record.decision == "winner" and record.record["decision"] == {"winner": b}
    # A finished autotune is not updated again.
    later = update_autotune(env.db, env.clock, autotune.id, AFTER_EXPLORATION + HOUR)
    assert not later.updated and later.reason is not None and "finished" in later.reason


def test_no_winner_inside_the_exploration_window(env: Env) -> None:
    autotune = env.create()
    populate(env, autotune, [(1000, 10), (1000, 300)])
    outcome = update_autotune(env.db, env.clock, autotune.id, START_MS + 23 * HOUR)
    assert outcome.pob[1] > 0.999
    assert outcome.stage is Stage.EXPLORING and outcome.winner_variant_id is None
    assert current(env, autotune).status is Status.RUNNING


def test_lower_is_better(env: Env) -> None:
    autotune = env.create(higher_is_better=False, winner_threshold="99%")
    populate(env, autotune, [(1000, 100), (1000, 300)])
    outcome = update_autotune(env.db, env.clock, autotune.id, AFTER_EXPLORATION)
    assert outcome.winner_variant_id == autotune.definition.variants[0].id


def test_make_decision_stops_updates(env: Env) -> None:
    autotune = env.create()
    autotune_service.make_decision(env.db, env.clock, ACTOR, autotune.id, "b", "enough")
    outcome = update_autotune(env.db, env.clock, autotune.id, AFTER_EXPLORATION)
    assert not outcome.updated and outcome.reason is not None and "finished" in outcome.reason


def test_reset_starts_from_nothing(env: Env) -> None:
    autotune = env.create(winner_threshold="99%")
    populate(env, autotune, [(500, 50), (500, 100)])
    first = update_autotune(env.db, env.clock, autotune.id, AFTER_EXPLORATION)
    assert first.new_units == 1000
    env.clock.set(AFTER_EXPLORATION + HOUR)
    reset = autotune_service.reset(env.db, env.clock, ACTOR, autotune.id)
    at = AFTER_EXPLORATION + HOUR + 10 * MIN
    populate(env, reset, [(10, 1), (10, 1)], at=at)
    outcome = update_autotune(env.db, env.clock, autotune.id, at + 2 * HOUR)
    assert outcome.updated and outcome.new_units == 20
    assert outcome.stage is Stage.EXPLORING  # the new run has its own exploration window
    with env.db.read() as conn:
        cumulative = updates.cumulative(conn, updates.RunKey(autotune.id, autotune.created_ms, 2))
        record = updates.latest_record(conn, autotune.id, autotune.created_ms)
    assert sum(a.units for a in cumulative) == 20
    assert record is not None and record.run == 2
    assert [v["units"] for v in record.record["variants"]] == [10, 10]


def test_incremental_updates_read_only_newly_matured_units(env: Env) -> None:
    """The rows one update reads depend on the units that matured since the last one, not on history."""
    autotune = env.create(winner_threshold="99%")
    read: list[int] = []
    for hour in range(6):
        exposed = START_MS + hour * HOUR + MIN
        populate(env, autotune, [(30, 3), (30, 3)], at=exposed)
        outcome = update_autotune(env.db, env.clock, autotune.id, exposed + HOUR)
        read.append(outcome.new_units)
        with env.db.read() as conn:
            record = updates.latest_record(conn, autotune.id, autotune.created_ms)
        assert record is not None
        assert sum(item["units"] for item in record.record["new"]) == 60
        assert sum(v["units"] for v in record.record["variants"]) == 60 * (hour + 1)
    assert read == [60] * 6


def test_an_update_is_skipped_while_another_holds_the_lock(env: Env) -> None:
    autotune = env.create()
    now = env.clock.now_ms()
    with env.db.write() as conn:
        assert updates.try_lock(conn, autotune.id, "other-process", now, 60_000)
    outcome = update_autotune(env.db, env.clock, autotune.id, START_MS + HOUR, owner="me")
    assert (outcome.updated, outcome.reason) == (False, LOCKED)
    env.clock.advance(60_000)  # the other holder's lease expired
    assert update_autotune(env.db, env.clock, autotune.id, START_MS + HOUR, owner="me").updated
    with env.db.read() as conn:
        assert updates.lock_holder(conn, autotune.id, env.clock.now_ms()) is None  # released


def test_lock_is_exclusive_and_reentrant_for_its_owner(env: Env) -> None:
    with env.db.write() as conn:
        assert updates.try_lock(conn, "x", "p1", 1000, 500)
        assert not updates.try_lock(conn, "x", "p2", 1200, 500)
        assert updates.try_lock(conn, "x", "p1", 1200, 500)
        assert updates.try_lock(conn, "x", "p2", 1700, 500)
        assert updates.lock_holder(conn, "x", 1800) == "p2"
        updates.unlock(conn, "x", "p2")
        assert updates.lock_holder(conn, "x", 1800) is None


def test_update_running_updates_every_running_autotune(env: Env) -> None:
    first = env.create("one")
    second = env.create("two")
    env.create("three", start=False)
    env.clock.set(START_MS + HOUR)
    outcomes = update_running(env.db, env.clock)
    assert sorted(o.autotune_id for o in outcomes) == sorted([first.id, second.id])
    assert all(o.updated and o.as_of_ms == START_MS + HOUR for o in outcomes)


def test_record_alone_recomputes_the_decision(env: Env) -> None:
    autotune = env.create(winner_threshold="99%", longterm_exploration_allocation=0.1)
    populate(env, autotune, [(800, 80), (900, 110)])
    # A second allocation period with another split and a doubled base rate.
    populate(env, autotune, [(300, 60), (100, 25)], at=T0 + HOUR, period=autotune.allocation_version + 1)
    update_autotune(env.db, env.clock, autotune.id, AFTER_EXPLORATION)
    with env.db.read() as conn:
        record = updates.latest_record(conn, autotune.id, autotune.created_ms)
    assert record is not None
    data = record.record
    assert (data["estimator"], data["strata"], data["winnerRule"]["rule"]) == ("periodWeighted", 2, "sequential")
    ids = [v["id"] for v in data["variants"]]
    periods: dict[int, list[VariantAggregate]] = {}
    for cell in data["cumulative"]:
        row = periods.setdefault(cell["period"], [VariantAggregate(0)] * len(ids))
        row[ids.index(cell["variantId"])] = VariantAggregate(
            cell["units"], cell["successes"], cell["total"], cell["totalSq"]
        )
    aggregates = [VariantAggregate(v["units"], v["successes"], v["total"], v["totalSq"]) for v in data["variants"]]
    again = summarize(
        data["metric"],
        aggregates,
        lower_is_better=data["lowerIsBetter"],
        long_term=data["longTerm"],
        periods=[periods[p] for p in sorted(periods)],
        estimator=data["estimator"],
    )
    assert list(again.pob) == [v["probabilityOfBest"] for v in data["variants"]]
    assert [v.estimate.mean for v in again.variants] == [v["mean"] for v in data["variants"]]
    decision = decide(
        data["winnerRule"]["rule"],
        means=[v.estimate.mean for v in again.variants],
        variances=[v.estimate.variance for v in again.variants],
        pob=again.pob,
        leader=again.leader,
        threshold=data["winnerThreshold"],
        enough_data=again.enough_data,
    )
    assert decision.winner == data["winnerRule"]["winner"] and decision.reason == data["winnerRule"]["reason"]
    assert list(traffic_weights(decision, again.pob, data["longTerm"])) == data["weights"]


def test_two_concurrent_updates_of_one_autotune_apply_once(env: Env) -> None:
    """Two workers (own engines, like two processes) update the same autotune at the same time."""
    import threading

    from openautotune.store.database import Database

    autotune = env.create(winner_threshold="99%")
    populate(env, autotune, [(200, 20), (200, 30)])
    url = env.db.engine.url.render_as_string(hide_password=False)
    barrier = threading.Barrier(2)
    outcomes = []

    def worker(name: str) -> None:
        db = Database.from_url(url)
        try:
            barrier.wait()
            outcomes.append(update_autotune(db, env.clock, autotune.id, AFTER_EXPLORATION, owner=name))
        finally:
            db.dispose()

    threads = [threading.Thread(target=worker, args=(f"worker-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(o.updated for o in outcomes) == [False, True]
    with env.db.read() as conn:
        records = updates.records(conn, autotune.id, autotune.created_ms)
        cumulative = updates.cumulative(conn, updates.RunKey(autotune.id, autotune.created_ms, 1))
    assert len(records) == 1
    assert sum(a.units for a in cumulative) == 400  # the sums were added once


def test_a_failing_autotune_does_not_hold_back_the_others(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    import openautotune.engine.update as engine_update

    broken = env.create("broken")
    fine = env.create("fine")
    real = engine_update.matured_aggregates

    def failing(conn: object, **kwargs: object) -> object:
        if kwargs["autotune_id"] == broken.id:
            raise RuntimeError("disk on fire")
        return real(conn, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_update, "matured_aggregates", failing)
    outcomes = {o.autotune_id: o for o in update_running(env.db, env.clock, START_MS + HOUR)}
    assert outcomes[fine.id].updated
    assert not outcomes[broken.id].updated
    assert outcomes[broken.id].reason == "failed: RuntimeError: disk on fire"
    with env.db.read() as conn:
        assert updates.records(conn, broken.id, broken.created_ms) == []  # nothing half-written
        assert updates.lock_holder(conn, broken.id, env.clock.now_ms()) is None  # lock released


def test_value_metric_update(env: Env) -> None:
    autotune = env.create(metadata_field="revenue", winner_threshold="99%")
    rows: list[tuple[str, int | str, int]] = []
    for k in range(2):
        rows += [(f"v{k}-{i}", k, T0) for i in range(40)]
    env.units(autotune, rows)
    for i in range(20):  # half of each variant buys; variant b's baskets are bigger
        env.event(f"v0-{i}", T0 + MIN, metadata={"revenue": str(10 + i % 3)})
        env.event(f"v1-{i}", T0 + MIN, metadata={"revenue": str(12 + i % 3)})
    env.event("v1-39", T0 + MIN, metadata={"revenue": "n/a"})  # rejected, scores 0
    outcome = update_autotune(env.db, env.clock, autotune.id, AFTER_EXPLORATION)
    assert outcome.updated and outcome.stage is Stage.EXPLOITING
    with env.db.read() as conn:
        record = updates.latest_record(conn, autotune.id, autotune.created_ms)
    assert record is not None
    data = record.record
    assert data["metric"] == "value"
    a, b = data["variants"]
    assert (a["units"], a["successes"], b["units"], b["successes"]) == (40, 20, 40, 20)
    assert a["total"] == sum(10 + i % 3 for i in range(20))
    assert b["mean"] == pytest.approx(sum(12 + i % 3 for i in range(20)) / 40)
    assert a["posterior"]["family"] == "normal"  # 40 units: Normal, not Student-t
    assert data["diagnostics"]["rejected"] == 1
    assert outcome.pob[1] > outcome.pob[0]
