"""The background loops `serve` runs in one process per installation, under the leader lock.

A composition root for `background.runner`: it names the loops (the update scheduler now; the ingest
processor plugs in here with `runner.add("processor", ...)`) and feeds their figures to `/metrics`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openautotune import metrics
from openautotune.background.runner import LeaderRunner
from openautotune.clock import SystemClock
from openautotune.settings import Settings
from openautotune.store.database import Database
from openautotune.store.leader_lock import leader_lock

if TYPE_CHECKING:
    from openautotune.engine.update import UpdateOutcome

LOCK_NAME = "background"
# The first round waits a moment: it imports the engine (numpy, scipy) in its own thread, which would
# otherwise compete with the first requests for the interpreter.
SCHEDULER_DELAY = 5.0


def _observe(outcomes: list[UpdateOutcome]) -> None:
    for outcome in outcomes:
        if outcome.updated:
            metrics.record_update(outcome.autotune_id, outcome.seconds)


def background_runner(db: Database, settings: Settings, *, scheduler_delay: float = SCHEDULER_DELAY) -> LeaderRunner:
    """A runner (not started) with every loop `serve` runs once per installation."""
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
            first_delay_seconds=scheduler_delay,
            on_update=_observe,
        ),
    )
    return runner
