"""Attribution edge cases, one per test, on SQLite and PostgreSQL (engine.md, "Units and outcomes")."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa

from openautotune.domain.autotune import Autotune
from openautotune.store.attribution import BEGINNING_MS, Aggregate, matured_aggregates, query_text
from openautotune.testing import START_MS

from .conftest import Env

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = START_MS + 10 * MIN  # first exposures happen a little after the start


def attribute(env: Env, autotune: Autotune, as_of: int, after: int = BEGINNING_MS) -> dict[str, Aggregate]:
    """Aggregates by variant NAME (periods pooled: these tests use one period)."""
    with env.db.read() as conn:
        rows = matured_aggregates(
            conn,
            autotune_id=autotune.id,
            run=autotune.run,
            definition=autotune.definition,
            matured_after_ms=after,
            as_of_ms=as_of,
        )
    names = {v.id: v.name for v in autotune.definition.variants}
    out: dict[str, Aggregate] = {}
    for row in rows:
        name = names[row.variant_id]
        out[name] = out[name].plus(row) if name in out else row
    return out


def one(env: Env, autotune: Autotune, as_of: int = T0 + DAY) -> Aggregate:
    """Unit u1 exposed to variant a at T0; returns variant a's aggregate at `as_of`."""
    return attribute(env, autotune, as_of)["a"]


def test_event_inside_the_window_is_a_success(env: Env) -> None:
    autotune = env.create()
    env.unit(autotune, "u1", 0, T0)
    env.event("u1", T0 + 30 * MIN)
    a = one(env, autotune)
    assert (a.units, a.successes, a.total, a.total_sq, a.rejected) == (1, 1, 1.0, 1.0, 0)


def test_event_before_exposure_does_not_count(env: Env) -> None:
    autotune = env.create()
    env.unit(autotune, "u1", 0, T0)
    env.event("u1", T0 - 1)
    a = one(env, autotune)
    assert (a.units, a.successes) == (1, 0)


def test_event_exactly_at_exposure_counts(env: Env) -> None:
    autotune = env.create()
    env.unit(autotune, "u1", 0, T0)
    env.event("u1", T0)
    assert one(env, autotune).successes == 1


def test_event_exactly_at_window_end_counts(env: Env) -> None:
    autotune = env.create()
    env.unit(autotune, "u1", 0, T0)
    env.event("u1", T0 + HOUR)
    assert one(env, autotune).successes == 1


def test_event_one_ms_after_window_end_does_not_count(env: Env) -> None:
    autotune = env.create()
    env.unit(autotune, "u1", 0, T0)
    env.event("u1", T0 + HOUR + 1)
    a = one(env, autotune)
    assert (a.units, a.successes) == (1, 0)


def test_other_event_name_does_not_count(env: Env) -> None:
    autotune = env.create()
    env.unit(autotune, "u1", 0, T0)
    env.event("u1", T0 + MIN, name="page_view")
    assert one(env, autotune).successes == 0


def test_success_event_value_must_match(env: Env) -> None:
    autotune = env.create(success_event_value="gold")
    env.units(autotune, [("u1", 0, T0), ("u2", 0, T0), ("u3", 0, T0)])
    env.event("u1", T0 + MIN, value="silver")
    env.event("u2", T0 + MIN, value="gold")
    env.event("u3", T0 + MIN)  # no value at all
    a = one(env, autotune)
    assert (a.units, a.successes) == (3, 1)


def test_other_id_type_does_not_count(env: Env) -> None:
    autotune = env.create(id_type="accountID")
    env.units(autotune, [("u1", 0, T0), ("u2", 0, T0)])
    env.event("u1", T0 + MIN, id_type="userID")
    env.event("u2", T0 + MIN, id_type="accountID")
    a = one(env, autotune)
    assert (a.units, a.successes) == (2, 1)


def test_other_unit_does_not_count(env: Env) -> None:
    autotune = env.create()
    env.unit(autotune, "u1", 0, T0)
    env.event("u2", T0 + MIN)
    assert one(env, autotune).successes == 0


def test_units_count_once_and_by_their_first_exposure_variant(env: Env) -> None:
    """The units table holds the first exposure; a later exposure to another variant changes nothing."""
    autotune = env.create()
    env.unit(autotune, "u1", 0, T0)
    env.event("u1", T0 + MIN)
    env.event("u1", T0 + 2 * MIN)  # a second conversion still makes one success
    result = attribute(env, autotune, T0 + DAY)
    assert set(result) == {"a"}
    assert (result["a"].units, result["a"].successes) == (1, 1)


