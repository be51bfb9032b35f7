"""The two limiters: exact (every request checked against the shared log) and batched (each process
counts locally and adds its counts to the shared total a few times a second).

A limiter whose counter store fails lets requests through and logs the failure: a rate limiter that
takes the server down with it when Redis or the database blips would do more harm than a burst.
"""

from __future__ import annotations

import logging
import threading
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
    synced_ms: int = -1


class BatchedLimiter:
    """For reads and SDK traffic: fixed windows, counted locally and flushed every `sync_ms` (or after
    1/20 of the budget), so a busy key costs one shared write a few times a second, not one per request.
    Across N processes a window can overshoot by at most what they admitted since their last flush."""

    def __init__(self, counters: Counters, budgets: tuple[Budget, ...], clock: Clock, sync_ms: int = 250) -> None:
        self.counters, self.budgets, self.clock, self.sync_ms = counters, budgets, clock, sync_ms
        self._windows: dict[tuple[str, int], _Window] = {}
        self._lock = threading.Lock()

    def check(self, scope: str) -> Verdict:
        if not self.budgets:
            return ALLOWED
        now = self.clock.now_ms()
        with self._lock:
            if len(self._windows) > 100_000:  # many keys over time: forget closed windows
                self._windows = {k: w for k, w in self._windows.items() if w.start_ms + k[1] > now}
            wait = max((self._check_one(scope, budget, now) for budget in self.budgets), default=0)
            if wait:
                return _refused(wait)
            for budget in self.budgets:
                self._windows[(scope, budget.window_ms)].pending += 1
        return ALLOWED

    def _check_one(self, scope: str, budget: Budget, now: int) -> int:
        start = now - now % budget.window_ms
        window = self._windows.get((scope, budget.window_ms))
        if window is None or window.start_ms != start:
            window = self._windows[(scope, budget.window_ms)] = _Window(start)
        due = now - window.synced_ms >= self.sync_ms or window.pending >= max(1, budget.limit // 20)
        if due:  # over budget, too, re-reads only this often: a refused burst costs no writes
            self._sync(scope, budget, window, now)
        if window.shared + window.pending >= budget.limit:
            return start + budget.window_ms - now
        return 0

    def _sync(self, scope: str, budget: Budget, window: _Window, now: int) -> None:
        try:
            window.shared = self.counters.add(scope, budget.window_ms, window.start_ms, window.pending)
        except Exception:
            log.exception("rate-limit counters unavailable; counting in this process only")
            window.shared += window.pending
        window.pending = 0
        window.synced_ms = now
