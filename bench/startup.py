"""How soon `openautotune serve` answers its first request, against a bare uvicorn app in the same venv.

Both are started as fresh processes, one after another, several rounds; the time is from spawning the
command to the first HTTP answer (a request sent as soon as the port accepts connections). Cases:
`serve` on an empty database (migrations and the first keys) and on a current one (a restart), and
the floor: uvicorn serving a one-route Starlette app. Prints the medians and their ratios.

    .venv/bin/python bench/startup.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def first_answer_seconds(command: list[str], port: int, cwd: Path) -> float:
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=30)
                return time.monotonic() - started
            except httpx.TransportError:
                if process.poll() is not None:
                    raise RuntimeError(f"{command} exited with {process.returncode}") from None
                time.sleep(0.01)
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    times: dict[str, list[float]] = {"bare uvicorn app": [], "serve, empty database": [], "serve, restart": []}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "bare_app.py").write_text(BARE_APP)
        for _ in range(rounds):
            port = _free_port()
            bare = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--log-level", "warning"]
            times["bare uvicorn app"].append(first_answer_seconds(bare, port, folder))
            (folder / "openautotune.db").unlink(missing_ok=True)
            port = _free_port()
            serve = [sys.executable, "-m", "openautotune", "serve", "--port", str(port)]
            times["serve, empty database"].append(first_answer_seconds(serve, port, folder))
            times["serve, restart"].append(first_answer_seconds(serve, port, folder))
    floor = statistics.median(times["bare uvicorn app"])
    print(f"{'case':<24} {'median s':>9} {'min s':>7} {'ratio to bare':>14}")
    for case, seconds in times.items():
        median = statistics.median(seconds)
        print(f"{case:<24} {median:>9.2f} {min(seconds):>7.2f} {median / floor:>14.2f}")


if __name__ == "__main__":
    main()