def test_units_not_yet_mature_are_not_read(env: Env) -> None:
    autotune = env.create()
    env.units(autotune, [("u1", 0, T0), ("u2", 0, T0 + 30 * MIN)])
    env.event("u1", T0 + MIN)
    env.event("u2", T0 + 31 * MIN)
    assert attribute(env, autotune, T0 + HOUR - 1) == {}
    at_first = attribute(env, autotune, T0 + HOUR)["a"]
    assert (at_first.units, at_first.successes) == (1, 1)
    # The next window (T0 + 1h, T0 + 2h] reads only u2.
    second = attribute(env, autotune, T0 + 2 * HOUR, after=T0 + HOUR)["a"]
    assert (second.units, second.successes) == (1, 1)


def test_event_after_as_of_is_not_read_even_inside_the_window(env: Env) -> None:
    """Maturity makes this impossible for mature units; the extra time bound must not drop real hits."""
    autotune = env.create()
    env.unit(autotune, "u1", 0, T0)
    env.event("u1", T0 + HOUR)
    assert one(env, autotune, as_of=T0 + HOUR).successes == 1


def test_minutes_window(env: Env) -> None:
    autotune = env.create(attribution_window="2", attribution_window_unit="min")
    env.units(autotune, [("u1", 0, T0), ("u2", 0, T0)])
    env.event("u1", T0 + 2 * MIN)
    env.event("u2", T0 + 2 * MIN + 1)
    assert attribute(env, autotune, T0 + 2 * MIN - 1) == {}
    a = one(env, autotune, as_of=T0 + 2 * MIN)
    assert (a.units, a.successes) == (2, 1)


def test_hours_window(env: Env) -> None:
    autotune = env.create(attribution_window="4hr", attribution_window_unit="hour")
    env.units(autotune, [("u1", 0, T0), ("u2", 0, T0)])
    env.event("u1", T0 + 4 * HOUR)
    env.event("u2", T0 + 4 * HOUR + 1)
    assert attribute(env, autotune, T0 + 4 * HOUR - 1) == {}
    a = one(env, autotune, as_of=T0 + 4 * HOUR)
    assert (a.units, a.successes) == (2, 1)


def test_days_window(env: Env) -> None:
    autotune = env.create(attribution_window="2", attribution_window_unit="day")
    env.units(autotune, [("u1", 0, T0), ("u2", 0, T0)])
    env.event("u1", T0 + 2 * DAY)
    env.event("u2", T0 + 2 * DAY + 1)
    assert attribute(env, autotune, T0 + 2 * DAY - 1) == {}
    a = one(env, autotune, as_of=T0 + 2 * DAY)
    assert (a.units, a.successes) == (2, 1)


def test_value_from_metadata_field_uses_the_first_success_event(env: Env) -> None:
    autotune = env.create(metadata_field="price", optimization_parameter="value")
    env.units(autotune, [("u1", 0, T0), ("u2", 0, T0), ("u3", 0, T0)])
    env.event("u1", T0 + 2 * MIN, metadata={"price": "5"})
    env.event("u1", T0 + MIN, metadata={"price": "2.5"})  # earlier: this one counts
    env.event("u2", T0 + MIN, metadata={"price": 4})  # a JSON number works too
    a = one(env, autotune)  # u3 never converted: it scores 0
    assert (a.units, a.successes, a.total, a.total_sq, a.rejected) == (3, 2, 6.5, 22.25, 0)


def test_value_from_event_value(env: Env) -> None:
    autotune = env.create(optimization_parameter="value")
    env.units(autotune, [("u1", 0, T0), ("u2", 0, T0)])
    env.event("u1", T0 + MIN, value="-1.5e1")
    env.event("u2", T0 + MIN, value="3")
    a = one(env, autotune)
    assert (a.units, a.successes, a.total, a.total_sq) == (2, 2, -12.0, 234.0)


def test_metadata_field_alone_implies_value(env: Env) -> None:
    autotune = env.create(metadata_field="revenue")
    env.unit(autotune, "u1", 0, T0)
    env.event("u1", T0 + MIN, value="100", metadata={"revenue": "7"})
    a = one(env, autotune)
    assert (a.successes, a.total) == (1, 7.0)


def test_non_numeric_values_are_rejected_and_counted(env: Env) -> None:
    autotune = env.create(optimization_parameter="value")
    bad = ["n/a", "", "1e999", "NaN", "Infinity", "0x10", " 5", "1,5", "12abc", "--1", "9" * 41]
    rows = [(f"bad{i}", 0, T0) for i in range(len(bad))] + [("good", 0, T0)]
    env.units(autotune, rows)
    for i, text in enumerate(bad):
        env.event(f"bad{i}", T0 + MIN, value=text)
    env.event("good", T0 + MIN, value="2")
    a = one(env, autotune)
    assert (a.units, a.successes, a.total, a.rejected) == (len(bad) + 1, 1, 2.0, len(bad))


