"""The two limiters: exact (every request checked against the shared log) and batched (each process
counts locally and adds its counts to the shared total a few times a second).

The batched limiter guards the SDK endpoints, so its flush must not sit on the request path: it runs
on a background thread, and the request that found it due goes on with the counts it has. Done inline,
each flush was a database write on the event loop, which under `serve --workers N` waited for the other
processes' commits (SQLite has one writer): a fifth of the event loop's time at 1,200 requests/s.

A limiter whose counter store fails lets requests through and logs the failure: a rate limiter that
takes the server down with it when Redis or the database blips would do more harm than a burst.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from openautotune.clock import Clock
from openautotune.service.rate_limits.budgets import Budget
from openautotune.service.rate_limits.counters import Counters

log = logging.getLogger("openautotune.rate_limits")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_seconds: int = 0


ALLOWED = Verdict(True)


def _refused(wait_ms: int) -> Verdict:
    return Verdict(False, max(1, -(-wait_ms // 1000)))  # whole seconds, rounded up, at least one


class ExactLimiter:
    """For Console API mutations: a sliding log, exact across processes (one shared write each)."""

    def __init__(self, counters: Counters, budgets: tuple[Budget, ...], clock: Clock) -> None:
        self.counters, self.budgets, self.clock = counters, budgets, clock

    def check(self, scope: str) -> Verdict:
        if not self.budgets:
            return ALLOWED
        try:
            wait = self.counters.admit(scope, self.budgets, self.clock.now_ms())
        except Exception:
            log.exception("rate-limit counters unavailable; letting the request through")
            return ALLOWED
        return ALLOWED if wait is None else _refused(wait)


@dataclass
class _Window:
    start_ms: int
    shared: int = 0  # the total over every process, as last read (includes what this one flushed)
    pending: int = 0  # admitted here, not yet added to the shared total
    flushing: int = 0  # admitted here, being added to the shared total by the flush in flight
    in_flight: bool = False
    synced_ms: int = -1


class BatchedLimiter:
    """For reads and SDK traffic: fixed windows, counted locally and flushed every `sync_ms` (or after
    1/20 of the budget), so a busy key costs one shared write a few times a second, not one per request.
    Across N processes a window can overshoot by at most what they admitted since their last flush.
    With `background` (the servers'), a flush runs on this limiter's own thread; without, inline."""

    def __init__(
        self,
        counters: Counters,
        budgets: tuple[Budget, ...],
        clock: Clock,
        sync_ms: int = 250,
        *,
        background: bool = True,
    ) -> None:
        self.counters, self.budgets, self.clock, self.sync_ms = counters, budgets, clock, sync_ms
        self.background = background
        self._windows: dict[tuple[str, int], _Window] = {}
        self._lock = threading.Lock()
        self._flusher: ThreadPoolExecutor | None = None
        self._flusher_pid = 0

    def check(self, scope: str) -> Verdict:
        if not self.budgets:
            return ALLOWED
        now = self.clock.now_ms()
        due: list[tuple[Budget, _Window, int]] = []
        with self._lock:
            if len(self._windows) > 100_000:  # many keys over time: forget closed windows
                self._windows = {k: w for k, w in self._windows.items() if w.start_ms + k[1] > now}
            wait = max((self._check_one(scope, budget, now, due) for budget in self.budgets), default=0)
            if not wait:
                for budget in self.budgets:
                    self._windows[(scope, budget.window_ms)].pending += 1
        for budget, window, delta in due:
            self._executor().submit(self._flush, scope, budget, window, delta)
        return _refused(wait) if wait else ALLOWED

    def _check_one(self, scope: str, budget: Budget, now: int, due: list[tuple[Budget, _Window, int]]) -> int:
        start = now - now % budget.window_ms
        window = self._windows.get((scope, budget.window_ms))
        if window is None or window.start_ms != start:
            window = self._windows[(scope, budget.window_ms)] = _Window(start)
        stale = now - window.synced_ms >= self.sync_ms or window.pending >= max(1, budget.limit // 20)
        if stale and not window.in_flight:  # over budget, too, re-reads only this often: no write per refusal
            window.flushing, window.pending, window.in_flight, window.synced_ms = window.pending, 0, True, now
            if self.background:
                due.append((budget, window, window.flushing))
            else:
                self._settle(window, window.flushing, self._add(scope, budget, window, window.flushing))
        if window.shared + window.flushing + window.pending >= budget.limit:
            return start + budget.window_ms - now
        return 0

    def _add(self, scope: str, budget: Budget, window: _Window, delta: int) -> int | None:
        try:
            return self.counters.add(scope, budget.window_ms, window.start_ms, delta)
        except Exception:
            log.exception("rate-limit counters unavailable; counting in this process only")
            return None

    @staticmethod
    def _settle(window: _Window, delta: int, total: int | None) -> None:
        window.shared = window.shared + delta if total is None else total
        window.flushing, window.in_flight = 0, False

    def _flush(self, scope: str, budget: Budget, window: _Window, delta: int) -> None:
        total = self._add(scope, budget, window, delta)
        with self._lock:
            self._settle(window, delta, total)

    def _executor(self) -> ThreadPoolExecutor:
        # Made on first use in each process: `serve --workers` forks after building the app, and a
        # thread does not survive a fork.
        if self._flusher is None or self._flusher_pid != os.getpid():
            self._flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rate-limit-flush")
            self._flusher_pid = os.getpid()
        return self._flusher
