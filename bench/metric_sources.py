"""Updates that read a metric source, against the same data sent as SDK events.

    .venv/bin/python bench/metric_sources.py [--units 100000] [--hours 100] [--sources duckdb,sqlite,postgresql]

Data: `--units` units first exposed evenly over `--hours` hours, 2 variants, 10% ordering once within
the 1-hour window (one `orders` row each, with an amount) plus as many orders again by units of no
autotune. The engine's own database is SQLite. For each source kind (a DuckDB file, a SQLite file, a
PostgreSQL schema; PostgreSQL needs OPENAUTOTUNE_TEST_POSTGRES_URL), measured in one run:

1. full: one update as of the end, every unit newly mature (the time range alone bounds the read);
2. hourly: the median of 5 updates an hour apart after a backlog was read, each over ~units/hours
   units (their ids are bound when at most 1,000);

and the same two for an autotune reading the same outcomes as SDK events. Printed: seconds, and the
ratio source / events.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import sqlalchemy as sa

from openautotune.clock import FixedClock
from openautotune.domain.autotune import Actor
from openautotune.engine.update import update_autotune
from openautotune.service import autotunes as autotune_service
from openautotune.service import metric_sources
from openautotune.service.autotunes import VariantInput
from openautotune.store import attribution, migrate
from openautotune.store.database import Database, normalise_url

HOUR = 3_600_000
START = 1_767_225_600_000
ACTOR = Actor(id="bench", name="bench")


def autotune(db: Database, clock: FixedClock, name: str, **fields: object) -> tuple[str, list[str]]:
    created = autotune_service.create(
        db,
        clock,
        ACTOR,
        {
            "name": name,
            "variants": [VariantInput(n, {}) for n in ("a", "b")],
            "success_event": "purchase",
            "exploration_window": "336hr",
            "attribution_window": "1hr",
            "winner_threshold": "99%",
            "optimization_parameter": "value",
            **fields,
        },
    )
    started = autotune_service.start(db, clock, ACTOR, created.id)
    return started.id, [v.id for v in started.definition.variants]


def world(units: int, hours: int) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, float]]]:
    """(unit id, variant index, first exposure) and (unit id, order time, amount)."""
    rng = np.random.default_rng(7)
    exposure = START + (np.arange(units) * (hours * HOUR) // units)
    variant = rng.integers(0, 2, units)
    exposed = [(f"u{i}", int(variant[i]), int(exposure[i])) for i in range(units)]
    buyers = rng.random(units) < 0.10
    orders = [
        (f"u{i}", int(exposure[i] + rng.integers(0, HOUR)), float(round(rng.gamma(2.0, 20.0 + 5 * variant[i]), 2)))
        for i in np.flatnonzero(buyers)
    ]
    orders += [(f"x{i}", int(START + rng.integers(0, hours * HOUR)), 10.0) for i in range(len(orders))]
    return exposed, orders


def duckdb_source(directory: Path, orders: list[tuple[str, int, float]]) -> dict[str, str | None]:
    path = directory / "warehouse.duckdb"
    csv = directory / "orders.csv"  # DuckDB's executemany is slow per row: load a file instead
    csv.write_text("".join(f"{unit},{at},{amount}\n" for unit, at, amount in orders))
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE orders (user_id VARCHAR, created_at TIMESTAMP, amount DOUBLE)")
        conn.execute(
            "INSERT INTO orders SELECT u, make_timestamp(t * 1000), a FROM read_csv(?, header = false, "
            "columns = {'u': 'VARCHAR', 't': 'BIGINT', 'a': 'DOUBLE'})",
            [str(csv)],
        )
    return {"url": f"duckdb:///{path}", "table": "orders"}


def sqlite_source(directory: Path, orders: list[tuple[str, int, float]]) -> dict[str, str | None]:
    path = directory / "shop.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (user_id TEXT, created_at INTEGER, amount REAL)")
        conn.exec_driver_sql("CREATE INDEX ix_orders_time ON orders (created_at)")
        conn.exec_driver_sql("INSERT INTO orders VALUES (?, ?, ?)", orders)
    engine.dispose()
    return {"url": f"sqlite:///{path}", "table": "orders"}


def postgres_source(orders: list[tuple[str, int, float]]) -> tuple[dict[str, str | None], Callable[[], None]]:
    base = normalise_url(os.environ["OPENAUTOTUNE_TEST_POSTGRES_URL"])
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        conn.exec_driver_sql(f"CREATE TABLE {schema}.orders (user_id text, created_at timestamptz, amount numeric)")
        conn.exec_driver_sql(f"CREATE INDEX ON {schema}.orders (created_at)")
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {schema}.orders FROM STDIN") as copy:
            for unit, at, amount in orders:
                copy.write_row((unit, f"{np.datetime64(at, 'ms')}Z", amount))

    def drop() -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()

    return {"url": base, "table": f"{schema}.orders"}, drop


def timed(db: Database, clock: FixedClock, autotune_id: str, at: int) -> float:
    began = time.perf_counter()
    outcome = update_autotune(db, clock, autotune_id, at)
    took = time.perf_counter() - began
    if not outcome.updated:
        sys.exit(f"update of {autotune_id} did not run: {outcome.reason}")
    return took


def measure(db: Database, clock: FixedClock, autotune_id: str, hours: int) -> tuple[float, float]:
    """(full update over all but the last 6 hours, median of the next 5 hourly updates)."""
    first = START + (hours - 5) * HOUR
    full = timed(db, clock, autotune_id, first)
    hourly = [timed(db, clock, autotune_id, first + k * HOUR) for k in range(1, 6)]
    return full, statistics.median(hourly)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--hours", type=int, default=100)
    parser.add_argument("--sources", default="duckdb,sqlite,postgresql")
    args = parser.parse_args()
    exposed, orders = world(args.units, args.hours)
    kinds = args.sources.split(",")
    if "postgresql" in kinds and not os.environ.get("OPENAUTOTUNE_TEST_POSTGRES_URL"):
        print("postgresql: skipped (set OPENAUTOTUNE_TEST_POSTGRES_URL)")
        kinds.remove("postgresql")
    print(f"{args.units} units over {args.hours} h ({args.units // args.hours} an hour), {len(orders)} orders")
    with tempfile.TemporaryDirectory() as directory:
        db = Database.from_url(f"sqlite:///{directory}/engine.db")
        migrate.upgrade(db.engine)
        clock = FixedClock(START)
        events_id, variants = autotune(db, clock, "by_events", metadata_field="amount")
        rows = [(events_id, 1, u, variants[k], at, 1, False) for u, k, at in exposed]
        events = [
            ("userID", u, "purchase", None, f'{{"amount": {amount}}}', at, at, f"{u}-{at}") for u, at, amount in orders
        ]
        with db.write() as conn:
            attribution.insert_units(conn, rows)
            attribution.insert_events(conn, events)
        base_full, base_hourly = measure(db, clock, events_id, args.hours)
        print(f"{'events (SQL join)':<22} full {base_full:7.2f} s   hourly {base_hourly * 1000:7.1f} ms")
        for kind in kinds:
            drop: Callable[[], None] = lambda: None  # noqa: E731
            if kind == "duckdb":
                fields = duckdb_source(Path(directory), orders)
            elif kind == "sqlite":
                fields = sqlite_source(Path(directory), orders)
            else:
                fields, drop = postgres_source(orders)
            given = metric_sources.SourceInput(
                name=f"orders_{kind}", unit_id_column="user_id", timestamp_column="created_at",
                value_column="amount", url=str(fields["url"]), table=fields["table"],
            )  # fmt: skip
            source, _ = metric_sources.create(db, clock, ACTOR, given)
            source_autotune, _ = autotune(db, clock, f"by_{kind}", metric_source_id=source.id)
            with db.write() as conn:
                attribution.insert_units(conn, [(source_autotune, *row[1:]) for row in rows])
            full, hourly = measure(db, clock, source_autotune, args.hours)
            print(
                f"{'source ' + kind:<22} full {full:7.2f} s   hourly {hourly * 1000:7.1f} ms   "
                f"ratio to events: full {full / base_full:.2f}x, hourly {hourly / base_hourly:.2f}x"
            )
            drop()
        db.dispose()


if __name__ == "__main__":
    main()
