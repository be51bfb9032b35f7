"""The event store side by side: chdb (ClickHouse in process) vs PostgreSQL vs SQLite.

    .venv/bin/python bench/clickhouse.py [--units 2000000] [--events 2000000] [--stores sqlite,postgresql,chdb]
    .venv/bin/python bench/clickhouse.py --units 20000000 --events 20000000 --hours 2000 --stores chdb   # the 20M point

Data (generated, never committed; written under a temporary directory and deleted): `--units` units
first exposed evenly over `--hours` hours, 3 variants; 10% convert with a `purchase` event within the
1-hour window whose value is a number (2% of them "n/a", rejected); the rest of `--events` are decoy
`page_view` events of random units. PostgreSQL needs OPENAUTOTUNE_TEST_POSTGRES_URL (a private schema
is created and dropped). Measured in one run, on one machine (ratios matter more than seconds):

1. bulk load: rows/s of each store's bulk path (SQLite executemany, PostgreSQL COPY, chdb one Arrow
   INSERT per 1M rows) and of chdb through `write_rows` (the idempotent path ingestion uses: a
   key check and then the insert) on 200,000 rows;
2. full recompute: the attribution aggregates over every unit (what a first update over a backlog
   reads), best of 3 (chdb: once its background merges of the loaded parts are done);
3. hourly incremental: the aggregates of the units that matured in one hour, for hours 2-6 and the
   last five hours (best of 3 each: the machine is shared); median of each and the ratio last/first
   (goal <= 1.5: the cost follows new data, not history). Each store's hourly median is compared to PostgreSQL's.
For chdb, the process's peak RSS after the full recompute is printed (the 20M projection's memory).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from openautotune.domain.autotune import Definition, Variant
from openautotune.store import migrate
from openautotune.store.attribution import BEGINNING_MS
from openautotune.store.clickhouse.store import ClickHouseEvents
from openautotune.store.database import Database, normalise_url
from openautotune.store.event_store import EventStore
from openautotune.store.events import SqlEvents

HOUR = 3_600_000
START = 1_767_225_600_000
AUTOTUNE = "bench"
VARIANTS = ("va", "vb", "vc")
DEFINITION = Definition(
    name=AUTOTUNE,
    variants=tuple(Variant(v, v, {}) for v in VARIANTS),
    success_event="purchase",
    exploration_window="336hr",
    attribution_window="1hr",
    winner_threshold="99%",
    optimization_parameter="value",
)
UNIT_COLUMNS = ("autotune_id", "run", "unit_id", "variant_id", "first_exposure_ms", "allocation_version", "explore")
EVENT_COLUMNS = ("id_type", "unit_id", "event_name", "value", "metadata", "time_ms", "received_ms", "dedup_key")


class Data:
    def __init__(self, units: int, events: int, hours: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.hours = hours
        self.exposure = START + np.sort(rng.integers(0, hours * HOUR, size=units))
        self.variant = rng.integers(0, 3, size=units)
        converted = np.flatnonzero(rng.random(units) < 0.10)[:events]
        noise = events - converted.size
        noise_units = rng.integers(0, units, size=noise)
        self.event_unit = np.concatenate([converted, noise_units])
        self.event_time = np.concatenate(
            [
                self.exposure[converted] + rng.integers(0, HOUR, size=converted.size),
                self.exposure[noise_units] + rng.integers(0, 2 * HOUR, size=noise),
            ]
        )
        self.purchase = np.concatenate([np.ones(converted.size, dtype=bool), np.zeros(noise, dtype=bool)])
        # Numbers kept as floats and turned into text a chunk at a time (20M strings at once would not fit).
        self.number = np.round(rng.gamma(2.0, 20.0, size=events), 2)
        self.bad = rng.random(events) < 0.02

    def values(self, start: int, stop: int) -> np.ndarray:
        text = self.number[start:stop].astype(str)
        text[self.bad[start:stop]] = "n/a"
        return text

    @property
    def units(self) -> int:
        return int(self.exposure.size)

    @property
    def events(self) -> int:
        return int(self.event_unit.size)

    def unit_tuples(self) -> Iterator[tuple[object, ...]]:
        for i in range(self.units):
            yield (AUTOTUNE, 1, f"u{i}", VARIANTS[int(self.variant[i])], int(self.exposure[i]), 1, False)

    def event_tuples(self) -> Iterator[tuple[object, ...]]:
        for i in range(self.events):
            at = int(self.event_time[i])
            name = "purchase" if self.purchase[i] else "page_view"
            value = "n/a" if self.bad[i] else str(self.number[i])
            yield ("userID", f"u{int(self.event_unit[i])}", name, value, None, at, at, f"e{i:012d}")

    def arrow_units(self, start: int, stop: int) -> pa.Table:
        ids = np.arange(start, stop)
        return pa.table(
            {
                "autotune_id": pa.array([AUTOTUNE] * ids.size),
                "run": pa.array(np.ones(ids.size, dtype=np.int32)),
                "unit_id": pa.array(np.char.add("u", ids.astype(str))),
                "variant_id": pa.array(np.array(VARIANTS)[self.variant[start:stop]]),
                "first_exposure_ms": pa.array(self.exposure[start:stop]),
                "allocation_version": pa.array(np.ones(ids.size, dtype=np.int32)),
                "explore": pa.array(np.zeros(ids.size, dtype=np.uint8)),
            }
        )

    def arrow_events(self, start: int, stop: int) -> pa.Table:
        at = self.event_time[start:stop]
        return pa.table(
            {
                "id_type": pa.array(["userID"] * at.size),
                "unit_id": pa.array(np.char.add("u", self.event_unit[start:stop].astype(str))),
                "event_name": pa.array(np.where(self.purchase[start:stop], "purchase", "page_view")),
                "value": pa.array(self.values(start, stop)),
                "time_ms": pa.array(at),
                "received_ms": pa.array(at),
                "dedup_key": pa.array(np.char.add("e", np.arange(start, stop).astype(str))),
            }
        )


def load_sql(db: Database, data: Data) -> float:
    raw = db.engine.raw_connection()
    began = time.perf_counter()
    try:
        for table, columns, rows in (
            ("units", UNIT_COLUMNS, data.unit_tuples()),
            ("events", EVENT_COLUMNS, data.event_tuples()),
        ):
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
    elapsed = time.perf_counter() - began
    if not db.is_sqlite:
        with db.engine.connect() as conn:
            # Only this schema's tables: a database-wide ANALYZE waits on other sessions' locks (on a
            # shared server it queued behind another bench's DROP SCHEMA for minutes).
            conn.execute(sa.text("ANALYZE units, events"))
            conn.commit()
    return elapsed


def load_chdb(store: ClickHouseEvents, data: Data) -> float:
    session = store.main._session  # type: ignore[attr-defined]
    step = 1_000_000
    elapsed = 0.0
    for table, size, make in (("units", data.units, data.arrow_units), ("events", data.events, data.arrow_events)):
        for start in range(0, size, step):
            batch = make(start, min(size, start + step))
            names = ", ".join(batch.column_names)
            began = time.perf_counter()
            session.query(f"INSERT INTO {table} ({names}) SELECT {names} FROM Python(batch)", "Null")
            elapsed += time.perf_counter() - began
    # The inserts leave parts that ClickHouse merges in the background for a while; queries timed
    # during those merges compete with them (a full recompute measured 0.9 s instead of 0.25 s).
    # A store that has been ingesting for hours is merged, so wait for that (not counted as load time).
    deadline = time.monotonic() + 120
    while store.main.rows("SELECT count() FROM system.merges") != [(0,)] and time.monotonic() < deadline:
        time.sleep(0.2)
    return elapsed


def write_rows_rate(store: ClickHouseEvents, rows: int = 200_000) -> float:
    """rows/s through `write_rows` (key check + insert), as ingestion or `events copy` writes. Into the
    loaded store (chdb opens one data directory per process), as events of units that do not exist."""
    events = [
        {
            "id_type": "userID",
            "unit_id": f"w{i}",
            "event_name": "purchase",
            "value": "1",
            "metadata": None,
            "time_ms": START + i,
            "received_ms": START + i,
            "dedup_key": f"w{i:09d}",
        }
        for i in range(rows)
    ]
    began = time.perf_counter()
    for start in range(0, rows, 50_000):
        store.write_rows([], events[start : start + 50_000])
    return rows / (time.perf_counter() - began)


def timed(run: Callable[[], object], repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
    return best


def aggregates(store: EventStore, after: int, as_of: int) -> object:
    return store.matured_aggregates(
        autotune_id=AUTOTUNE, run=1, definition=DEFINITION, matured_after_ms=after, as_of_ms=as_of
    )


def measure(name: str, store: EventStore, data: Data, load_seconds: float) -> dict[str, float]:
    rows = data.units + data.events
    end = START + (data.hours + 2) * HOUR
    full = timed(lambda: aggregates(store, BEGINNING_MS, end), repeat=3)
    result = aggregates(store, BEGINNING_MS, end)
    units = sum(item.units for item in result)  # type: ignore[attr-defined]
    assert units == data.units, (name, units)

    def hour(h: int) -> float:
        as_of = START + (h + 1) * HOUR
        return timed(lambda: aggregates(store, as_of - HOUR, as_of), repeat=3)

    first = statistics.median(hour(h) for h in range(2, 7))
    last = statistics.median(hour(h) for h in range(data.hours - 4, data.hours + 1))
    print(
        f"{name:>10}: load {rows / load_seconds:>10,.0f} rows/s | full {full:7.3f} s | "
        f"hourly first {first * 1000:7.1f} ms, last {last * 1000:7.1f} ms (x{last / first:.2f})",
        flush=True,
    )
    return {"full": full, "first": first, "last": last, "load": rows / load_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=2_000_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--hours", type=int, default=200)
    parser.add_argument("--stores", default="sqlite,postgresql,chdb")
    args = parser.parse_args()
    stores = args.stores.split(",")
    data = Data(args.units, args.events, args.hours)
    print(f"{data.units:,} units, {data.events:,} events over {data.hours} h; python {sys.version.split()[0]}")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="oat-bench-ch-") as tmp:
        directory = Path(tmp)
        if "chdb" in stores:
            store = ClickHouseEvents(f"chdb://{directory / 'chdb'}")
            store.migrate(0)
            seconds = load_chdb(store, data)
            results["chdb"] = measure("chdb", store, data, seconds)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rate = write_rows_rate(store)
            print(f"      chdb: peak RSS of the process {peak:,.0f} MiB; write_rows {rate:,.0f} rows/s", flush=True)
            store.close()
        if "postgresql" in stores:
            base = os.environ.get("OPENAUTOTUNE_TEST_POSTGRES_URL")
            if not base:
                print("postgresql: skipped (set OPENAUTOTUNE_TEST_POSTGRES_URL)")
            else:
                schema = f"bench_{uuid.uuid4().hex[:10]}"
                admin = sa.create_engine(normalise_url(base), isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
                try:
                    db = Database.from_url(f"{normalise_url(base)}?options=-csearch_path%3D{schema}")
                    migrate.upgrade(db.engine)
                    results["postgresql"] = measure("postgresql", SqlEvents(db), data, load_sql(db, data))
                    db.dispose()
                finally:
                    with admin.connect() as conn:
                        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
                    admin.dispose()
        if "sqlite" in stores:
            db = Database.from_url(f"sqlite:///{directory / 'bench.db'}")
            migrate.upgrade(db.engine)
            results["sqlite"] = measure("sqlite", SqlEvents(db), data, load_sql(db, data))
            db.dispose()
    if "chdb" in results:
        chdb = results["chdb"]
        for other in ("postgresql", "sqlite"):
            if other in results:
                print(
                    f"chdb vs {other}: full recompute {results[other]['full'] / chdb['full']:.1f}x faster, "
                    f"hourly {results[other]['last'] / chdb['last']:.2f}x"
                )


if __name__ == "__main__":
    main()
