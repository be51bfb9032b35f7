"""Engine update cost: a full update over 1M units and 1M events, and hourly incremental updates.

    .venv/bin/python bench/update.py [--backend sqlite|postgresql|both] [--units 1000000] [--events 1000000]

Data: `--units` units first exposed evenly over `--hours` hours (10,000 an hour by default), 3 variants,
5% converting with a `purchase` event within the 1-hour window, the rest of `--events` being other
events (`page_view`) of the same units. Loaded with the fastest bulk path of each database
(executemany on SQLite, COPY on PostgreSQL).

Measured in one run, on one machine:
1. hourly: autotune A is updated once an hour, as of 2h, 3h, ..., (hours+1)h; each update reads the
   ~10,000 units that matured in its hour. Printed: the 1st and the 100th update's time and their
   RATIO (goal < 1.5: the cost grows with new data, not with history), and the same for the median
   of the first and last five updates.
2. full: autotune B (a copy of A's units) is updated once, as of the end: every unit is newly mature,
   so the update reads all of them and joins their events: the cost of a first update over a backlog.
The autotunes' exploration window (336 h) outlasts the data, so neither is ever finished early.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from openautotune.clock import FixedClock
from openautotune.domain.autotune import Actor
from openautotune.engine.update import update_autotune
from openautotune.service import autotunes as autotune_service
from openautotune.service.autotunes import VariantInput
from openautotune.store import attribution, migrate
from openautotune.store import autotunes as autotune_store
from openautotune.store.database import Database, normalise_url

HOUR = 3_600_000
START = 1_767_225_600_000
ACTOR = Actor(id="bench", name="bench")
UNIT_COLUMNS = ("autotune_id", "run", "unit_id", "variant_id", "first_exposure_ms", "allocation_version", "explore")
EVENT_COLUMNS = ("id_type", "unit_id", "event_name", "value", "metadata", "time_ms", "received_ms", "dedup_key")


def start_autotune(db: Database, clock: FixedClock, name: str) -> tuple[str, list[str], int]:
    fields = {
        "name": name,
        "variants": [VariantInput(n, {}) for n in ("a", "b", "c")],
        "success_event": "purchase",
        "exploration_window": "336hr",
        "attribution_window": "1hr",
        "winner_threshold": "99%",
    }
    created = autotune_service.create(db, clock, ACTOR, fields)
    started = autotune_service.start(db, clock, ACTOR, created.id)
    return started.id, [v.id for v in started.definition.variants], started.allocation_version


def generate(
    units: int, events: int, hours: int, seed: int = 7
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    exposure = START + np.sort(rng.integers(0, hours * HOUR, size=units))
    variant = rng.integers(0, 3, size=units)
    converted = np.flatnonzero(rng.random(units) < 0.05)
    conversions = min(len(converted), events)
    converted = converted[:conversions]
    noise = events - conversions
    noise_units = rng.integers(0, units, size=noise)
    event_units = np.concatenate([converted, noise_units])
    event_times = np.concatenate(
        [
            exposure[converted] + rng.integers(0, HOUR, size=conversions),
            exposure[noise_units] + rng.integers(0, 2 * HOUR, size=noise),
        ]
    )
    names = np.concatenate([np.zeros(conversions, dtype=np.int8), np.ones(noise, dtype=np.int8)])
    return exposure, variant, np.arange(units), {"unit": event_units, "time": event_times, "name": names}


def unit_rows(
    autotune_id: str, variants: list[str], version: int, exposure: np.ndarray, variant: np.ndarray
) -> Iterator[tuple[object, ...]]:
    for i in range(exposure.size):
        yield (autotune_id, 1, f"u{i}", variants[int(variant[i])], int(exposure[i]), version, False)


def event_rows(events: dict[str, np.ndarray]) -> Iterator[tuple[object, ...]]:
    names = ("purchase", "page_view")
    for i in range(events["unit"].size):
        at = int(events["time"][i])
        yield ("userID", f"u{int(events['unit'][i])}", names[int(events["name"][i])], None, None, at, at, f"e{i}")


def load(db: Database, table: str, columns: tuple[str, ...], rows: Iterator[tuple[object, ...]]) -> None:
    raw = db.engine.raw_connection()
    try:
        if db.is_sqlite:
            cursor = raw.cursor()
            cursor.execute("BEGIN")
            marks = ", ".join("?" for _ in columns)
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
            cursor.execute("COMMIT")
        else:
            with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(row)
            raw.commit()
    finally:
        raw.close()


def analyse(db: Database) -> None:
    """PostgreSQL: ANALYZE, as autovacuum would after a bulk load. SQLite: nothing, as the server
    never runs ANALYZE there (with sqlite_stat1 present, SQLite 3.38+ may plan a Bloom filter over
    the whole events table for the attribution join: a cost that grows with history; see
    docs/engine.md)."""
    if db.is_sqlite:
        return
    with db.engine.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
        conn.commit()


def timed_update(db: Database, clock: FixedClock, autotune_id: str, as_of: int) -> tuple[float, int]:
    clock.set(as_of)
    began = time.perf_counter()
    outcome = update_autotune(db, clock, autotune_id, as_of)
    elapsed = time.perf_counter() - began
    if not outcome.updated:
        raise RuntimeError(f"update skipped: {outcome.reason}")
    return elapsed, outcome.new_units


def timed_query(db: Database, autotune_id: str, as_of: int) -> float:
    with db.read() as conn:
        autotune = autotune_store.get(conn, autotune_id)
    assert autotune is not None
    times = []
    for _ in range(5):
        with db.read() as conn:
            began = time.perf_counter()
            attribution.matured_aggregates(
                conn,
                autotune_id=autotune_id,
                run=autotune.run,
                definition=autotune.definition,
                matured_after_ms=as_of - HOUR,
                as_of_ms=as_of,
            )
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def run(url: str, units: int, events: int, hours: int) -> dict[str, float]:
    db = Database.from_url(url)
    migrate.upgrade(db.engine)
    clock = FixedClock(START)
    autotune_a, variants_a, version_a = start_autotune(db, clock, "bench_hourly")
    autotune_b, variants_b, version_b = start_autotune(db, clock, "bench_full")
    exposure, variant, _, generated = generate(units, events, hours)
    began = time.perf_counter()
    load(db, "units", UNIT_COLUMNS, unit_rows(autotune_a, variants_a, version_a, exposure, variant))
    load(db, "units", UNIT_COLUMNS, unit_rows(autotune_b, variants_b, version_b, exposure, variant))
    load(db, "events", EVENT_COLUMNS, event_rows(generated))
    analyse(db)
    loaded = time.perf_counter() - began
    print(f"  loaded {2 * units:,} units and {events:,} events in {loaded:.1f} s", flush=True)

    hourly: list[float] = []
    read = 0
    for hour in range(2, hours + 2):
        elapsed, new_units = timed_update(db, clock, autotune_a, START + hour * HOUR)
        hourly.append(elapsed)
        read += new_units
    assert read == units, (read, units)
    full, full_units = timed_update(db, clock, autotune_b, START + (hours + 2) * HOUR)
    assert full_units == units
    # The attribution SQL alone, read-only and so repeatable: the first and the last hourly window,
    # median of five runs each. It isolates what could grow with history from fsync and load noise.
    query_first = timed_query(db, autotune_a, START + 2 * HOUR)
    query_last = timed_query(db, autotune_a, START + (hours + 1) * HOUR)
    db.dispose()
    first5, last5 = statistics.median(hourly[:5]), statistics.median(hourly[-5:])
    return {
        "full": full,
        "first": hourly[0],
        "last": hourly[-1],
        "ratio": hourly[-1] / hourly[0],
        "first5": first5,
        "last5": last5,
        "ratio5": last5 / first5,
        "per_hour_units": units / hours,
        "query_first": query_first,
        "query_last": query_last,
        "query_ratio": query_last / query_first,
    }


def postgres_schema(base: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def report(name: str, result: dict[str, float], hours: int) -> None:
    print(f"{name}: full update over all units: {result['full']:.2f} s")
    print(
        f"{name}: hourly update (~{result['per_hour_units']:,.0f} new units): 1st {result['first'] * 1000:.0f} ms, "
        f"{hours}th {result['last'] * 1000:.0f} ms, ratio {result['ratio']:.2f}; median of first/last five "
        f"{result['first5'] * 1000:.0f}/{result['last5'] * 1000:.0f} ms, ratio {result['ratio5']:.2f}"
    )
    print(
        f"{name}: attribution query alone, first/last hourly window (median of 5): "
        f"{result['query_first'] * 1000:.1f}/{result['query_last'] * 1000:.1f} ms, ratio {result['query_ratio']:.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--hours", type=int, default=100)
    parser.add_argument("--postgres-url", default=os.environ.get("OPENAUTOTUNE_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="bench-update-") as folder:
            print("sqlite (file on disk):", flush=True)
            report(
                "sqlite", run(f"sqlite:///{Path(folder) / 'bench.db'}", args.units, args.events, args.hours), args.hours
            )
    if args.backend in ("postgresql", "both"):
        if not args.postgres_url:
            print("postgresql: skipped (set --postgres-url or OPENAUTOTUNE_TEST_POSTGRES_URL)")
            return 0 if args.backend == "both" else 1
        for url in postgres_schema(normalise_url(args.postgres_url)):
            print("postgresql:", flush=True)
            report("postgresql", run(url, args.units, args.events, args.hours), args.hours)
    return 0


if __name__ == "__main__":
    sys.exit(main())
