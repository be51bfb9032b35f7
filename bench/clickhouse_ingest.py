"""Ingestion through HTTP with the events in chdb vs in SQLite (the issue's "at least as fast").

    .venv/bin/python bench/clickhouse_ingest.py [--batches 20] [--rounds 5]

Two real servers (`openautotune serve`) run side by side, each on its own SQLite main database; one
has `OPENAUTOTUNE_EVENTS_URL=chdb:///...` so units and events go to ClickHouse in process (exposures
stay in SQLite). Rounds alternate between them (fresh ids each round) with the same gzip batches of
500 SDK events as bench/ingest.py, one batch at a time like an SDK; each answered only after storing.
Printed: events/s of each (median of rounds) and the median of the paired ratios chdb / SQLite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path

from ingest import BATCH, body, make_batch, server, setup, through_http  # bench/ingest.py

from openautotune.clock import SystemClock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"sqlite": [], "chdb": []}
    with tempfile.TemporaryDirectory(prefix="oat-bench-chi-") as tmp, ExitStack() as stack:
        servers = {}
        for name in rates:
            database_url = f"sqlite:///{Path(tmp) / f'{name}.db'}"
            db, key, variants = setup(database_url)
            os.environ["OPENAUTOTUNE_EVENTS_URL"] = f"chdb://{Path(tmp) / 'events'}" if name == "chdb" else ""
            servers[name] = (stack.enter_context(server(database_url)), key, variants)
            db.dispose()
        os.environ.pop("OPENAUTOTUNE_EVENTS_URL", None)
        now_ms = SystemClock().now_ms()
        for r in range(args.rounds):
            for name, (url, key, variants) in servers.items():
                bodies = [body(make_batch(f"{name}{r}", n, variants, now_ms)) for n in range(args.batches)]
                rates[name].append(args.batches * BATCH / through_http(url, key, bodies))
    ratios = [c / s for c, s in zip(rates["chdb"], rates["sqlite"], strict=True)]
    print(
        f"HTTP ingest, {args.rounds} rounds x {args.batches} batches x {BATCH} events | "
        f"SQLite {statistics.median(rates['sqlite']):,.0f} ev/s | "
        f"SQLite + chdb events {statistics.median(rates['chdb']):,.0f} ev/s | "
        f"ratio chdb/SQLite {statistics.median(ratios):.2f} [{', '.join(f'{x:.2f}' for x in ratios)}]"
    )


if __name__ == "__main__":
    main()
