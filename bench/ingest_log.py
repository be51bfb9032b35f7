"""Log-first ingestion: acknowledged events/s over HTTP and processing events/s, against the direct floor.

For each database (SQLite always; PostgreSQL with --postgres-url or $OPENAUTOTUNE_TEST_POSTGRES_URL):
- floor: the rows of 500-event batches written straight with the driver's executemany, one
  transaction per batch (synchronous=FULL on SQLite): `bench/ingest.py`'s `direct`;
- ack: Debian's `wrk` (bench/ingest_log.lua) posts real gzip batches of 500 SDK events from C
  threads to `openautotune serve` with its processor off: acknowledged (logged, durable) events/s;
- ack+process: the same with `openautotune process` running alongside; the lag of each batch
  (processed - received) is read from `ingest_batches` once the backlog is drained;
- process: unique batches appended to the log, then drained by the processor in rounds: events/s;
- sustained: wrk paced (Lua `delay()`) at 80% of that processing rate (or `--sustain-floor-share` of the
  floor) for --sustain seconds, with `openautotune process` alongside: the lag must stay bounded (p50,
  p99, max reported).
With --nats (needs Debian's nats-server): `serve --queue` + `openautotune process --queue`, acknowledged
events/s and end-to-end lag side by side.

    .venv/bin/python bench/ingest_log.py [--seconds 10] [--connections 16] [--rounds 5] [--sustain 60] [--nats]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import AUTOTUNE, BATCH, ROOT, _free_port, body, direct, make_batch, postgres_schema, setup

from openautotune.clock import SystemClock
from openautotune.service.ingest.log_processor import LogProcessor, append_batches
from openautotune.service.ingest.logged import GZIP, new_batch
from openautotune.store.batch_log_table import ingest_batches_table
from openautotune.store.database import Database

LUA = Path(__file__).resolve().parent / "ingest_log.lua"
BODIES = 200


def write_bodies(
    path: Path, variant_ids: list[str], now_ms: int, config: str = AUTOTUNE, seed: str = "wrk", count: int = BODIES
) -> None:
    with path.open("wb") as out:
        for number in range(count):
            content = body(make_batch(seed, number, variant_ids, now_ms, config))
            out.write(f"{len(content):08d}".encode() + content)


@contextmanager
def spawn(*args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "openautotune", *args],
        cwd=ROOT,
        # No scheduler round during the bench: an engine update would compete for the CPU measured here,
        # and its query (on tables loaded seconds ago, never analysed) outlived the stopped server and
        # held up the PostgreSQL schema's DROP for more than 10 minutes.
        env={**os.environ, "OPENAUTOTUNE_LOG_LEVEL": "warning", "OPENAUTOTUNE_SCHEDULER_FIRST_DELAY_SECONDS": "86400"}
        | (env or {}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait()


@contextmanager
def server(database_url: str, *extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with spawn("serve", "--port", str(port), "--database-url", database_url, *extra, env=env) as process:
        deadline = time.monotonic() + 120
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


def run_wrk(
    url: str, key: str, bodies: Path, seconds: int, connections: int, delay_ms: int = 0, threads: int = 2
) -> dict[str, Any]:
    env = {**os.environ, "LOG_KEY": key, "LOG_BODIES": str(bodies), "LOG_EVENTS": str(BATCH)}
    env["LOG_DELAY_MS"] = str(delay_ms)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "60s", "-s", str(LUA), url]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("LOG-WRK ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(line.removeprefix("LOG-WRK "))
    bad = {status: n for status, n in result["statuses"].items() if status != "200"}
    if bad:
        raise RuntimeError(f"wrk got non-200 answers: {bad}")
    result["rate"] = result["acknowledged"] / result["duration_s"]
    return result


def floor(db: Database, variant_ids: list[str], now_ms: int, tag: str, batches: int = 20) -> float:
    return batches * BATCH / direct(db, [make_batch(tag, n, variant_ids, now_ms) for n in range(batches)], now_ms)


def wait_drained(db: Database, timeout: float = 600.0) -> None:
    time.sleep(1.0)  # requests wrk left in flight are still being appended
    deadline = time.monotonic() + timeout
    query = sa.select(sa.func.count()).where(ingest_batches_table.c.processed_ms.is_(None))
    while time.monotonic() < deadline:
        with db.read() as conn:
            if conn.execute(query).scalar_one() == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("the processor did not drain the log")


def lags_since(db: Database, since_ms: int) -> tuple[float, float, float, int]:
    """p50, p99 and max of processed - received (ms) of batches received since `since_ms`."""
    t = ingest_batches_table.c
    with db.read() as conn:
        query = sa.select(t.processed_ms - t.received_ms).where(t.received_ms >= since_ms, t.processed_ms.is_not(None))
        rows = conn.execute(query).scalars()
        lags = sorted(int(lag) for lag in rows)
    if not lags:
        return 0.0, 0.0, 0.0, 0
    return lags[len(lags) // 2], lags[min(len(lags) - 1, int(len(lags) * 0.99))], lags[-1], len(lags)


def consumed_rate(db: Database, since_ms: int) -> float:
    """Events/s the processor wrote, over the span from its first to its last commit of batches received
    since `since_ms`: during a burst it is behind, so this is its throughput."""
    t = ingest_batches_table.c
    query = sa.select(sa.func.sum(t.event_count), sa.func.min(t.processed_ms), sa.func.max(t.processed_ms)).where(
        t.received_ms >= since_ms, t.processed_ms.is_not(None)
    )
    with db.read() as conn:
        events, first, last = conn.execute(query).one()
    return 0.0 if not events or last == first else float(events) * 1000.0 / (int(last) - int(first))


def processing(db: Database, variant_ids: list[str], now_ms: int, rounds: int, per_round: int = 60) -> list[float]:
    """Unique batches appended, then drained: events/s of each round (rows built from scratch)."""
    rates = []
    for r in range(rounds):
        batches = [
            new_batch(body(make_batch(f"p{r}", n, variant_ids, now_ms)), GZIP, BATCH, now_ms) for n in range(per_round)
        ]
        append_batches(db, batches)
        processor = LogProcessor(db, SystemClock())
        started = time.perf_counter()
        processor.drain()
        rates.append(per_round * BATCH / (time.perf_counter() - started))
    return rates


def run(name: str, database_url: str, args: argparse.Namespace, tmp: Path) -> float:
    """Prints the figures; returns the offered rate of its sustained run (events/s)."""
    db, key, variant_ids = setup(database_url)
    now_ms = SystemClock().now_ms()
    bodies = tmp / f"bodies-{name}.bin"
    write_bodies(bodies, variant_ids, now_ms)
    floors = [floor(db, variant_ids, now_ms, f"f{r}") for r in range(3)]
    with server(database_url, env={"OPENAUTOTUNE_PROCESSOR_IN_SERVER": "0"}) as url:
        ack = run_wrk(url, key, bodies, args.seconds, args.connections)
    floors.append(floor(db, variant_ids, now_ms, "g"))
    with db.write() as conn:  # the ack-only backlog is not part of the next measurements
        conn.execute(ingest_batches_table.delete())
    since = SystemClock().now_ms()
    off = {"OPENAUTOTUNE_PROCESSOR_IN_SERVER": "0"}
    with server(database_url, env=off) as url, spawn("process", "--database-url", database_url):
        both = run_wrk(url, key, bodies, args.seconds, args.connections)
        wait_drained(db)
    lag = lags_since(db, since)
    rates = processing(db, variant_ids, now_ms, args.rounds)
    base = statistics.median(floors)
    # Sustained: a fixed offered rate, for --sustain seconds: 80% of the measured processing rate, or
    # --sustain-floor-share of the floor (0.5: the "processing >= 0.5x the floor, sustained").
    offered = args.sustain_floor_share * base if args.sustain_floor_share else 0.8 * statistics.median(rates)
    delay_ms = max(1, int(args.connections * 1000 * BATCH / offered))
    since = SystemClock().now_ms()
    with server(database_url, env=off) as url, spawn("process", "--database-url", database_url):
        paced = run_wrk(url, key, bodies, args.sustain, args.connections, delay_ms)
        wait_drained(db)
    sustained = lags_since(db, since)
    print(f"{name}: direct floor (500 events/transaction, executemany) {base:9,.0f} ev/s [{_list(floors)}]")
    print(
        f"{name}: HTTP acknowledged, processor off    {ack['rate']:9,.0f} ev/s = {ack['rate'] / base:.2f}x floor"
        f" (wrk -c{args.connections} {args.seconds}s, p50 {ack['latency_p50_ms']} ms, p99 {ack['latency_p99_ms']} ms)"
    )
    print(
        f"{name}: HTTP ack, `process` alongside     {both['rate']:9,.0f} ev/s = {both['rate'] / base:.2f}x floor;"
        f" lag p50 {lag[0]:.0f} ms, p99 {lag[1]:.0f} ms, max {lag[2]:.0f} ms over {lag[3]} batches"
    )
    print(
        f"{name}: processing unique batches          {statistics.median(rates):9,.0f} ev/s ="
        f" {statistics.median(rates) / base:.2f}x floor (median of {len(rates)} rounds of 60 batches:"
        f" {_list(rates)}; min {min(rates) / base:.2f}x)"
    )
    print(
        f"{name}: sustained {args.sustain}s at a fixed offered rate: {paced['rate']:9,.0f} ev/s acknowledged and"
        f" processed = {paced['rate'] / base:.2f}x floor; lag p50 {sustained[0]:.0f} ms, p99 {sustained[1]:.0f} ms,"
        f" max {sustained[2]:.0f} ms over {sustained[3]} batches"
    )
    db.dispose()
    return float(paced["rate"])


def run_nats(args: argparse.Namespace, tmp: Path, offered: float) -> None:
    program = shutil.which("nats-server")
    if program is None:
        print("nats-server is not installed: apt-get install -y nats-server")
        return
    database_url = f"sqlite:///{tmp / 'nats.db'}"
    db, key, variant_ids = setup(database_url)
    now_ms = SystemClock().now_ms()
    bodies = tmp / "bodies-nats.bin"
    write_bodies(bodies, variant_ids, now_ms)
    port = _free_port()
    queue = f"nats://127.0.0.1:{port}"
    nats = subprocess.Popen(
        [program, "-js", "-sd", str(tmp / "js"), "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)
        since = SystemClock().now_ms()
        with (
            server(database_url, "--queue", queue) as url,
            spawn("process", "--database-url", database_url, "--queue", queue),
        ):
            result = run_wrk(url, key, bodies, args.seconds, args.connections)
            wait_consumed(db, since, result["requests"])
            lag = lags_since(db, since)
            burst_consumed = consumed_rate(db, since)
            # Paced like the database path's sustained run (the same offered rate), for the lag side by side.
            since = SystemClock().now_ms()
            delay_ms = max(1, int(args.connections * 1000 * BATCH / offered))
            paced = run_wrk(url, key, bodies, args.sustain, args.connections, delay_ms)
            wait_consumed(db, since, paced["requests"])
            paced_lag = lags_since(db, since)
            paced_consumed = consumed_rate(db, since)
    finally:
        nats.terminate()
        nats.wait()
    print(
        f"NATS (SQLite processor): HTTP acknowledged {result['rate']:9,.0f} ev/s (wrk -c{args.connections}"
        f" {args.seconds}s, p50 {result['latency_p50_ms']} ms, p99 {result['latency_p99_ms']} ms);"
        f" end-to-end lag p50 {lag[0]:.0f} ms, p99 {lag[1]:.0f} ms, max {lag[2]:.0f} ms over {lag[3]} batches;"
        f" consumed {burst_consumed:,.0f} ev/s (the consumer's throughput while behind)"
    )
    print(
        f"NATS (SQLite processor): sustained {args.sustain}s at a fixed offered rate: {paced['rate']:9,.0f} ev/s;"
        f" end-to-end lag p50 {paced_lag[0]:.0f} ms, p99 {paced_lag[1]:.0f} ms, max {paced_lag[2]:.0f} ms"
        f" over {paced_lag[3]} batches; consumed {paced_consumed:,.0f} ev/s"
    )
    db.dispose()


def wait_consumed(db: Database, since: int, requests: int, timeout: float = 900.0) -> None:
    """Until the consumer recorded every batch wrk sent since `since` (those left in flight included)."""
    deadline = time.monotonic() + timeout
    while lags_since(db, since)[3] < requests and time.monotonic() < deadline:
        time.sleep(0.2)


def _list(values: list[float]) -> str:
    return ", ".join(f"{value:,.0f}" for value in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sustain", type=int, default=60, help="seconds of the paced, sustained run")
    parser.add_argument(
        "--sustain-floor-share", type=float, help="offer this share of the floor in the sustained run (e.g. 0.5)"
    )
    parser.add_argument("--postgres-url", default=os.environ.get("OPENAUTOTUNE_TEST_POSTGRES_URL"))
    parser.add_argument("--nats", action="store_true", help="also the NATS JetStream path")
    parser.add_argument(
        "--nats-rate", type=float, default=2500.0, help="paced NATS rate (events/s) when SQLite does not run first"
    )
    parser.add_argument("--only", choices=["sqlite", "postgresql", "nats"], help="one path only")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        offered = args.nats_rate
        if args.only in (None, "sqlite"):
            offered = run("SQLite", f"sqlite:///{tmp / 'bench.db'}", args, tmp)
        if args.postgres_url and args.only in (None, "postgresql"):
            with postgres_schema(args.postgres_url) as url:
                run("PostgreSQL", url, args, tmp)
        if args.nats or args.only == "nats":
            run_nats(args, tmp, offered)
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
