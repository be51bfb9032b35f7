"""What the rate limiters cost: the same requests against a server with its budgets on and with them off.

    .venv/bin/python bench/rate_limits.py [--seconds 2] [--clients 4] [--rounds 3]

Starts two real servers (`python -m openautotune serve`, one fresh SQLite database each) on loopback:
one with every budget off, one with budgets set too high to refuse anything (so every request pays the
full cost of counting: the mutation budget's sliding log, one shared write per mutation; the SDK budget's
local counts, flushed every 250 ms). Then measures, on each, over keep-alive connections from client
threads in this process:
1. `GET /v1/download_config_specs` (the SDK poll: cached bytes, so the limiter's share is most visible);
2. `PATCH /console/v1/autotunes/{id}` (a mutation: its own write transaction plus the limiter's).
3. in this process, without HTTP: the cost of one limiter check next to one partial update through the
   service (its own transaction and audit row), on SQLite, alternating in rounds.
Prints requests/s and the ratio on/off measured in this one run (noise moves absolute figures, not ratios).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from openautotune.clock import SystemClock  # noqa: E402
from openautotune.service import autotunes as autotune_service  # noqa: E402
from openautotune.service.rate_limits import BatchedLimiter, ExactLimiter, parse_budgets  # noqa: E402
from openautotune.service.rate_limits.counters import DatabaseCounters  # noqa: E402
from openautotune.testing import make_test_app  # noqa: E402
from tests.api.helpers import BUTTON_COLOR_TEST  # noqa: E402
from tests.e2e.live import LiveServer  # noqa: E402
from tests.web.helpers import ADMIN, create  # noqa: E402

OFF = {"OPENAUTOTUNE_RATE_LIMIT_MUTATIONS": "off", "OPENAUTOTUNE_RATE_LIMIT_SDK": "off"}
ON = {"OPENAUTOTUNE_RATE_LIMIT_MUTATIONS": "1000000/10s,9000000/15m", "OPENAUTOTUNE_RATE_LIMIT_SDK": "100000000/10s"}
CONFIGS = (("off", OFF), ("on", ON))


def rate(server: LiveServer, method: str, path: str, seconds: float, clients: int, json: object = None) -> float:
    headers = {"STATSIG-API-KEY": server.console_key}
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as http:
            http.request(method, path, json=json)  # warm-up, untimed
            while time.monotonic() < stop:
                answer = http.request(method, path, json=json)
                assert answer.status_code == 200, answer.text
                counts[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - began)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {"off": {"specs": [], "patch": []}, "on": {"specs": [], "patch": []}}
    with tempfile.TemporaryDirectory() as folder:
        servers = {label: LiveServer.start(f"sqlite:///{folder}/{label}.db", env=env) for label, env in CONFIGS}
        try:
            paths = {}
            for label, server in servers.items():
                with server.console() as console:
                    autotune_id = console.post("/console/v1/autotunes", json=BUTTON_COLOR_TEST).json()["data"]["id"]
                paths[label] = (
                    f"/v1/download_config_specs/{server.server_key}.json",
                    f"/console/v1/autotunes/{autotune_id}",
                )
            # Rounds alternate between the two servers, so a burst of load elsewhere hits both alike.
            # Which server goes first alternates too: measured either way round, the order alone moved
            # the ratio by 2x on a loaded machine.
            order = list(servers.items())
            for round_number in range(args.rounds):
                for label, server in order if round_number % 2 == 0 else order[::-1]:
                    specs, patch = paths[label]
                    results[label]["specs"].append(rate(server, "GET", specs, args.seconds, args.clients))
                    results[label]["patch"].append(
                        rate(server, "PATCH", patch, args.seconds, args.clients, {"description": "x"})
                    )
        finally:
            for server in servers.values():
                server.stop()
    print(f"{args.clients} clients, median of {args.rounds} alternating rounds of {args.seconds:.0f} s, SQLite")
    print(f"{'':38} {'budgets off':>12} {'budgets on':>12} {'on/off':>8}")
    for name, label in (("specs", "GET /v1/download_config_specs"), ("patch", "PATCH /console/v1/autotunes/{id}")):
        off, on = statistics.median(results["off"][name]), statistics.median(results["on"][name])
        print(f"{label:38} {off:10.0f}/s {on:10.0f}/s {on / off:8.2f}")
    in_process(args.rounds)


def per_call_ms(work: object, calls: int) -> float:
    began = time.perf_counter()
    for n in range(calls):
        work(n)  # type: ignore[operator]
    return (time.perf_counter() - began) * 1000 / calls


def in_process(rounds: int, calls: int = 200) -> None:
    with tempfile.TemporaryDirectory() as folder:
        app = make_test_app(f"sqlite:///{folder}/inproc.db")
        clock = SystemClock()
        counters = DatabaseCounters(app.db)
        exact = ExactLimiter(counters, parse_budgets("1000000/10s,9000000/15m", "bench"), clock)
        batched = BatchedLimiter(counters, parse_budgets("100000000/10s", "bench"), clock)
        autotune = create(app.db, app.clock, "bench")
        costs: dict[str, list[float]] = {"update": [], "exact": [], "batched": []}
        for _ in range(rounds):
            costs["update"].append(
                per_call_ms(
                    lambda n: autotune_service.partial_update(
                        app.db, clock, ADMIN, autotune.id, {"description": str(n)}, {}
                    ),
                    calls,
                )
            )
            costs["exact"].append(per_call_ms(lambda n: exact.check("console-write:k"), calls))
            costs["batched"].append(per_call_ms(lambda n: batched.check("sdk:k"), calls * 50))
        app.db.dispose()
    update, exact_ms, batched_ms = (statistics.median(costs[k]) for k in ("update", "exact", "batched"))
    print(f"in process, SQLite, median of {rounds} rounds:")
    print(f"  partial update through the service   {update:8.3f} ms")
    print(f"  mutation limiter check (exact)       {exact_ms:8.3f} ms  ({exact_ms / update:.2f} of an update)")
    print(f"  SDK limiter check (batched)          {batched_ms:8.4f} ms")


if __name__ == "__main__":
    main()
