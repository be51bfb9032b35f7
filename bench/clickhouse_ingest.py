"""Ingestion through HTTP with the events in chdb vs in SQLite (the issue's "at least as fast").

    .venv/bin/python bench/clickhouse_ingest.py [--seconds 3] [--connections 64] [--bodies 600] [--rounds 3]
        [--sync-batches 20] [--max-batches 20,50,100]

Real servers (`openautotune serve`), each on its own SQLite main database; the "chdb" one has
`OPENAUTOTUNE_EVENTS_URL=chdb:///...`, so units and events go to ClickHouse in process (exposures and
the batch log stay in SQLite). The same gzip batches of 500 SDK events as bench/ingest.py (fresh ids
each round); rounds alternate between the two servers of a mode. Measured:

1. log mode (the default, docs/ingestion.md), the server's own processor running: Debian's `wrk`
   (one thread, `--connections`) posts `--bodies` pre-built gzip batches of fresh ids for
   `--seconds` (bench/ingest_log.lua cycles them; a round posts fewer than it has, so none is
   re-delivered); (a) acknowledged events/s (the raw batch appended to the log); (b) end-to-end
   events/s: the acknowledged events over the time until every batch is processed (no
   `ingest_batches` row left with `processed_ms` NULL, polled every 20 ms). Python clients (this
   bench's first form) held the rate near 14k-21k events/s whatever the server did;
2. sync mode (`--ingest-mode sync`): one batch at a time like an SDK, each answered after its rows
   are stored: events/s (the previous figure of this bench);
3. the log processor alone, in this process: `--processor-batches` batches appended, then drained by a `LogProcessor`
   with each `--max-batches` (batches per transaction), SQLite-only vs SQLite + chdb: events/s. Each
   ClickHouse write has a fixed cost (two key checks, two INSERTs), so bigger transactions may pay.
   Rounds interleave every size and store.

Printed: the median of rounds of each and the median of the paired ratios chdb / SQLite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import BATCH, body, make_batch, setup, through_http  # bench/ingest.py
from ingest_log import run_wrk, server, write_bodies  # bench/ingest_log.py: `serve`, wrk and its bodies

from openautotune.clock import SystemClock
from openautotune.service.ingest.log_processor import LogProcessor, append_batches
from openautotune.service.ingest.logged import GZIP, new_batch
from openautotune.store.batch_log_table import ingest_batches_table
from openautotune.store.clickhouse.store import ClickHouseEvents
from openautotune.store.database import Database

NAMES = ("sqlite", "chdb")


@contextmanager
def servers(tmp: Path, mode: str) -> Iterator[dict[str, tuple[str, str, list[str], Database]]]:
    """The two servers of a mode: name -> (url, server key, variant ids, its main database)."""
    with ExitStack() as stack:
        made = {}
        for name in NAMES:
            database_url = f"sqlite:///{tmp / f'{mode}-{name}.db'}"
            db, key, variants = setup(database_url)
            events = f"chdb://{tmp / f'{mode}-events'}" if name == "chdb" else ""
            url = stack.enter_context(
                server(database_url, "--ingest-mode", mode, env={"OPENAUTOTUNE_EVENTS_URL": events})
            )
            made[name] = (url, key, variants, db)
            stack.callback(db.dispose)
        yield made


def pending(db: Database) -> int:
    query = sa.select(sa.func.count()).where(ingest_batches_table.c.processed_ms.is_(None))
    with db.read() as conn:
        return int(conn.execute(query).scalar_one())


def log_round(url: str, key: str, db: Database, bodies: Path, seconds: int, connections: int) -> tuple[float, float]:
    """(acknowledged events/s, end-to-end events/s): wrk posts the pre-built batches for `seconds`, then
    the clock runs until the server's processor has turned every acknowledged batch into rows."""
    started = time.perf_counter()
    result = run_wrk(url, key, bodies, seconds, connections, threads=1)
    while pending(db):
        time.sleep(0.02)
    processed = time.perf_counter() - started
    return float(result["rate"]), float(result["acknowledged"]) / processed


def processing(db: Database, variants: list[str], now_ms: int, tag: str, max_batches: int, batches: int = 60) -> float:
    """events/s of a LogProcessor draining `batches` freshly appended batches, `max_batches` at a time."""
    logged = [new_batch(body(make_batch(tag, n, variants, now_ms)), GZIP, BATCH, now_ms) for n in range(batches)]
    append_batches(db, logged)
    processor = LogProcessor(db, SystemClock(), max_batches=max_batches)
    started = time.perf_counter()
    processor.drain()
    return batches * BATCH / (time.perf_counter() - started)


