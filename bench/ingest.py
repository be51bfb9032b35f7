"""Ingestion throughput: events/second through `POST /v1/log_event` against raw `executemany` writes.

For each database (SQLite always; PostgreSQL with --postgres-url or $OPENAUTOTUNE_TEST_POSTGRES_URL):
1. a real server (`python -m openautotune serve --ingest-mode sync`, uvicorn) on a loopback port
   receives gzip batches of 500 SDK events (half exposures of a running autotune, half custom events
   with two ids each), one batch at a time like an SDK, each answered only after its transaction committed;
2. the baseline writes the same rows (exposures, units, events: what the server wrote for a batch)
   straight into the same tables with the driver's `executemany`, one transaction per batch.
The ratio HTTP / direct is what the HTTP, gzip, JSON, validation, hashing and dedup layers cost.

    .venv/bin/python bench/ingest.py [--batches 20] [--rounds 5] [--postgres-url URL] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import io
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from openautotune.clock import SystemClock
from openautotune.domain.autotune import Actor
from openautotune.service import autotunes
from openautotune.service import keys as key_service
from openautotune.service.autotunes import VariantInput
from openautotune.service.ingest import Ingestor
from openautotune.service.ingest.batch import _Rows
from openautotune.service.ingest.parse import CheckedEvent, CheckedExposure, check_event
from openautotune.store import migrate
from openautotune.store.database import Database, normalise_url
from openautotune.store.ingest import load_facts
from openautotune.store.ingest_tables import events_table, exposures_table, units_table
from openautotune.store.keys import KeyKind

ROOT = Path(__file__).resolve().parents[1]
BATCH = 500
AUTOTUNE = "bench_color"


def make_batch(
    seed: str, number: int, variant_ids: list[str], now_ms: int, config: str = AUTOTUNE
) -> list[dict[str, Any]]:
    """500 events as the legacy SDK logs them: exposures (of `config`) and custom events of 250 users."""
    events: list[dict[str, Any]] = []
    for j in range(BATCH // 2):
        user = {
            "userID": f"{seed}-{number}-{j}",
            "customIDs": {"stableID": f"s-{seed}-{number}-{j}"},
            "country": "DE",
            "locale": "de_DE",
            "custom": {"plan": "pro", "age": 20 + j % 50},
        }
        events.append(
            {
                "eventName": "statsig::config_exposure",
                "user": user,
                "time": now_ms - j,
                "metadata": {
                    "config": config,
                    "ruleID": variant_ids[j % len(variant_ids)],
                    "rulePassed": "true",
                    "configVersion": "1",
                    "reason": "Network",
                },
                "secondaryExposures": [],
            }
        )
        events.append(
            {"eventName": "click", "user": user, "time": now_ms, "value": j % 7, "metadata": {"page": "home"}}
        )
    return events


def body(events: list[dict[str, Any]]) -> bytes:
    return gzip.compress(orjson.dumps({"events": events, "statsigMetadata": {"sdkType": "bench"}}))


@contextmanager
def server(database_url: str) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "OPENAUTOTUNE_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        # sync mode: each answer after the batch's rows are committed (log mode: bench/ingest_log.py)
        [
            sys.executable,
            "-m",
            "openautotune",
            "serve",
            "--port",
            str(port),
            "--database-url",
            database_url,
            "--ingest-mode",
            "sync",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError("the server exited")
            try:
                httpx.get(url + "/v1/get_id_lists", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def setup(database_url: str) -> tuple[Database, str, list[str]]:
    db = Database.from_url(database_url)
    migrate.upgrade(db.engine)
    clock = SystemClock()
    key = key_service.create_key(db, clock, KeyKind.SERVER).secret
    actor = Actor(id="bench", name="bench")
    fields = {
        "name": AUTOTUNE,
        "variants": [VariantInput("red", {"c": "red"}), VariantInput("blue", {"c": "blue"})],
        "success_event": "click",
        "exploration_window": "24hr",
        "attribution_window": "1hr",
        "winner_threshold": "95%",
    }
    autotunes.create(db, clock, actor, fields)
    made = autotunes.start(db, clock, actor, AUTOTUNE)
    return db, key, [variant.id for variant in made.definition.variants]


def through_http(url: str, key: str, bodies: list[bytes]) -> float:
    headers = {"STATSIG-API-KEY": key, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    with httpx.Client(timeout=60.0) as client:
        client.post(url + "/v1/log_event", content=body([]), headers=headers)  # warm the connection
        started = time.perf_counter()
        for content in bodies:
            response = client.post(url + "/v1/log_event", content=content, headers=headers)
            assert response.status_code == 200 and not response.json()["rejected"], response.text
        return time.perf_counter() - started


def _rows(db: Database, batch: list[dict[str, Any]], now_ms: int) -> _Rows:
    """The rows the server writes for a batch, built with the server's own code (outside the timing)."""
    rows = _Rows()
    with db.read() as conn:
        facts = load_facts(conn, [AUTOTUNE])
    for raw in batch:
        checked = check_event(raw, now_ms)
        if isinstance(checked, CheckedExposure):
            rows.add_exposure(checked, facts[AUTOTUNE], now_ms)
        elif isinstance(checked, CheckedEvent):
            rows.add_event(checked, now_ms)
    return rows


