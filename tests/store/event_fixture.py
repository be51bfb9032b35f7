"""One set of units and events, the definitions that read them, and the reference aggregates.

Every event store must return exactly these numbers (tests/store/test_event_stores.py). The small
scenario is worked out by hand below; `generated()` adds a seeded larger set (ties in time, decoys,
non-numeric values, re-delivered batches, two id types) whose reference is whatever SQLite returns,
so the other stores are checked against it row for row.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from openautotune.domain.autotune import Definition, Variant

T0 = 1_700_000_000_000
MIN = 60_000
HOUR = 60 * MIN
AUTOTUNE = "checkout"
GENERATED = "generated"


def definition(**extra: Any) -> Definition:
    base: dict[str, Any] = {
        "name": AUTOTUNE,
        "variants": (Variant("va", "a", {}), Variant("vb", "b", {})),
        "success_event": "buy",
        "exploration_window": "24hr",
        "attribution_window": "1hr",
        "winner_threshold": "95%",
    }
    return Definition(**{**base, **extra})


OCCURRENCE = definition()
VALUE = definition(optimization_parameter="value")
METADATA = definition(metadata_field="price")
FILTERED = definition(success_event_value="gold")
DEFINITIONS = {"occurrence": OCCURRENCE, "value": VALUE, "metadata": METADATA, "filtered": FILTERED}


def unit(
    unit_id: str, variant: str, at: int, version: int | None = 1, run: int = 1, autotune: str = AUTOTUNE, **extra: Any
) -> dict[str, Any]:
    return {
        "autotune_id": autotune,
        "run": run,
        "unit_id": unit_id,
        "variant_id": variant,
        "first_exposure_ms": at,
        "allocation_version": version,
        "explore": False,
        "features": None,
        "propensity": None,
        "holdout": False,
        **extra,
    }


def event(
    unit_id: str,
    at: int,
    value: str | None = None,
    *,
    key: str,
    name: str = "buy",
    id_type: str = "userID",
    **meta: Any,
) -> dict[str, Any]:
    return {
        "id_type": id_type,
        "unit_id": unit_id,
        "event_name": name,
        "value": value,
        "metadata": meta or None,
        "time_ms": at,
        "received_ms": at,
        "dedup_key": key,
    }


@dataclass(frozen=True)
class Batch:
    units: list[dict[str, Any]]
    events: list[dict[str, Any]]


def scenario() -> list[Batch]:
    """The hand-worked scenario as the batches it arrives in (out of order, some twice)."""
    first = Batch(
        units=[
            unit("u1", "va", T0),
            unit("u2", "va", T0 + 1 * MIN),
            unit("u3", "vb", T0 + 2 * MIN),
            unit("u4", "vb", T0 + 3 * MIN),
            unit("u5", "vb", T0 + 4 * MIN, version=None),
            unit("u6", "va", T0 + 5 * MIN, version=2),
            unit("u8", "va", T0 + 20 * MIN),
            unit("u9", "vb", T0 + 7 * MIN),
            unit("u10", "vb", T0 + 8 * MIN),
            unit("r2", "va", T0 + 9 * MIN, run=2),
        ],
        events=[
            event("u1", T0 + 10 * MIN, "3.5", key="e01", price=3.5),
            event("u3", T0 + 2 * MIN + HOUR + 1, "5", key="e03", price=5),
            # u4: two events at the same time: the first by dedup_key ("e04a") wins.
            event("u4", T0 + 30 * MIN, "1", key="e04a", price="1.25"),
            event("u4", T0 + 30 * MIN, "9", key="e04b", price=9),
            event("u5", T0 + 4 * MIN, "n/a", key="e05", price="n/a"),
            event("u6", T0, "7", key="e06a", price=7),  # before its exposure: ignored
            event("u6", T0 + 5 * MIN, "gold", key="e06b", price=True),
            event("u9", T0 + 9 * MIN, "4", key="e09", id_type="stableID", price=4),  # other id type
            event("u10", T0 + 9 * MIN, "4", key="e10", name="view", price=4),  # decoy event name
            event("r2", T0 + 10 * MIN, "4", key="e11", price=4),  # its unit is of run 2
        ],
    )
    second = Batch(
        units=[
            unit("u1", "va", T0),  # re-delivered
            unit("u8", "va", T0 + 6 * MIN),  # a late, earlier exposure of u8: replaces T0+20min
            unit("u7", "va", T0 + 40 * MIN),  # exposed after its event arrived (out of order)
        ],
        events=[
            event("u1", T0 + 10 * MIN, "3.5", key="e01", price=3.5),  # re-delivered
            event("u7", T0 + 50 * MIN, "2.5", key="e07", price={"x": 1}),
            event("u8", T0 + 15 * MIN, "gold", key="e08", price="6"),  # in u8's window from T0+6min only
        ],
    )
    return [Batch(units=[], events=second.events[1:2]), first, second]


AS_OF = T0 + 3 * HOUR
SPLIT = T0 + HOUR + 5 * MIN  # an incremental update here, then one at AS_OF
A = ("va", 1)
A2 = ("va", 2)
B = ("vb", 1)
B0 = ("vb", 0)

# (variant, period) -> (units, successes, total, total_sq, rejected), at AS_OF.
# va/1: u1 (3.5), u2, u8 (event at +15min, inside [+6, +66]), u7 (2.5).  va/2: u6.
# vb/1: u3 (too late), u4 (tie -> "1"), u9 (other id type), u10 (decoy).  vb/0: u5 ("n/a").
REFERENCE: dict[str, dict[tuple[str, int], tuple[int, int, float, float, int]]] = {
    "occurrence": {A: (4, 3, 3.0, 3.0, 0), A2: (1, 1, 1.0, 1.0, 0), B: (4, 1, 1.0, 1.0, 0), B0: (1, 1, 1.0, 1.0, 0)},
    # values: u1 3.5, u8 "gold" rejected, u7 2.5; u6 "gold" rejected; u4 1; u5 "n/a" rejected.
    "value": {
        A: (4, 2, 6.0, 3.5**2 + 2.5**2, 1),
        A2: (1, 0, 0.0, 0.0, 1),
        B: (4, 1, 1.0, 1.0, 0),
        B0: (1, 0, 0.0, 0.0, 1),
    },
    # metadata price: u1 3.5, u8 "6", u7 an object (rejected); u6 true (rejected); u4 "1.25"; u5 "n/a".
    "metadata": {
        A: (4, 2, 9.5, 3.5**2 + 36.0, 1),
        A2: (1, 0, 0.0, 0.0, 1),
        B: (4, 1, 1.25, 1.25**2, 0),
        B0: (1, 0, 0.0, 0.0, 1),
    },
    # only events whose value is "gold": u8 and u6.
    "filtered": {A: (4, 1, 1.0, 1.0, 0), A2: (1, 1, 1.0, 1.0, 0), B: (4, 0, 0.0, 0.0, 0), B0: (1, 0, 0.0, 0.0, 0)},
}


def generated(seed: int = 7, units: int = 1500) -> list[Batch]:
    """A seeded larger set: 40% converting, ties in time, decoys, bad values, re-sent batches."""
    rng = random.Random(seed)
    unit_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    for number in range(units):
        unit_id = f"g{number}"
        at = T0 + rng.randrange(0, 2 * HOUR)
        variant = rng.choice(["va", "vb"])
        unit_rows.append(unit(unit_id, variant, at, version=rng.choice([1, 2, None]), autotune=GENERATED))
        if rng.random() < 0.4:
            for k in range(rng.choice([1, 1, 2, 3])):
                when = at + rng.choice([0, 5 * MIN, 5 * MIN, HOUR, HOUR + 1, -1])
                value = rng.choice(["1", "2.5", "-3e2", "x", "10", "1e999", None])
                event_rows.append(
                    event(unit_id, when, value, key=f"k{number:05d}{k}", price=rng.choice([1, 2.5, "7", "bad", None]))
                )
        if rng.random() < 0.1:
            event_rows.append(event(unit_id, at + MIN, "1", key=f"d{number:05d}", name="view"))
    half = len(event_rows) // 2
    return [
        Batch(units=[], events=event_rows[:half]),
        Batch(units=unit_rows, events=event_rows[half - 100 :]),
        Batch(units=unit_rows[:200], events=event_rows[:300]),  # re-delivered
    ]


# --- the health reads: holdout, delayed conversions (tests/store/test_event_store_health.py) ---------

HEALTH = "health"


def holdout_batches() -> list[Batch]:
    """Three holdout units added to the scenario, worked out by hand: h1 (va, T0+1min, buy "2" at +10min),
    h2 (vb, T0+50min, no event), h3 (va, stored at +30min, then a late, earlier exposure at +3min; buy "4"
    at +20min, in its window only from +3min)."""
    first = Batch(
        units=[
            unit("h1", "va", T0 + 1 * MIN, holdout=True),
            unit("h2", "vb", T0 + 50 * MIN, holdout=True),
            unit("h3", "va", T0 + 30 * MIN, holdout=True),
        ],
        events=[event("h1", T0 + 10 * MIN, "2", key="eh1"), event("h3", T0 + 20 * MIN, "4", key="eh3")],
    )
    return [first, Batch(units=[unit("h3", "va", T0 + 3 * MIN, holdout=True)], events=[])]


def health_generated(seed: int = 11) -> list[Batch]:
    """`generated()`'s rows for autotune `health`, a fifth of its units held out, and late, earlier
    exposures (one or two, some moving a unit into an earlier window) delivered after the units."""
    rng = random.Random(seed)
    batches = [
        Batch(
            units=[{**row, "autotune_id": HEALTH, "holdout": int(row["unit_id"][1:]) % 5 == 0} for row in b.units],
            events=b.events,
        )
        for b in generated()
    ]
    late: list[dict[str, Any]] = []
    for row in batches[1].units:
        if int(row["unit_id"][1:]) % 9 != 0:
            continue
        for _ in range(rng.choice([1, 1, 2])):
            earlier = row["first_exposure_ms"] - rng.choice([MIN, 20 * MIN, 70 * MIN])
            late.append({**row, "first_exposure_ms": earlier, "variant_id": rng.choice(["va", "vb"])})
    return [*batches, Batch(units=late[: len(late) // 2], events=[]), Batch(units=late[len(late) // 2 :], events=[])]


def late_exposures(seed: int = 11) -> Batch:
    """Earlier exposures of about one unit in ten of `generated()`, arriving after it (the `late` rows
    of ClickHouse): some move the unit to an earlier window, some before the first read, some change
    its variant or version; a few are exposed twice more, the earliest arriving last."""
    rng = random.Random(seed)
    rows = []
    for stored in generated()[1].units:
        if rng.random() < 0.1:
            at = stored["first_exposure_ms"] - rng.choice([1, 10 * MIN, 40 * MIN, 90 * MIN, 3 * HOUR])
            variant, version = rng.choice(["va", "vb"]), rng.choice([1, 2, None])
            rows.append(unit(stored["unit_id"], variant, at, version, autotune=GENERATED))
            if rng.random() < 0.2:
                rows.append(unit(stored["unit_id"], "vb", at - 5 * MIN, 2, autotune=GENERATED))
    return Batch(units=rows, events=[])


# Incremental reads of one hour or less over the generated set, as the engine's hourly updates make them.
WINDOWS = [
    (T0 + 30 * MIN, T0 + HOUR + 30 * MIN),
    (T0 + HOUR + 30 * MIN, T0 + 2 * HOUR + 30 * MIN),
    (T0 + 2 * HOUR + 30 * MIN, T0 + 3 * HOUR + 30 * MIN),
    (T0 + 3 * HOUR + 30 * MIN, T0 + 4 * HOUR),
]
