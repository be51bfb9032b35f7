"""The background loops `serve` runs in one process per installation, under the leader lock.

A composition root for `background.runner`: it names the loops (the update scheduler, the retention of
processed batches and, in `log` ingest mode, the processor of logged batches) and feeds their figures
to `/metrics`. One process of an installation runs them; with `serve --workers N` the other processes
only append batches, and the leader's processor finds them within its idle pause (0.2 s) or at once
when its own process appended.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from openautotune import metrics
from openautotune.background.runner import LeaderRunner
from openautotune.clock import SystemClock
from openautotune.settings import Settings
from openautotune.store.database import Database
from openautotune.store.leader_lock import leader_lock

if TYPE_CHECKING:
    from fastapi import FastAPI

    from openautotune.engine.update import UpdateOutcome
    from openautotune.service.ingest.log_processor import LogProcessor
    from openautotune.service.ingest.retention import BatchLogPruner

LOCK_NAME = "background"


def _observe(outcomes: list[UpdateOutcome]) -> None:
    for outcome in outcomes:
        if outcome.updated:
            metrics.record_update(outcome.autotune_id, outcome.seconds)


class ProcessorLoop:
    """The log processor as a runner loop: a thread from `start` until `stop`."""

    def __init__(self, processor: LogProcessor) -> None:
        self.processor = processor
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = self.processor.start(self._stop)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self.processor.wake()
        if self._thread is not None:
            self._thread.join(timeout)


def runs_processor(settings: Settings) -> bool:
    """`serve` processes logged batches itself unless they go to a queue, are written in the request
    (`sync`), or separate `openautotune process` workers were asked for."""
    return settings.ingest_mode == "log" and not settings.queue_url and bool(settings.processor_in_server)


def _processor_loop(db: Database, application: FastAPI | None) -> ProcessorLoop:
    from openautotune.service.ingest.log_processor import LogProcessor

    processor = LogProcessor(db, SystemClock(), on_processed=metrics.record_processed)
    if application is not None:  # appends made in this process wake it at once
        application.state.batch_intake.appender.on_appended = processor.wake
    return ProcessorLoop(processor)


def _retention_loop(db: Database, retention_hours: float) -> BatchLogPruner:
    from openautotune.service.ingest.retention import BatchLogPruner

    return BatchLogPruner(db, SystemClock(), retention_hours)


def background_runner(
    db: Database,
    settings: Settings,
    *,
    scheduler_delay: float | None = None,
    application: FastAPI | None = None,
) -> LeaderRunner:
    """A runner (not started) with every loop `serve` runs once per installation."""
    from openautotune.engine.health import HealthOptions
    from openautotune.engine.scheduler import Scheduler

    runner = LeaderRunner(
        leader_lock(db.engine, LOCK_NAME), retry_seconds=settings.leader_retry_seconds, on_leading=metrics.set_leading
    )
    runner.add(
        "scheduler",
        lambda: Scheduler(
            db,
            SystemClock(),
            settings.update_interval_seconds,
            first_delay_seconds=settings.scheduler_first_delay_seconds if scheduler_delay is None else scheduler_delay,
            on_update=_observe,
            health=HealthOptions(srm_threshold=settings.srm_threshold),
        ),
    )
    if runs_processor(settings):
        runner.add("processor", lambda: _processor_loop(db, application))
    if settings.ingest_log_retention_hours > 0:  # whatever the mode: queue and sync mode record batches too
        runner.add("batch_retention", lambda: _retention_loop(db, settings.ingest_log_retention_hours))
    return runner
