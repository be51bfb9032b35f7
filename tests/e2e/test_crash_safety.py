"""Crash safety of ingestion: SIGKILL a real server while batches stream in, restart it, and check
that every batch answered 2xx is stored whole, every other batch is stored whole or not at all,
and the tables stay consistent (docs/ingestion.md, Durability and atomicity)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from openautotune.clock import SystemClock
from openautotune.domain.autotune import Actor
from openautotune.service import autotunes
from openautotune.service.autotunes import VariantInput
from openautotune.store.database import Database
from openautotune.store.ingest_tables import events_table, exposures_table, units_table
from tests.e2e.live import ROOT, free_port

pytestmark = pytest.mark.e2e

EVENTS_PER_BATCH = 100  # 50 exposures + 50 custom events, each event with two ids
ACKED_BEFORE_KILL = 12
ACTOR = Actor(id="crash-test", name="crash test")
AUTOTUNE = {
    "name": "crash",
    "variants": [VariantInput("a", {}), VariantInput("b", {})],
    "success_event": "click",
    "exploration_window": "24hr",
    "attribution_window": "1hr",
    "winner_threshold": "95%",
}


def _cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "openautotune", *args], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


@contextmanager
def _server(database_url: str, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**os.environ, "OPENAUTOTUNE_LOG_LEVEL": "warning"}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "openautotune",
                "serve",
                "--port",
                str(port),
                "--database-url",
                database_url,
                # Rows are read right after the POST (log mode: tests/e2e/test_ingest_kills.py).
                "--ingest-mode",
                "sync",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                httpx.get(url + "/v1/get_id_lists", timeout=1.0)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def _batch(number: int, autotune_id: str, variant_ids: list[str], now_ms: int) -> dict[str, Any]:
    events: list[dict[str, Any]] = []
    for j in range(EVENTS_PER_BATCH // 2):
        user = {"userID": f"b{number}-u{j}", "customIDs": {"stableID": f"b{number}-s{j}"}, "country": "DE"}
        metadata = {"config": autotune_id, "ruleID": variant_ids[j % 2], "configVersion": "1"}
        events.append({"eventName": "statsig::config_exposure", "user": user, "time": now_ms - j, "metadata": metadata})
        events.append(
            {"eventName": "click", "user": user, "time": now_ms, "value": j, "metadata": {"batch": str(number)}}
        )
    return {"events": events, "statsigMetadata": {"sdkType": "crash-test"}}


class _Poster:
    """Threads posting numbered batches until stopped; records which batches were answered 2xx."""

    def __init__(self, url: str, key: str, make_batch: Callable[[int], bytes], threads: int = 3) -> None:
        self.url, self.key, self.make_batch = url, key, make_batch
        self.acked: set[int] = set()
        self.sent: set[int] = set()
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(timeout=10.0) as client:
            while not self._stop.is_set():
                with self._lock:
                    number = self._next
                    self._next += 1
                    self.sent.add(number)
                body = self.make_batch(number)
                try:
                    response = client.post(
                        self.url + "/v1/log_event", content=body, headers={"STATSIG-API-KEY": self.key}
                    )
                except httpx.TransportError:
                    time.sleep(0.01)
                    continue
                if response.is_success:
                    assert response.json()["accepted"] == EVENTS_PER_BATCH
                    with self._lock:
                        self.acked.add(number)


def _stored_per_batch(db: Database) -> tuple[dict[int, int], dict[int, int]]:
    """Exposure rows and event rows per batch number (read from the ids)."""
    with db.read() as conn:
        exposures = conn.execute(sa.select(exposures_table.c.unit_id)).scalars().all()
        events = conn.execute(sa.select(events_table.c.unit_id)).scalars().all()

    def per_batch(ids: list[str]) -> dict[int, int]:
        counts: dict[int, int] = {}
        for unit in ids:
            number = int(unit[1:].split("-")[0])
            counts[number] = counts.get(number, 0) + 1
        return counts

    return per_batch(list(exposures)), per_batch(list(events))


def _assert_consistent(db: Database) -> None:
    with db.read() as conn:
        for table in (exposures_table, events_table):
            total, distinct = conn.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(table.c.dedup_key)))
            ).one()
            assert total == distinct
        units = conn.execute(sa.select(units_table)).all()
        analysable = conn.execute(
            sa.select(exposures_table.c.unit_id, sa.func.min(exposures_table.c.time_ms))
            .where(exposures_table.c.analysable)
            .group_by(exposures_table.c.unit_id)
        ).all()
    assert {(u.unit_id, u.first_exposure_ms) for u in units} == {(row[0], row[1]) for row in analysable}


def test_every_acknowledged_batch_survives_a_sigkill(database_url: str, tmp_path: Path) -> None:
    server_key = _cli("keys", "create", "--type", "server", "--database-url", database_url)
    db = Database.from_url(database_url)
    made = autotunes.start(db, SystemClock(), ACTOR, autotunes.create(db, SystemClock(), ACTOR, AUTOTUNE).id)
    db.dispose()
    log = tmp_path / "server.log"
    full = EVENTS_PER_BATCH // 2 * 2  # rows per batch in each table: 50 exposures, 50 events x 2 ids
    variant_ids = [variant.id for variant in made.definition.variants]
    base_ms = int(time.time() * 1000)

    def make_batch(number: int) -> bytes:
        return orjson.dumps(_batch(number, made.id, variant_ids, base_ms))

    with _server(database_url, log) as (url, process):
        poster = _Poster(url, server_key, make_batch)
        poster.start()
        deadline = time.monotonic() + 60
        while len(poster.acked) < ACKED_BEFORE_KILL:
            assert time.monotonic() < deadline, "the server acknowledged too few batches"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)  # mid-stream: other batches are in flight
        process.wait()
        poster.stop()

    acked, sent = set(poster.acked), set(poster.sent)
    assert len(acked) >= ACKED_BEFORE_KILL
    with _server(database_url, log) as (url, _process):
        db = Database.from_url(database_url)
        try:
            exposures, events = _stored_per_batch(db)
            for number in acked:
                assert exposures.get(number) == full // 2, number
                assert events.get(number) == full, number
            for number in sent - acked:  # in flight at the kill: all or nothing
                assert exposures.get(number, 0) in (0, full // 2), number
                assert events.get(number, 0) in (0, full), number
            _assert_consistent(db)
            # The SDK re-sends what it never saw acknowledged: the retry completes, duplicates nothing.
            with httpx.Client(timeout=10.0) as client:
                for number in sorted(sent - acked):
                    response = client.post(
                        url + "/v1/log_event", content=make_batch(number), headers={"STATSIG-API-KEY": server_key}
                    )
                    assert response.status_code == 200
            exposures, events = _stored_per_batch(db)
            assert exposures == dict.fromkeys(sent, full // 2)
            assert events == dict.fromkeys(sent, full)
            _assert_consistent(db)
        finally:
            db.dispose()
