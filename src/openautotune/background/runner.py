"""The singleton runner: named background loops that run in the one process holding a leader lock.

Every `serve` process (each worker, each replica) has a runner; all of them try the same lock
(`store.leader_lock`), and the one that gets it starts its loops: the update scheduler, and whatever
else must run once per installation (the ingest processor plugs in with `add("processor", ...)`).
The others try again every `retry_seconds`, so when the leader dies another process takes over within
about that time. The leader checks every `heartbeat_seconds` that it still holds the lock (a lost
PostgreSQL session loses it) and stops its loops when it does not. A brief overlap (a leader that has
not noticed its loss yet while another has taken over) is harmless: each loop's work is itself locked or
idempotent (an engine update takes its autotune's own lock), so one update never runs twice at once.

Loops are built by a factory each time the process becomes leader, so a loop object never needs to be
restartable.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Protocol

from openautotune.store.leader_lock import LeaderLock

log = logging.getLogger("openautotune.leader")


class Loop(Protocol):
    """A background loop with its own thread (`engine.scheduler.Scheduler` is one)."""

    def start(self) -> None: ...

    def stop(self, timeout: float = ...) -> None: ...


LoopFactory = Callable[[], Loop]


class LeaderRunner:
    """Runs the added loops while this process holds `lock`; tries for it while another does."""

    def __init__(
        self,
        lock: LeaderLock,
        *,
        retry_seconds: float = 2.0,
        heartbeat_seconds: float = 5.0,
        on_leading: Callable[[bool], None] | None = None,
    ) -> None:
        if retry_seconds <= 0 or heartbeat_seconds <= 0:
            raise ValueError("retry_seconds and heartbeat_seconds must be positive")
        self._lock = lock
        self._retry = retry_seconds
        self._heartbeat = heartbeat_seconds
        self._on_leading = on_leading
        self._factories: dict[str, LoopFactory] = {}
        self._running: dict[str, Loop] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._leading = False
        self.terms = 0  # how many times this process became leader (tests, logs)

    def add(self, name: str, factory: LoopFactory) -> None:
        """Register a loop by name; before `start`."""
        if self._thread is not None:
            raise RuntimeError("add loops before starting the runner")
        if name in self._factories:
            raise ValueError(f"a loop named {name!r} is already added")
        self._factories[name] = factory

    @property
    def names(self) -> list[str]:
        return list(self._factories)

    @property
    def leading(self) -> bool:
        return self._leading

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("runner already started")
        self._thread = threading.Thread(target=self._run, name="openautotune-leader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the loops (when leading), give the lock up, end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._leading:
                    self._stop.wait(self._heartbeat)
                    if not self._stop.is_set() and not self._held():
                        log.error("lost the %r lock; stopping %s", self._lock.name, ", ".join(self._running))
                        self._follow()
                elif self._try():
                    self._lead()
                else:
                    self._stop.wait(self._retry)
        finally:
            if self._leading:
                self._follow()
            self._lock.release()

    def _try(self) -> bool:
        try:
            return self._lock.try_acquire()
        except Exception:  # the database may be down for a while: keep trying, never die
            log.warning("could not try the %r lock; trying again in %s s", self._lock.name, self._retry, exc_info=True)
            return False

    def _held(self) -> bool:
        try:
            return self._lock.still_held()
        except Exception:
            log.warning("could not check the %r lock", self._lock.name, exc_info=True)
            return False

    def _lead(self) -> None:
        self._leading = True
        self.terms += 1
        log.info(
            "process %d leads (%r lock): running %s", os.getpid(), self._lock.name, ", ".join(self._factories) or "-"
        )
        for name, factory in self._factories.items():
            try:
                loop = factory()
                loop.start()
            except Exception:  # one loop that cannot start must not keep the others from running
                log.exception("background loop %r did not start", name)
                continue
            self._running[name] = loop
        self._notify(True)

    def _follow(self) -> None:
        for name, loop in list(self._running.items()):
            try:
                loop.stop()
            except Exception:
                log.exception("background loop %r did not stop cleanly", name)
        self._running.clear()
        self._lock.release()
        self._leading = False
        self._notify(False)

    def _notify(self, leading: bool) -> None:
        if self._on_leading is not None:
            try:
                self._on_leading(leading)
            except Exception:
                log.exception("leadership callback failed")
