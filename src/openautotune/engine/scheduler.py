"""Scheduled updates: a background thread that updates every running autotune once per interval.

`openautotune serve` runs one per installation: in the process that holds the leader lock
(`background.runner`). Were two to run anyway, that would be safe: each update takes the autotune's
lock, and an update at or before the last `as_of` does nothing.
The update code (numpy, scipy) is imported by the scheduler's own thread at its first round, and
`first_delay_seconds` lets that round wait, so a starting server answers its first requests at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from openautotune.clock import Clock
from openautotune.store.database import Database

if TYPE_CHECKING:
    from openautotune.engine.health import HealthOptions
    from openautotune.engine.update import UpdateOutcome

MIN_INTERVAL_SECONDS = 60
log = logging.getLogger("openautotune.engine")


class Scheduler:
    """Runs `update_running` now and then every `interval_seconds` until stopped."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        interval_seconds: float,
        *,
        on_update: Callable[[list[UpdateOutcome]], None] | None = None,
        first_delay_seconds: float = 0.0,
        health: HealthOptions | None = None,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self._db = db
        self._clock = clock
        self._interval = interval_seconds
        self._on_update = on_update
        self._first_delay = first_delay_seconds
        self._health = health
        self._owner: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def run_once(self) -> list[UpdateOutcome]:
        """One round: every running autotune at the clock's current time."""
        from openautotune.engine.update import default_owner, update_running

        self._owner = self._owner or default_owner()
        outcomes = update_running(self._db, self._clock, owner=self._owner, health=self._health)
        self.rounds += 1
        for outcome in outcomes:
            if outcome.updated:
                log.info(
                    "updated %s at %d: stage %s, %d new units%s",
                    outcome.autotune_id,
                    outcome.as_of_ms,
                    outcome.stage.value if outcome.stage else "-",
                    outcome.new_units,
                    f", winner {outcome.winner_variant_id}" if outcome.winner_variant_id else "",
                )
            else:
                log.info("skipped %s: %s", outcome.autotune_id, outcome.reason)
        if self._on_update is not None:
            self._on_update(outcomes)
        return outcomes

    def _loop(self) -> None:
        if self._stop.wait(self._first_delay):
            return
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a failed round must not end scheduled updates for good
                log.exception("scheduled engine update failed; retrying at the next interval")
            self._stop.wait(self._interval)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("scheduler already started")
        self._thread = threading.Thread(target=self._loop, name="openautotune-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