def _driver_rows(table: sa.Table, rows: list[dict[str, Any]]) -> tuple[str, list[tuple[Any, ...]]]:
    columns = [column.name for column in table.columns if column.name != "id"]
    json_columns = {column.name for column in table.columns if isinstance(column.type, sa.JSON)}
    values = [
        tuple(orjson.dumps(row[c]).decode() if c in json_columns and row[c] is not None else row[c] for c in columns)
        for row in rows
    ]
    return ",".join(f'"{c}"' for c in columns), values


def direct(db: Database, batches: list[list[dict[str, Any]]], now_ms: int) -> float:
    """The floor: the same rows through the driver's executemany, one transaction per batch."""
    prepared = []
    for batch in batches:
        rows = _rows(db, batch, now_ms)
        prepared.append(
            [
                _driver_rows(exposures_table, list(rows.exposures.values())),
                _driver_rows(units_table, list(rows.units.values())),
                _driver_rows(events_table, list(rows.events.values())),
            ]
        )
    mark = "?" if db.is_sqlite else "%s"
    names = ["exposures", "units", "events"]
    started = time.perf_counter()
    for tables in prepared:
        with db.write() as conn:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            for name, (columns, values) in zip(names, tables, strict=True):
                marks = ",".join([mark] * len(values[0]))
                cursor.executemany(f"INSERT INTO {name} ({columns}) VALUES ({marks})", values)
    return time.perf_counter() - started


def profile(db: Database, batches: list[list[dict[str, Any]]]) -> None:
    ingestor = Ingestor(db, SystemClock())
    profiler = cProfile.Profile()
    profiler.enable()
    for batch in batches:
        ingestor.ingest(orjson.loads(orjson.dumps(batch)))
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    print(out.getvalue())


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(normalise_url(base_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{normalise_url(base_url)}{separator}options=-csearch_path%3D{schema}"
    finally:
        with engine.connect() as conn:
            # A backend of a server the bench stopped may still be running a query in this schema (the
            # server has no way to cancel it, and PostgreSQL notices a closed client only when it writes):
            # DROP would wait for it. The schema is ours, so end whatever still holds a lock in it.
            holders = (
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema AND l.pid <> pg_backend_pid()"
            )
            conn.execute(sa.text(holders), {"schema": schema})
            conn.execute(sa.text("SET lock_timeout = '60s'"))  # fail loudly rather than hang
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def run(name: str, database_url: str, batches: int, rounds: int, with_profile: bool) -> None:
    """Alternate HTTP and direct rounds (fresh ids each time); the ratio is the median of each
    round's HTTP/direct pair, so background load on a shared machine does not favour one side."""
    db, key, variant_ids = setup(database_url)
    now_ms = SystemClock().now_ms()
    events = batches * BATCH
    http_rates: list[float] = []
    direct_rates: list[float] = []
    with server(database_url) as url:
        for r in range(rounds):
            bodies = [body(make_batch(f"h{r}", n, variant_ids, now_ms)) for n in range(batches)]
            http_rates.append(events / through_http(url, key, bodies))
            direct_batches = [make_batch(f"d{r}", n, variant_ids, now_ms) for n in range(batches)]
            direct_rates.append(events / direct(db, direct_batches, now_ms))
    ratios = [h / d for h, d in zip(http_rates, direct_rates, strict=True)]
    print(
        f"{name:<11} {rounds} rounds x {batches} batches x {BATCH} events | "
        f"HTTP {statistics.median(http_rates):9,.0f} ev/s | "
        f"direct executemany {statistics.median(direct_rates):9,.0f} ev/s | "
        f"ratio (median of paired rounds) {statistics.median(ratios):.2f} "
        f"[{', '.join(f'{ratio:.2f}' for ratio in ratios)}]"
    )
    if with_profile:
        profile(db, [make_batch("p", n, variant_ids, now_ms) for n in range(min(batches, 10))])
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres-url", default=os.environ.get("OPENAUTOTUNE_TEST_POSTGRES_URL"))
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process ingestion of 10 batches")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.batches, args.rounds, args.profile)
    if args.postgres_url:
        with postgres_schema(args.postgres_url) as url:
            run("PostgreSQL", url, args.batches, args.rounds, args.profile)


if __name__ == "__main__":
    main()
