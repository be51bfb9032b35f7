"""A real openautotune server on a free loopback port, and real Statsig SDKs talking to it.

Reusable by every end-to-end test (the fixtures in `tests/e2e/conftest.py` wrap these):

- `LiveServer.start(database_url)`: migrates the database, creates one key of each kind, runs
  `python -m openautotune serve --port P --database-url URL` in a subprocess and waits until it
  answers. `server.url` is `http://127.0.0.1:P`; `server.console()` is an httpx client with the
  console key; `server.db` reaches the same database directly (to act like the engine does).
- `SdkProcess(kind, server)`: one Statsig SDK (`"legacy"` = `statsig`, `"core"` =
  `statsig_python_core`) in its own process (both SDKs are process-global singletons at heart),
  driven through `tests/e2e/sdk_runner.py`, with proxies pointed at a dead port so that it can
  never reach Statsig's hosts.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import httpx

from openautotune.clock import SystemClock
from openautotune.domain.allocation import cumulative_thresholds
from openautotune.domain.autotune import Allocation, Stage
from openautotune.service import keys as key_service
from openautotune.store import autotunes as autotune_store
from openautotune.store import migrate, spec_changes
from openautotune.store.database import Database
from openautotune.store.keys import KeyKind

ROOT = Path(__file__).resolve().parents[2]
DEAD_PROXY = "http://127.0.0.1:9"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sdk_environment() -> dict[str, str]:
    """The environment for processes running an SDK: no way out but loopback."""
    env = dict(os.environ)
    env.update(HTTPS_PROXY=DEAD_PROXY, HTTP_PROXY=DEAD_PROXY, NO_PROXY="127.0.0.1,localhost")
    env.update(https_proxy=DEAD_PROXY, http_proxy=DEAD_PROXY, no_proxy="127.0.0.1,localhost")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@dataclass
class LiveServer:
    url: str
    database_url: str
    db: Database
    console_key: str
    server_key: str
    client_key: str
    process: subprocess.Popen[bytes]
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        database_url: str,
        *,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
        workers: int = 1,
        ingest_mode: str = "sync",
    ) -> LiveServer:
        """Serve `database_url` on a free port. Specs are re-checked on every request (refresh 0 s) so a
        test sees each change at once; `env` overrides settings (e.g. OPENAUTOTUNE_SPECS_REFRESH_SECONDS).
        One server process unless `workers` says more (`serve --workers`). Events are stored before the
        answer (`sync`) so a test reads them right after the POST, unless `ingest_mode` is `log`."""
        db = Database.from_url(database_url)
        migrate.upgrade(db.engine)
        clock = SystemClock()
        keys = {kind: key_service.create_key(db, clock, kind).secret for kind in KeyKind}
        port = free_port()
        log_file = tempfile.NamedTemporaryFile(prefix="openautotune-server-", suffix=".log", delete=False)  # noqa: SIM115
        process_env = dict(os.environ)
        process_env.update({"OPENAUTOTUNE_SPECS_REFRESH_SECONDS": "0", "OPENAUTOTUNE_LOG_LEVEL": "warning"})
        # No scheduled round unless a test asks (`env`): the first one, 5 s after start, would replace an
        # allocation a test published by hand (`publish_allocation`) with the engine's own.
        process_env["OPENAUTOTUNE_SCHEDULER_FIRST_DELAY_SECONDS"] = "3600"
        # Tests create and change autotunes faster than any person: the mutation budget is off unless a
        # test sets it (tests/api/test_rate_limits.py does); read and SDK budgets stay at their defaults.
        process_env["OPENAUTOTUNE_RATE_LIMIT_MUTATIONS"] = "off"
        process_env.update(env or {})
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "openautotune", "serve", "--port", str(port)),
                *("--database-url", database_url, "--workers", str(workers)),
                *("--ingest-mode", ingest_mode),
            ],
            cwd=ROOT,
            env=process_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        log_file.close()  # the child keeps its own descriptor
        server = cls(
            url=f"http://127.0.0.1:{port}",
            database_url=database_url,
            db=db,
            console_key=keys[KeyKind.CONSOLE],
            server_key=keys[KeyKind.SERVER],
            client_key=keys[KeyKind.CLIENT],
            process=process,
            log_path=Path(log_file.name),
            extra_env=env or {},
        )
        server._wait_ready(timeout)
        return server

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                httpx.get(self.url + "/v1/get_id_lists", timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.db.dispose()
        self.log_path.unlink(missing_ok=True)

    def console(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"STATSIG-API-KEY": self.console_key}, timeout=10.0)

    def v1_specs(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/v1/download_config_specs/{self.server_key}.json", timeout=10.0)
        response.raise_for_status()
        specs: dict[str, Any] = response.json()
        return specs

    def publish_allocation(self, autotune_id: str, weights: tuple[float, ...], stage: Stage) -> Allocation:
        """Publish a new allocation as the engine does (allocation row + spec change in one transaction),
        then wait until the server serves it."""
        now = SystemClock().now_ms()
        with self.db.write() as conn:
            autotune = autotune_store.get(conn, autotune_id, for_update=True)
            assert autotune is not None
            autotune = replace(autotune, allocation_version=autotune.allocation_version + 1)
            allocation = Allocation(
                autotune_id=autotune_id,
                run=autotune.run,
                version=autotune.allocation_version,
                as_of_ms=now,
                stage=stage,
                weights=weights,
                thresholds=cumulative_thresholds(weights),
            )
            autotune_store.save(conn, autotune)
            autotune_store.insert_allocation(conn, allocation)
            changed_ms = spec_changes.bump(conn, now)
        self.wait_for_specs(changed_ms)
        return allocation

    def wait_for_specs(self, changed_ms: int, timeout: float = 10.0) -> None:
        """Until the server serves specs of `changed_ms` or later (a change made directly in the database)."""
        deadline = time.monotonic() + timeout
        while self.v1_specs()["time"] < changed_ms:
            if time.monotonic() > deadline:
                raise AssertionError(f"the server still serves specs older than {changed_ms}")
            time.sleep(0.05)


class Served(Protocol):
    """What an SDK needs of a server: a `LiveServer`, or any stand-in serving fixed specs."""

    url: str
    server_key: str


class SdkProcess:
    """One SDK in a subprocess, spoken to in JSON lines (see `sdk_runner.py`)."""

    def __init__(self, kind: str, server: Served, *, key: str | None = None, tier: str | None = None) -> None:
        """`tier` sets the SDK's environment tier (legacy `tier=`, core `environment=`)."""
        self.kind = kind
        arguments = [kind, server.url, key or server.server_key, *([tier] if tier else [])]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.sdk_runner", *arguments],
            cwd=ROOT,
            env=sdk_environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        ready = self._read()
        if not ready.get("ready"):
            raise RuntimeError(f"{kind} SDK did not initialize: {ready}")

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.kind} SDK runner exited with {self.process.wait()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def call(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"{self.kind} SDK runner: {answer['error']}")
        return answer

    def evaluate(self, config: str, users: list[dict[str, Any]], *, log_exposures: bool = False) -> list[list[Any]]:
        """[rule_id, group_name, value] per user."""
        results: list[list[Any]] = self.call(cmd="eval", config=config, users=users, log=log_exposures)["results"]
        return results

    def wait_for_rule(self, config: str, user: dict[str, Any], rule_id: str, timeout: float = 15.0) -> float:
        """Seconds until `user` gets `rule_id` (the SDK polled new specs); raises on timeout."""
        answer = self.call(cmd="wait_rule", config=config, user=user, rule_id=rule_id, timeout=timeout)
        if not answer["ok"]:
            raise AssertionError(f"{self.kind} SDK still answers {answer['last']} after {timeout} s")
        waited: float = answer["waited"]
        return waited

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(RuntimeError, BrokenPipeError, OSError):
                self.call(cmd="shutdown")
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> SdkProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
