"""`openautotune process`: turn logged (or queued) SDK batches into rows, until stopped (docs/ingestion.md).

Without `--queue` it processes the database's batch log, like the processor inside `serve`;
any number may run at once (each transaction claims its own batches). With `--queue nats://...`
it consumes the NATS JetStream stream that `serve --queue` replicas publish to. `--once` processes
what is pending and exits (cron jobs, tests, catching up after an outage).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from openautotune.cli.common import DatabaseUrl, err, load_settings, open_database
from openautotune.clock import SystemClock

QueueUrl = Annotated[
    str | None,
    typer.Option("--queue", help="nats://host:port: consume batches from NATS JetStream (default none)"),
]


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def process(
    database_url: DatabaseUrl = None,
    queue: QueueUrl = None,
    once: Annotated[bool, typer.Option("--once", help="Process what is pending in the log, then exit")] = False,
) -> None:
    """Process logged SDK batches into exposure and event rows (runs until SIGTERM or Ctrl-C)."""
    from openautotune.service.ingest.log_processor import LogProcessor
    from openautotune.service.ingest.nats_queue import NatsConsumer

    settings = load_settings(database_url, queue_url=queue)
    db = open_database(settings)
    clock = SystemClock()
    if once:
        if settings.queue_url:
            err.print("--once processes the database log; it cannot be combined with --queue")
            raise typer.Exit(2)
        done = LogProcessor(db, clock).drain()
        typer.echo(f"processed {done} batches")
        return
    stop = threading.Event()
    _stop_on_signals(stop)
    if settings.queue_url:
        err.print(f"processing batches from {settings.queue_url}", soft_wrap=True)
        NatsConsumer(db, clock, settings.queue_url).run(stop)
    else:
        err.print("processing batches from the database log", soft_wrap=True)
        LogProcessor(db, clock).run(stop)
