"""Log-first ingestion survives SIGKILL (docs/ingestion.md, "Crash safety"): while a client streams
batches, the server and the processor are killed at random moments, 20+ times, and restarted; at the
end every batch the server acknowledged is stored exactly once: each of its events has exactly one
row, on SQLite, on PostgreSQL, and through NATS JetStream."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
import sqlalchemy as sa

from openautotune.clock import SystemClock
from openautotune.service import keys as key_service
from openautotune.service.ingest.log_processor import unprocessed_batches
from openautotune.store import migrate
from openautotune.store.batch_log_table import ingest_batches_table
from openautotune.store.database import Database
from openautotune.store.ingest_tables import events_table, exposures_table
from openautotune.store.keys import KeyKind
from tests.e2e.live import ROOT, free_port
from tests.e2e.nats_server import nats_server

pytestmark = pytest.mark.e2e

KILLS = 20
SERVER_EVERY = 4  # every 4th kill is the server's: a restart costs its start-up (1 s quiet, 7 s on a busy box)
PAIRS = 10  # each batch: PAIRS exposures (of an unknown autotune: stored, not analysable) + PAIRS clicks


def _env() -> dict[str, str]:
    return {**os.environ, "OPENAUTOTUNE_LOG_LEVEL": "warning"}


class Processes:
    """The server and a separate processor on one database, restartable after a kill."""

    def __init__(self, database_url: str, queue: str | None, log: Path) -> None:
        self.database_url = database_url
        self.queue = ["--queue", queue] if queue else []
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: subprocess.Popen[bytes] | None = None
        self.processor: subprocess.Popen[bytes] | None = None

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "openautotune", *args, "--database-url", self.database_url, *self.queue],
                cwd=ROOT,
                env=_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def start_server(self) -> None:
        self.server = self._spawn("serve", "--port", str(self.port))

    def start_processor(self) -> None:
        self.processor = self._spawn("process")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            assert self.server is not None and self.server.poll() is None, self.log.read_text()
            try:
                httpx.get(self.url + "/v1/get_id_lists", timeout=1.0)
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, self.log.read_text()
                time.sleep(0.05)

    def kill(self, which: str) -> None:
        process = self.server if which == "server" else self.processor
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait()
        if which == "server":
            self._wait_port_free()

    def _wait_port_free(self) -> None:
        """The killed server's workers die with it (PR_SET_PDEATHSIG) but a moment later: until their
        sockets close, a restart would find the port taken and exit (seen once in CI)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as `serve` binds its first socket
                try:
                    probe.bind(("127.0.0.1", self.port))
                    return
                except OSError:
                    time.sleep(0.05)

    def stop(self) -> None:
        for process in (self.server, self.processor):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


class Client(threading.Thread):
    """Posts batches one after another; remembers what was acknowledged (2xx) and what was not."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.key = key
        self.stop = threading.Event()
        self.acked: dict[str, int] = {}  # batch id -> batch number
        self.sent = 0

    def batch(self, number: int) -> bytes:
        now = SystemClock().now_ms()
        events: list[dict[str, object]] = []
        for i in range(PAIRS):
            user = {"userID": f"{number}-{i}"}
            events.append(
                {
                    "eventName": "statsig::config_exposure",
                    "user": user,
                    "time": now,
                    "metadata": {"config": "not_an_autotune", "ruleID": "r", "configVersion": "1"},
                }
            )
            events.append({"eventName": "click", "user": user, "time": now, "value": i})
        return orjson.dumps({"events": events})

    def run(self) -> None:
        headers = {"STATSIG-API-KEY": self.key, "Content-Type": "application/json"}
        with httpx.Client(timeout=10.0) as client:
            while not self.stop.is_set():
                number = self.sent
                self.sent += 1
                try:
                    response = client.post(self.url + "/v1/log_event", content=self.batch(number), headers=headers)
                except httpx.TransportError:
                    time.sleep(0.02)  # the server is down: this batch was not acknowledged
                    continue
                if response.status_code == 200:
                    self.acked[response.json()["batch_id"]] = number


def _per_unit(db: Database, table: sa.Table) -> dict[str, int]:
    with db.read() as conn:
        query = sa.select(table.c.unit_id, sa.func.count()).group_by(table.c.unit_id)
        return {unit: int(count) for unit, count in conn.execute(query)}


def _wait_processed(db: Database, batch_ids: set[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with db.read() as conn:
            query = sa.select(ingest_batches_table.c.id).where(ingest_batches_table.c.processed_ms.is_not(None))
            done = set(conn.execute(query).scalars())
        missing = batch_ids - done
        if not missing and unprocessed_batches(db.engine) == (0, None):
            return
        assert time.monotonic() < deadline, f"{len(missing)} acknowledged batches never processed"
        time.sleep(0.2)


def _kill_loop(database_url: str, queue: str | None, log: Path) -> None:
    db = Database.from_url(database_url)
    migrate.upgrade(db.engine)
    key = key_service.create_key(db, SystemClock(), KeyKind.SERVER).secret
    procs = Processes(database_url, queue, log)
    seed = random.randrange(1 << 30)
    chance = random.Random(seed)
    procs.start_server()
    procs.start_processor()
    procs.wait_ready()
    client = Client(procs.url, key)
    client.start()
    try:
        for kill in range(KILLS):
            time.sleep(chance.uniform(0.05, 0.6))
            which = "server" if kill % SERVER_EVERY == 0 else "processor"
            procs.kill(which)
            if which == "server":
                procs.start_server()
                procs.wait_ready()
            else:
                procs.start_processor()
        time.sleep(0.5)
        client.stop.set()
        client.join()
        assert len(client.acked) > KILLS, f"too little load to test anything (seed {seed})"
        _wait_processed(db, set(client.acked))
    finally:
        client.stop.set()
        procs.stop()
    exposures = _per_unit(db, exposures_table)
    events = _per_unit(db, events_table)
    acked_units = {f"{number}-{i}" for number in client.acked.values() for i in range(PAIRS)}
    assert not acked_units - set(events), f"acknowledged events lost (seed {seed})"
    assert not acked_units - set(exposures), f"acknowledged exposures lost (seed {seed})"
    assert set(events.values()) == {1}, f"an event stored twice (seed {seed})"
    assert set(exposures.values()) == {1}, f"an exposure stored twice (seed {seed})"
    db.dispose()


def test_sigkill_of_server_and_processor_loses_and_repeats_nothing(database_url: str, tmp_path: Path) -> None:
    _kill_loop(database_url, None, tmp_path / "processes.log")


def test_sigkill_through_the_nats_queue_loses_and_repeats_nothing(tmp_path: Path) -> None:
    with nats_server(tmp_path) as queue:
        _kill_loop(f"sqlite:///{tmp_path / 'queue.db'}", queue, tmp_path / "processes.log")
