"""Scheduled updates (a real thread) and `openautotune update` (the real CLI)."""

from __future__ import annotations

import threading
import time

from typer.testing import CliRunner

from openautotune.cli import app as cli_app
from openautotune.engine.scheduler import Scheduler
from openautotune.engine.update import UpdateOutcome
from openautotune.store import updates
from openautotune.testing import START_MS

from .conftest import Env

HOUR = 3_600_000


def test_scheduler_updates_running_autotunes_every_interval(sqlite_env: Env) -> None:
    env = sqlite_env
    running = env.create("one")
    env.create("draft", start=False)
    rounds: list[list[UpdateOutcome]] = []
    three = threading.Event()

    def advance(outcomes: list[UpdateOutcome]) -> None:
        rounds.append(outcomes)
        env.clock.advance(HOUR)  # the next round happens "an hour later"
        if len(rounds) >= 3:
            three.set()

    env.clock.set(START_MS + HOUR)
    scheduler = Scheduler(env.db, env.clock, 0.01, on_update=advance)
    scheduler.start()
    try:
        assert three.wait(30), "the scheduler did not run three rounds"
    finally:
        scheduler.stop()
    assert not scheduler.running
    assert all(len(outcomes) == 1 and outcomes[0].updated for outcomes in rounds[:3])
    with env.db.read() as conn:
        as_ofs = [r.as_of_ms for r in updates.records(conn, running.id, running.created_ms)]
    assert as_ofs[:3] == [START_MS + HOUR, START_MS + 2 * HOUR, START_MS + 3 * HOUR]


def test_scheduler_survives_a_failing_round(sqlite_env: Env) -> None:
    env = sqlite_env
    env.create("one")
    calls: list[int] = []
    done = threading.Event()

    def flaky(outcomes: list[UpdateOutcome]) -> None:
        calls.append(len(outcomes))
        env.clock.advance(HOUR)
        if len(calls) == 1:
            raise RuntimeError("boom")
        done.set()

    scheduler = Scheduler(env.db, env.clock, 0.01, on_update=flaky)
    scheduler.start()
    try:
        assert done.wait(30)
    finally:
        scheduler.stop()
    assert len(calls) >= 2


def test_cli_update_at_a_chosen_time(sqlite_env: Env, sqlite_url: str) -> None:
    env = sqlite_env
    autotune = env.create()
    runner = CliRunner()
    result = runner.invoke(cli_app, ["update", "--at", "2026-01-01T02:00:00Z", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "updated" in result.output and autotune.id in result.output
    result = runner.invoke(cli_app, ["update", "--at", str(START_MS + HOUR), "--database-url", sqlite_url])
    assert result.exit_code == 0
    assert "never goes backwards" in result.output
    result = runner.invoke(
        cli_app,
        ["update", "--at", "2026-01-01T03:00:00", "--autotune", autotune.id, "--database-url", sqlite_url],
    )
    assert result.exit_code == 0, result.output
    with env.db.read() as conn:
        as_ofs = [r.as_of_ms for r in updates.records(conn, autotune.id, autotune.created_ms)]
    assert as_ofs == [START_MS + 2 * HOUR, START_MS + 3 * HOUR]


def test_cli_update_rejects_a_bad_time_and_an_unknown_autotune(sqlite_env: Env, sqlite_url: str) -> None:
    runner = CliRunner()
    bad = runner.invoke(cli_app, ["update", "--at", "yesterday", "--database-url", sqlite_url])
    assert bad.exit_code == 2
    missing = runner.invoke(cli_app, ["update", "--autotune", "nope", "--database-url", sqlite_url])
    assert missing.exit_code == 1
    assert "not found" in missing.output


def test_cli_simulate_one_seed_through_the_sdk_path() -> None:
    result = CliRunner().invoke(
        cli_app, ["simulate", "--arms", "0.1,0.3", "--users-per-hour", "200", "--hours", "3", "--seed", "4"]
    )
    assert result.exit_code == 0, result.output
    assert "serving evaluator + SDK ingestion" in result.output
    assert "best arm: arm_1" in result.output
    assert "cumulative regret" in result.output


def test_cli_simulate_several_seeds_and_an_aa_summary() -> None:
    runner = CliRunner()
    study = runner.invoke(
        cli_app,
        ["simulate", "--arms", "0.1,0.3", "--users-per-hour", "100", "--hours", "2", "--seeds", "2", "--direct"],
    )
    assert study.exit_code == 0, study.output
    assert "declared in 0/2 seeds" in study.output  # two hours: still inside the exploration window
    aa = runner.invoke(
        cli_app,
        ["simulate", "--arms", "0.1,0.1", "--users-per-hour", "100", "--hours", "2", "--seeds", "2", "--direct"],
    )
    assert aa.exit_code == 0, aa.output
    assert "A/A [0.1, 0.1]: a (false) winner was declared in 0/2 seeds" in aa.output


def test_cli_simulate_rejects_bad_arms() -> None:
    result = CliRunner().invoke(cli_app, ["simulate", "--arms", "0.1"])
    assert result.exit_code == 2


def test_scheduler_first_round_waits_for_its_delay(sqlite_env: Env) -> None:
    scheduler = Scheduler(sqlite_env.db, sqlite_env.clock, 3600, first_delay_seconds=0.5)
    scheduler.start()
    try:
        assert scheduler.rounds == 0
        deadline = time.monotonic() + 30
        while scheduler.rounds == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert scheduler.rounds == 1
    finally:
        scheduler.stop()
    assert not scheduler.running
