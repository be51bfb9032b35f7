"""Delayed conversions of a value metric on SQLite and PostgreSQL: immature units' first success values
are read like mature ones (numeric guard included), and their effective units follow the learnt CDF."""

from __future__ import annotations

import pytest

from openautotune.engine.update import update_autotune
from openautotune.store import updates
from openautotune.testing import START_MS

from .conftest import Env

MIN = 60_000
HOUR = 60 * MIN


def test_value_metric_immature_cells(env: Env) -> None:
    autotune = env.create(optimization_parameter="value", attribution_window="2hrs", exploration_window="1hr")
    # 40 mature units (exposed at 0), half converting 10 minutes later with value 2.
    env.units(autotune, [(f"m{i}", i % 2, START_MS) for i in range(40)])
    env.events([(f"m{i}", START_MS + 10 * MIN) for i in range(0, 40, 2)], value="2")
    # 30 immature units exposed 30 minutes before as_of: variant a's convert with value 5, one value is junk.
    as_of = START_MS + 2 * HOUR + 30 * MIN
    env.units(autotune, [(f"y{i}", i % 2, as_of - 30 * MIN) for i in range(30)])
    env.events([(f"y{i}", as_of - 20 * MIN) for i in range(0, 30, 2) if i != 0], value="5")
    env.event("y0", as_of - 20 * MIN, value="n/a")
    env.clock.set(as_of)
    assert update_autotune(env.db, env.clock, autotune.id, as_of).updated
    with env.db.read() as conn:
        record = updates.latest_record(conn, autotune.id, autotune.created_ms, autotune.run)
    assert record is not None
    delay = record.record["delay"]
    assert delay["conversions"] == 20 and delay["used"] is True
    assert delay["immatureUnits"] == [15, 15]
    cells = {cell["variantId"]: cell for cell in delay["immature"]}
    a, b = (v.id for v in autotune.definition.variants)
    assert (cells[a]["successes"], cells[a]["total"], cells[a]["totalSq"]) == (14, 70.0, 350.0)
    assert cells[b]["successes"] == 0
    # Every delay was 10 minutes (bin 4 of 48 over 2 h) but 5 prior pseudo-conversions are spread over the
    # window: at age 30 minutes (bin 12) F = (20 + 5 x 12.5 / 48) / 25, 0.852 of a unit each.
    assert cells[b]["effectiveUnits"] == pytest.approx(15 * (20 + 5 * 12.5 / 48) / 25)
    assert cells[a]["effectiveUnits"] == 14.0  # never fewer than the conversions already seen
    assert [v["units"] for v in record.record["variants"]] == [20, 20]


def test_the_delay_histogram_and_holdout_sums_carry_from_update_to_update(env: Env) -> None:
    from openautotune.store import delay as delay_store
    from openautotune.store.ingest_tables import units_table

    autotune = env.create(attribution_window="1hr", exploration_window="1hr", holdout_percent=20.0)
    a, b = (v.id for v in autotune.definition.variants)
    for hour in range(3):  # each hour: 10 units converting 5 minutes after exposure, 4 of them held out
        at = START_MS + hour * HOUR
        env.units(autotune, [(f"h{hour}u{i}", i % 2, at) for i in range(10)])
        env.events([(f"h{hour}u{i}", at + 5 * MIN) for i in range(10)])
        with env.db.write() as conn:
            held = [f"h{hour}u{i}" for i in range(4)]
            conn.execute(units_table.update().where(units_table.c.unit_id.in_(held)).values(holdout=True))
        as_of = at + HOUR + 30 * MIN
        env.clock.set(as_of)
        assert update_autotune(env.db, env.clock, autotune.id, as_of).updated
        with env.db.read() as conn:
            state = delay_store.carried(conn, autotune.id, autotune.created_ms, autotune.run)
        # All units matured so far count once: 10 delays an hour, all of 5 minutes (bin 3 of 48 over
        # an hour, since a bin is (W + 1) / 48 long and 5 minutes falls just short of the fifth).
        assert state["delay"]["conversions"] == 10 * (hour + 1)
        assert state["delay"]["histogram"][3] == sum(state["delay"]["histogram"]) == 10 * (hour + 1)
        held_sums = {item["id"]: item for item in state["holdout"]["variants"]}
        assert held_sums[a]["units"] + held_sums[b]["units"] == 4 * (hour + 1)
        assert state["holdout"]["banditUnits"] == 6 * (hour + 1)
        assert held_sums[a]["successes"] + held_sums[b]["successes"] == 4 * (hour + 1)