def ratio_line(label: str, rates: dict[str, list[float]]) -> str:
    ratios = [c / s for c, s in zip(rates["chdb"], rates["sqlite"], strict=True)]
    return (
        f"{label:<38} | SQLite {statistics.median(rates['sqlite']):>8,.0f} ev/s | "
        f"SQLite + chdb {statistics.median(rates['chdb']):>8,.0f} ev/s | "
        f"chdb/SQLite {statistics.median(ratios):.2f} [{', '.join(f'{x:.2f}' for x in ratios)}]"
    )


def log_mode(directory: Path, now_ms: int, args: argparse.Namespace) -> list[str]:
    acked: dict[str, list[float]] = {name: [] for name in NAMES}
    end_to_end: dict[str, list[float]] = {name: [] for name in NAMES}
    with servers(directory, "log") as made:
        for r in range(args.rounds):
            for name, (url, key, variants, db) in made.items():
                # Fresh units and events every round, more than a round posts: no batch is re-delivered.
                bodies = directory / f"bodies-{name}-{r}.bin"
                write_bodies(bodies, variants, now_ms, seed=f"log{name}{r}", count=args.bodies)
                while pending(db):  # the previous round's backlog, if any
                    time.sleep(0.02)
                ack, done = log_round(url, key, db, bodies, args.seconds, args.connections)
                acked[name].append(ack)
                end_to_end[name].append(done)
    lines = [
        ratio_line(f"log mode, acknowledged (wrk -t1 -c{args.connections} {args.seconds}s)", acked),
        ratio_line("log mode, end to end (all processed)", end_to_end),
    ]
    print(*lines, sep="\n", flush=True)
    return lines


def sync_mode(directory: Path, now_ms: int, args: argparse.Namespace) -> str:
    sync: dict[str, list[float]] = {name: [] for name in NAMES}
    with servers(directory, "sync") as made:
        for r in range(args.rounds):
            for name, (url, key, variants, _db) in made.items():
                bodies = [body(make_batch(f"sync{name}{r}", n, variants, now_ms)) for n in range(args.sync_batches)]
                sync[name].append(args.sync_batches * BATCH / through_http(url, key, bodies))
    line = ratio_line("sync mode (1 client)", sync)
    print(line, flush=True)
    return line


def processor_alone(directory: Path, now_ms: int, args: argparse.Namespace) -> list[str]:
    """One main database per store, one chdb directory for this process; rounds interleave every size
    and store, so load that changes during the run hits all alike."""
    stores: dict[str, tuple[Database, list[str]]] = {}
    for name in NAMES:
        db, _key, variants = setup(f"sqlite:///{directory / f'processor-{name}.db'}")
        if name == "chdb":
            db.events = ClickHouseEvents(f"chdb://{directory / 'processor-events'}")
            db.events.migrate(now_ms)
        stores[name] = (db, variants)
    sizes = [int(value) for value in args.max_batches.split(",")]
    rates: dict[int, dict[str, list[float]]] = {size: {name: [] for name in NAMES} for size in sizes}
    for r in range(args.rounds):
        for size in sizes:
            for name, (db, variants) in stores.items():
                tag = f"p{size}{name}{r}"
                rates[size][name].append(processing(db, variants, now_ms, tag, size, args.processor_batches))
    for db, _variants in stores.values():
        db.dispose()
    lines = []
    for size in sizes:
        gain = [x / y for x, y in zip(rates[size]["chdb"], rates[sizes[0]]["chdb"], strict=True)]
        lines.append(
            ratio_line(f"processor alone, {size} batches/commit", rates[size])
            + f" | chdb vs {sizes[0]}/commit x{statistics.median(gain):.2f}"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=3, help="wrk seconds per log-mode round")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections in log mode")
    parser.add_argument("--bodies", type=int, default=600, help="distinct batches per log-mode round (fresh ids)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sync-batches", type=int, default=20, help="batches per sync-mode round")
    parser.add_argument("--max-batches", default="20,50,100", help="processor batches per transaction to try")
    parser.add_argument("--processor-batches", type=int, default=100, help="batches drained per processor round")
    parser.add_argument("--parts", default="log,sync,processor", help="which measurements to run")
    args = parser.parse_args()
    parts = args.parts.split(",")
    now_ms = SystemClock().now_ms()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="oat-bench-chi-") as tmp:
        directory = Path(tmp)
        if "log" in parts:
            lines += log_mode(directory, now_ms, args)
        if "sync" in parts:
            lines.append(sync_mode(directory, now_ms, args))
        if "processor" in parts:
            lines += processor_alone(directory, now_ms, args)
    print(f"\nHTTP ingest, {BATCH} events per batch, {args.rounds} rounds; load average {os.getloadavg()}")
    print(*lines, sep="\n")


if __name__ == "__main__":
    main()
