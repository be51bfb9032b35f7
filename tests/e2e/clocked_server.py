"""A real openautotune HTTP server on a free loopback port whose clock the test holds.

`ClockedServer.start(database_url)` builds the app with `openautotune.testing.make_test_app` (a
`FixedClock`, one key of each kind) and serves it with uvicorn in a background thread of the test
process. Everything goes over real HTTP (SDKs in other processes can reach it, like `LiveServer`), but
`server.clock` moves only when the test moves it, so simulated hours pass instantly and every exposure the
server stamps follows the simulated time. `server.db` and `server.clock` are what the engine's update is
given, as the scheduler or `openautotune update --at` would.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx
import uvicorn

from openautotune.clock import FixedClock
from openautotune.store.database import Database
from openautotune.testing import TestApp, make_test_app
from tests.e2e.live import free_port


@dataclass
class ClockedServer:
    url: str
    server_key: str
    console_key: str
    test_app: TestApp
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def db(self) -> Database:
        return self.test_app.db

    @property
    def clock(self) -> FixedClock:
        return self.test_app.clock

    @classmethod
    def start(cls, database_url: str, *, timeout: float = 20.0) -> ClockedServer:
        test_app = make_test_app(database_url)
        port = free_port()
        config = uvicorn.Config(test_app.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"clocked-server-{port}", daemon=True)
        thread.start()
        clocked = cls(
            url=f"http://127.0.0.1:{port}",
            server_key=test_app.server_key,
            console_key=test_app.console_key,
            test_app=test_app,
            server=server,
            thread=thread,
        )
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                clocked.stop()
                raise RuntimeError(f"the clocked server did not start on port {port}")
            time.sleep(0.02)
        httpx.get(clocked.url + "/v1/get_id_lists", timeout=5.0)
        return clocked

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.test_app.db.dispose()

    def console(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"STATSIG-API-KEY": self.console_key}, timeout=30.0)

    def sdk_client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"STATSIG-API-KEY": self.server_key}, timeout=30.0)
