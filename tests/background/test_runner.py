"""The leader runner: only the process holding the lock runs the loops; another takes over when it stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from openautotune.background.runner import LeaderRunner
from openautotune.store.database import Database
from openautotune.store.leader_lock import leader_lock


class Recorder:
    """What every loop of every runner did, in order, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []  # (owner, "start" | "stop")
        self.running: set[str] = set()
        self.overlap = False

    def loop(self, owner: str) -> Callable[[], FakeLoop]:
        return lambda: FakeLoop(self, owner)


class FakeLoop:
    def __init__(self, recorder: Recorder, owner: str) -> None:
        self.recorder, self.owner = recorder, owner

    def start(self) -> None:
        with self.recorder.lock:
            self.recorder.overlap |= bool(self.recorder.running - {self.owner})
            self.recorder.running.add(self.owner)
            self.recorder.events.append((self.owner, "start"))

    def stop(self, timeout: float = 30.0) -> None:
        with self.recorder.lock:
            self.recorder.running.discard(self.owner)
            self.recorder.events.append((self.owner, "stop"))


def _wait(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_one_runner_leads_and_another_takes_over_when_it_stops(database_url: str) -> None:
    recorder = Recorder()
    dbs = [Database.from_url(database_url) for _ in range(3)]
    runners = []
    for index, db in enumerate(dbs):
        runner = LeaderRunner(leader_lock(db.engine, "background"), retry_seconds=0.05, heartbeat_seconds=0.05)
        runner.add("scheduler", recorder.loop(f"r{index}"))
        runners.append(runner)
    try:
        for runner in runners:
            runner.start()
        _wait(lambda: len(recorder.running) == 1)
        time.sleep(0.3)  # the others keep trying meanwhile, and fail
        assert sum(runner.leading for runner in runners) == 1
        first = next(runner for runner in runners if runner.leading)
        first.stop()
        _wait(lambda: sum(runner.leading for runner in runners) == 1 and len(recorder.running) == 1)
        assert not first.leading
    finally:
        for runner in runners:
            runner.stop()
        for db in dbs:
            db.dispose()
    assert not recorder.overlap, recorder.events
    assert recorder.running == set()
    starts = [owner for owner, what in recorder.events if what == "start"]
    assert len(starts) == 2 and starts[0] != starts[1]


class FlakyLock:
    """A lock that says it was lost once, and whose first try fails with an error."""

    name = "flaky"

    def __init__(self) -> None:
        self.tries = 0
        self.held = False
        self.lose_once = True

    def try_acquire(self) -> bool:
        self.tries += 1
        if self.tries == 1:
            raise ConnectionError("database down")
        self.held = True
        return True

    def still_held(self) -> bool:
        if self.lose_once:
            self.lose_once = False
            self.held = False
        return self.held

    def release(self) -> None:
        self.held = False


def test_a_failing_try_is_retried_and_a_lost_lock_stops_the_loops_until_taken_again() -> None:
    recorder = Recorder()
    lock = FlakyLock()
    leading: list[bool] = []
    runner = LeaderRunner(lock, retry_seconds=0.02, heartbeat_seconds=0.02, on_leading=leading.append)

    def broken() -> FakeLoop:
        raise RuntimeError("cannot build")

    runner.add("broken", broken)
    runner.add("scheduler", recorder.loop("me"))
    runner.start()
    try:
        _wait(lambda: leading[:3] == [True, False, True])
    finally:
        runner.stop()
    assert runner.terms >= 2
    assert [what for _, what in recorder.events][:3] == ["start", "stop", "start"]
    assert recorder.events[-1] == ("me", "stop") and not lock.held