def test_missing_or_non_numeric_metadata_is_rejected(env: Env) -> None:
    autotune = env.create(metadata_field="price")
    env.units(autotune, [("u1", 0, T0), ("u2", 0, T0), ("u3", 0, T0), ("u4", 0, T0)])
    env.event("u1", T0 + MIN, metadata={"other": "1"})
    env.event("u2", T0 + MIN, metadata={"price": "free"})
    env.event("u3", T0 + MIN, metadata={"price": True})
    env.event("u4", T0 + MIN, metadata={"price": "1.25"})
    a = one(env, autotune)
    assert (a.units, a.successes, a.total, a.rejected) == (4, 1, 1.25, 3)


def test_a_reset_run_ignores_the_earlier_run(env: Env) -> None:
    autotune = env.create()
    env.unit(autotune, "old", 0, T0, run=1)
    env.unit(autotune, "new", 1, T0, run=2)
    env.event("old", T0 + MIN)
    second_run = replace(autotune, run=2)
    result = attribute(env, second_run, T0 + DAY)
    assert set(result) == {"b"}
    assert (result["b"].units, result["b"].successes) == (1, 0)


def test_aggregates_are_kept_per_period(env: Env) -> None:
    autotune = env.create()
    env.unit(autotune, "u1", 0, T0, period=1)
    env.unit(autotune, "u2", 0, T0, period=2)
    env.event("u2", T0 + MIN)
    with env.db.read() as conn:
        rows = matured_aggregates(
            conn,
            autotune_id=autotune.id,
            run=1,
            definition=autotune.definition,
            matured_after_ms=BEGINNING_MS,
            as_of_ms=T0 + DAY,
        )
    assert [(r.period, r.units, r.successes) for r in rows] == [(1, 1, 0), (2, 1, 1)]


@pytest.mark.parametrize(
    "overrides",
    [{}, {"success_event_value": "gold"}, {"metadata_field": "price"}, {"optimization_parameter": "value"}],
)
def test_the_query_reads_units_by_maturity_range_and_events_by_unit(sqlite_env: Env, overrides: dict[str, str]) -> None:
    """The plan behind "cost follows new data": a range of the maturity index, one index probe per unit."""
    autotune = sqlite_env.create(**overrides)
    sqlite_env.unit(autotune, "u1", 0, T0)
    sqlite_env.event("u1", T0 + MIN, value="gold", metadata={"price": "1"})
    text = query_text("sqlite", autotune.definition)
    params = {
        "autotune_id": autotune.id,
        "run": 1,
        "matured_after": T0,
        "as_of": T0 + HOUR,
        "window_ms": HOUR,
        "event_name": "purchase",
        "id_type": "userID",
        "success_value": "gold",
        "metadata_path": '$."price"',
        "holdout": False,
    }
    with sqlite_env.db.read() as conn:
        plan = [row[3] for row in conn.execute(sa.text("EXPLAIN QUERY PLAN " + text), params)]
    units = [line for line in plan if " u " in f" {line} "]
    events = [line for line in plan if " e " in f" {line} "]
    assert units == [
        "SEARCH u USING COVERING INDEX ix_units_maturity "
        "(autotune_id=? AND run=? AND first_exposure_ms>? AND first_exposure_ms<?)"
    ]
    assert len(events) == 1
    assert events[0].startswith("SEARCH e USING ")
    assert "ix_events_attribution (event_name=? AND id_type=? AND unit_id=? AND time_ms>? AND time_ms<?)" in events[0]
    assert not any(line.split()[:2] in (["SCAN", "u"], ["SCAN", "e"]) or line.startswith("BLOOM") for line in plan)


def test_second_exposure_to_another_variant_does_not_matter_through_ingestion(env: Env) -> None:
    """Real ingestion: a unit exposed to `a`, then (later) to `b`, then converting, counts once, for `a`."""
    from openautotune.service.ingest import Ingestor

    autotune = env.create()
    a, b = (v.id for v in autotune.definition.variants)

    def exposure(variant: str, at: int) -> dict[str, object]:
        return {
            "eventName": "statsig::config_exposure",
            "user": {"userID": "u1"},
            "time": at,
            "metadata": {
                "config": autotune.id,
                "ruleID": variant,
                "rulePassed": "true",
                "configVersion": str(autotune.allocation_version),
                "reason": "Network",
            },
            "secondaryExposures": [],
        }

    env.clock.set(T0 + DAY)
    ingestor = Ingestor(env.db, env.clock)
    result = ingestor.ingest([exposure(a, T0), exposure(b, T0 + 5 * MIN)])
    assert result.analysable == 2
    ingestor.ingest([{"eventName": "purchase", "user": {"userID": "u1"}, "time": T0 + 10 * MIN}])
    ingestor.ingest([exposure(b, T0 + 20 * MIN)])  # a later batch changes nothing either
    result_by_name = attribute(env, autotune, T0 + DAY)
    assert set(result_by_name) == {"a"}
    assert (result_by_name["a"].units, result_by_name["a"].successes) == (1, 1)
