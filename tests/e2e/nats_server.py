"""A throwaway `nats-server -js` (Debian's package) in a temporary directory on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.live import free_port


@contextmanager
def nats_server(directory: Path) -> Iterator[str]:
    """Yields `nats://127.0.0.1:PORT`; JetStream stores its files under `directory`."""
    program = shutil.which("nats-server")
    if program is None:
        pytest.skip("needs nats-server (Debian package nats-server; `make test-packages` installs it)")
    port = free_port()
    log = directory / "nats.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [program, "-js", "-sd", str(directory / "jetstream"), "-a", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
