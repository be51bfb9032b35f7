"""Every event store gives the health parts of an update the same inputs on the same rows (SQLite,
PostgreSQL, chdb, one ClickHouse 18.16 server and a two-shard 18.16 cluster): guardrail aggregates,
the holdout's aggregates, conversion delays and immature units (engine.md, "Health", "Holdout",
"Delayed conversions"). Small cases are worked out by hand; the generated set is checked against SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from openautotune.domain.guardrails import Guardrail
from openautotune.engine.health import _as_outcome
from openautotune.store.attribution import BEGINNING_MS
from openautotune.store.delay import ImmatureCell
from openautotune.store.event_store import EventStore

from .conftest import open_store
from .event_fixture import (
    AS_OF,
    DEFINITIONS,
    HEALTH,
    MIN,
    REFERENCE,
    SPLIT,
    T0,
    health_generated,
    holdout_batches,
    scenario,
)
from .test_event_stores import aggregates, load, table

GUARDRAILS = {
    "views": _as_outcome(DEFINITIONS["value"], Guardrail(event="view", max_relative_harm=0.1)),
    "buys of 1": _as_outcome(DEFINITIONS["metadata"], Guardrail(event="buy", max_relative_harm=0.1, value="1")),
}
IMMATURE_AT = (T0 + 30 * MIN, T0 + 90 * MIN, T0 + 150 * MIN)


def cells(rows: list[ImmatureCell]) -> dict[tuple[str, int, int], tuple[int, int, float, float]]:
    out = {
        (c.variant_id, c.period, c.bin): (c.units, c.successes, round(c.total, 9), round(c.total_sq, 9)) for c in rows
    }
    assert len(out) == len(rows)  # one cell per (variant, period, bin)
    return out


def health_inputs(store: EventStore, autotune: str) -> dict[str, Any]:
    """Everything the health parts read, for every definition, full and in two incremental steps."""
    answers: dict[str, Any] = {}
    steps = {"full": (BEGINNING_MS, AS_OF), "first": (BEGINNING_MS, SPLIT), "second": (SPLIT, AS_OF)}
    for name, definition in DEFINITIONS.items():
        for step, (after, as_of) in steps.items():
            span = {"autotune_id": autotune, "run": 1, "definition": definition}
            window = {"matured_after_ms": after, "as_of_ms": as_of}
            answers[f"{name}/holdout/{step}"] = table(store.holdout_aggregates(**span, **window))
            for bins in (4, 48):
                answers[f"{name}/delays/{bins}/{step}"] = store.delay_histogram(**span, **window, bins=bins)
        for at in IMMATURE_AT:
            answers[f"{name}/immature/{at}"] = cells(
                store.immature_cells(autotune_id=autotune, run=1, definition=definition, as_of_ms=at, bins=48)
            )
    for name, definition in GUARDRAILS.items():
        for step, (after, as_of) in steps.items():
            answers[f"guardrail {name}/{step}"] = table(
                store.matured_aggregates(
                    autotune_id=autotune, run=1, definition=definition, matured_after_ms=after, as_of_ms=as_of
                )
            )
    return answers


# --- worked out by hand --------------------------------------------------------------------------


def test_delays_of_the_scenario(event_store: EventStore) -> None:
    """Matured at AS_OF, with their first buy: u1 10min, u5 0, u6 0 (its earlier event is before its
    exposure), u7 10min, u8 9min (from its late exposure at +6min), u4 27min (the one in bin 1 of 4);
    u3's buy is 1 ms past its window, u9's of another id type, u10's a decoy."""
    load(event_store, scenario())
    occurrence = DEFINITIONS["occurrence"]
    full = event_store.delay_histogram(
        autotune_id="checkout", run=1, definition=occurrence, matured_after_ms=BEGINNING_MS, as_of_ms=AS_OF, bins=4
    )
    assert full == [5, 1, 0, 0]

    def gold(after: int, as_of: int) -> list[int]:
        filtered = DEFINITIONS["filtered"]
        return event_store.delay_histogram(
            autotune_id="checkout", run=1, definition=filtered, matured_after_ms=after, as_of_ms=as_of, bins=4
        )

    # The gold buys: u6 (at its exposure, +5min) matures by SPLIT, u8 (+6min, its buy 9min later) after.
    assert gold(BEGINNING_MS, SPLIT) == [1, 0, 0, 0] and gold(SPLIT, AS_OF) == [1, 0, 0, 0]


