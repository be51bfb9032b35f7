"""`POST /v1/initialize` for a user with 20 autotunes vs the trivial endpoint, in one run.

    .venv/bin/python bench/initialize.py [--autotunes 20] [--seconds 5] [--connections 16]

Starts a real server (`python -m openautotune serve`, fresh SQLite, specs re-checked every second as in
production) on a free loopback port, creates and starts the autotunes through the Console API, then
measures requests/s of:
1. `POST /v1/get_id_lists` (server key in a header: authentication only): the trivial endpoint;
2. `POST /v1/initialize?k=<client key>` as the JS client sends it (text/plain body), a different user
   on every request, every autotune evaluated and hashed (djb2);
3. the same with `sinceTime` at the specs' time: the cheap `{"has_updates": false}` answer.
With `wrk` installed (`apt-get install wrk`) it drives the load (2 threads, `--connections`); without
it, 8 keep-alive httpx threads in this process do. The three alternate over `--rounds` rounds and
each figure is the median of its rounds. Prints the ratios; the goal for (2)/(1) is >= 0.5.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402

from tests.e2e.live import LiveServer  # noqa: E402
from tests.e2e.test_legacy_sdk import create  # noqa: E402

# A Lua script per endpoint: wrk sends `body(n)` with request counter n, so every request is a new user.
WRK_SCRIPT = """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "{path}", {{{headers}}}, {body})
end
"""


def wrk_rate(url: str, path: str, headers: dict[str, str], body_lua: str, seconds: int, connections: int) -> float:
    lua_headers = ", ".join(f'["{name}"] = "{value}"' for name, value in headers.items())
    script = WRK_SCRIPT.format(path=path, headers=lua_headers, body=body_lua)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as file:
        file.write(script)
        file.flush()
        command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", file.name, url]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match is not None, output
    return float(match.group(1))


def httpx_rate(url: str, path: str, headers: dict[str, str], body: Callable[[int], bytes], seconds: int) -> float:
    threads, done = 8, [0] * 8
    stop = time.perf_counter() + seconds

    def client_thread(index: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            n = index
            while time.perf_counter() < stop:
                assert client.post(path, content=body(n)).status_code == 200
                n += threads
                done[index] += 1

    workers = [threading.Thread(target=client_thread, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--autotunes", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        server = LiveServer.start(f"sqlite:///{directory}/bench.db", env={"OPENAUTOTUNE_SPECS_REFRESH_SECONDS": "1"})
        try:
            for i in range(args.autotunes):
                create(server, f"bench_initialize_{i}")
            time.sleep(1.5)  # the server's next specs check sees them all
            init_path = f"/v1/initialize?k={server.client_key}&st=javascript-client&sv=3.33.5"
            probe = httpx.post(server.url + init_path, content=b'{"user": {"userID": "probe"}}').json()
            assert len(probe["dynamic_configs"]) == args.autotunes, probe
            since = probe["time"]
            trivial_headers = {"STATSIG-API-KEY": server.server_key, "Content-Type": "application/json"}
            client_headers = {"Content-Type": "text/plain;charset=UTF-8"}
            user_lua = '\'{"user": {"userID": "u\' .. counter .. \'", "custom": {"plan": "pro"}}}\''
            fresh_lua = f'\'{{"user": {{"userID": "u\' .. counter .. \'"}}, "sinceTime": {since}}}\''
            if shutil.which("wrk"):
                tool = f"wrk, 2 threads, {args.connections} connections, {args.seconds} s each"

                def measure(path: str, headers: dict[str, str], body_lua: str, _body: Callable[[int], bytes]) -> float:
                    return wrk_rate(server.url, path, headers, body_lua, args.seconds, args.connections)
            else:
                tool = f"8 httpx keep-alive threads, {args.seconds} s each (install wrk for a stronger client)"

                def measure(path: str, headers: dict[str, str], body_lua: str, body: Callable[[int], bytes]) -> float:
                    return httpx_rate(server.url, path, headers, body, args.seconds)

            print(f"Server: python -m openautotune serve (one process), {args.autotunes} autotunes; load: {tool}")
            print(f"Medians of {args.rounds} alternating rounds:")
            cases: dict[str, tuple[str, dict[str, str], str, Callable[[int], bytes]]] = {
                "trivial": ("/v1/get_id_lists", trivial_headers, "'{}'", lambda n: b"{}"),
                "full": (
                    init_path,
                    client_headers,
                    user_lua,
                    lambda n: orjson.dumps({"user": {"userID": f"u{n}", "custom": {"plan": "pro"}}}),
                ),
                "cheap": (
                    init_path,
                    client_headers,
                    fresh_lua,
                    lambda n: orjson.dumps({"user": {"userID": f"u{n}"}, "sinceTime": since}),
                ),
            }
            # Rounds alternate the three, and each figure is the median of its rounds: on a shared
            # machine the load moves within seconds, and alternating spreads it over all three.
            rates: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(args.rounds):
                for name, case in cases.items():
                    rates[name].append(measure(*case))
            trivial, full, cheap = (statistics.median(rates[name]) for name in ("trivial", "full", "cheap"))
        finally:
            server.stop()
    print(f"  POST /v1/get_id_lists (auth only)                 {trivial:>10,.0f} /s")
    print(f"  POST /v1/initialize ({args.autotunes} autotunes evaluated)        {full:>10,.0f} /s")
    print(f"  POST /v1/initialize (sinceTime current: cheap answer) {cheap:>10,.0f} /s")
    print(f"  initialize / trivial: {full / trivial:.2f} (goal >= 0.5); cheap / trivial: {cheap / trivial:.2f}")


if __name__ == "__main__":
    main()