def test_immature_units_of_the_scenario(event_store: EventStore) -> None:
    """At T0+30min every run-1 unit but u7 is immature (u8 from its late exposure at +6min); ages in
    bins of 15 minutes: u1 is 30 minutes old (bin 2), the rest 22-29 (bin 1). Buys so far: u1, u8
    (va/1), u6 (va/2, at its exposure), u4 (vb/1), u5 (vb/0, "n/a" as a value)."""
    load(event_store, scenario())

    def at(name: str) -> dict[tuple[str, int, int], tuple[int, int, float, float]]:
        rows = event_store.immature_cells(
            autotune_id="checkout", run=1, definition=DEFINITIONS[name], as_of_ms=T0 + 30 * MIN, bins=4
        )
        return cells(rows)

    assert at("occurrence") == {
        ("va", 1, 2): (1, 1, 1.0, 1.0),
        ("va", 1, 1): (2, 1, 1.0, 1.0),
        ("va", 2, 1): (1, 1, 1.0, 1.0),
        ("vb", 0, 1): (1, 1, 1.0, 1.0),
        ("vb", 1, 1): (4, 1, 1.0, 1.0),
    }
    # Values: u1 3.5, u8 "gold" and u6 "gold" and u5 "n/a" are not numbers (no success), u4 the tie's "1".
    assert at("value") == {
        ("va", 1, 2): (1, 1, 3.5, 12.25),
        ("va", 1, 1): (2, 0, 0.0, 0.0),
        ("va", 2, 1): (1, 0, 0.0, 0.0),
        ("vb", 0, 1): (1, 0, 0.0, 0.0),
        ("vb", 1, 1): (4, 1, 1.0, 1.0),
    }


def test_holdout_units_are_read_apart_from_the_bandits(event_store: EventStore) -> None:
    load(event_store, [*scenario(), *holdout_batches()])
    value = DEFINITIONS["value"]

    def holdout(after: int, as_of: int) -> dict[tuple[str, int], tuple[int, int, float, float, int]]:
        rows = event_store.holdout_aggregates(
            autotune_id="checkout", run=1, definition=value, matured_after_ms=after, as_of_ms=as_of
        )
        return table(rows)

    assert holdout(BEGINNING_MS, AS_OF) == {("va", 1): (2, 2, 6.0, 20.0, 0), ("vb", 1): (1, 0, 0.0, 0.0, 0)}
    # h3 matures with its late exposure (+3min), before SPLIT; h2 (+50min) after it.
    assert holdout(BEGINNING_MS, SPLIT) == {("va", 1): (2, 2, 6.0, 20.0, 0)}
    assert holdout(SPLIT, AS_OF) == {("vb", 1): (1, 0, 0.0, 0.0, 0)}
    assert table(aggregates(event_store, "value", BEGINNING_MS, AS_OF)) == REFERENCE["value"]  # the bandit's


# --- the generated set, against SQLite -----------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_health(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, Any]:
    gen = open_store("sqlite", request, tmp_path_factory.mktemp("health-reference"))
    store = next(gen)
    load(store, health_generated())
    answers = health_inputs(store, HEALTH)
    for _ in gen:
        pass
    return answers


def test_the_health_set_is_not_trivial(sqlite_health: dict[str, Any]) -> None:
    held = sqlite_health["value/holdout/full"]
    assert sum(row[0] for row in held.values()) > 200 and sum(row[1] for row in held.values()) > 30
    assert sum(row[4] for row in held.values()) > 5  # rejected values
    assert sum(sqlite_health["occurrence/delays/48/full"]) > 300
    immature = sqlite_health[f"value/immature/{T0 + 90 * MIN}"]
    assert len(immature) > 50 and sum(cell[1] for cell in immature.values()) > 50
    assert sum(row[1] for row in sqlite_health["guardrail views/full"].values()) > 50


def test_health_inputs_match_sqlite(event_store: EventStore, sqlite_health: dict[str, Any]) -> None:
    load(event_store, health_generated())
    answers = health_inputs(event_store, HEALTH)
    assert answers.keys() == sqlite_health.keys()
    for key, expected in sqlite_health.items():
        assert answers[key] == expected, key
