"""`serve --workers 2` vs `serve --workers 1`: `/v1/get_config` and `/v1/log_event` ingest, in one run.

    .venv/bin/python bench/workers.py [--backend sqlite|postgresql] [--seconds 5] [--rounds 3]
                                      [--connections 16] [--users 250]

Starts two real servers (`python -m openautotune serve --workers 1` and `--workers 2`), each on a fresh
database of the chosen backend (PostgreSQL: a private schema on OPENAUTOTUNE_TEST_POSTGRES_URL), with
specs re-checked every second as in production. On each it creates and starts one autotune through the
Console API. Then, alternating between the two servers round after round (only one is loaded at a
time; the idle one costs nothing), Debian's `wrk` (2 threads) measures:
1. requests/s of `POST /v1/get_config` with a server key, a new user on every request (evaluation
   plus one durable exposure row each);
2. acknowledged events/s of `POST /v1/log_event`: gzip batches of `2 x --users` SDK events (an exposure
   and a `click` per user, new users in every batch), built by bench/soak.lua as the legacy SDK posts.
A one-second run of each, not counted, warms every worker up first. Each figure is the median of its
rounds; the script prints the ratios (goal >= 1.6x on 2 cores) and the
load average before and after, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from openautotune.store.database import normalise_url  # noqa: E402
from tests.conftest import _postgres_schema_url  # noqa: E402
from tests.e2e.live import LiveServer  # noqa: E402
from tests.e2e.test_legacy_sdk import create  # noqa: E402

SOAK_LUA = ROOT / "bench" / "soak.lua"
# `POST /v1/get_config` for a new user on every request: "<prefix><thread>-<request>".
GET_CONFIG_LUA = """
local next_id = 1
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end
local n = 0
function request()
  n = n + 1
  local body = string.format('{"configName":"%s","user":{"userID":"%s%d-%d"}}', config, prefix, id, n)
  return wrk.format("POST", "/v1/get_config", {["STATSIG-API-KEY"] = key, ["Content-Type"] = "application/json"}, body)
end
function init(args)
  key = os.getenv("BENCH_KEY")
  config = os.getenv("BENCH_CONFIG")
  prefix = os.getenv("BENCH_PREFIX")
end
"""


@contextmanager
def database(backend: str, directory: Path, name: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{directory / name}.db"
        return
    base = os.environ.get("OPENAUTOTUNE_TEST_POSTGRES_URL")
    if not base:
        raise SystemExit("--backend postgresql needs OPENAUTOTUNE_TEST_POSTGRES_URL")
    yield from _postgres_schema_url(normalise_url(base))


def get_config_rate(server: LiveServer, config: str, seconds: int, connections: int, prefix: str) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(GET_CONFIG_LUA)
        script.flush()
        env = {**os.environ, "BENCH_KEY": server.server_key, "BENCH_CONFIG": config, "BENCH_PREFIX": prefix}
        command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", script.name, server.url]
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match is not None, output
    return float(match.group(1))


def specs_rate(server: LiveServer, seconds: int, connections: int) -> float:
    """GET of the v1 specs (cached bytes, no write): the reference for a path that only needs CPU."""
    url = f"{server.url}/v1/download_config_specs/{server.server_key}.json"
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match is not None, output
    return float(match.group(1))


def ingest_rate(
    server: LiveServer, config: str, rules: list[str], version: int, args: argparse.Namespace, prefix: str
) -> float:
    env = {
        **os.environ,
        "SOAK_KEY": server.server_key,
        "SOAK_CONFIG": config,
        "SOAK_RULES": ",".join(rules),
        "SOAK_VERSION": str(version),
        "SOAK_USERS": str(args.users),
        "SOAK_PREFIX": prefix,  # new users in every round
    }
    command = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--timeout", "60s", "-s", str(SOAK_LUA)]
    done = subprocess.run([*command, server.url], env=env, capture_output=True, text=True, check=False)
    line = next((line for line in done.stdout.splitlines() if line.startswith("SOAK-WRK ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = json.loads(line.removeprefix("SOAK-WRK "))
    if set(result["statuses"]) != {"200"}:
        raise RuntimeError(f"ingest saw errors: {result}")
    return float(result["acknowledged"]) / args.seconds


def prepare(server: LiveServer) -> tuple[str, list[str], int]:
    """A started autotune: its name, rule ids and version as SDKs see them."""
    created = create(server, "workers-bench")
    entry = next(e for e in server.v1_specs()["dynamic_configs"] if e["name"] == created["name"])
    return created["name"], [rule["id"] for rule in entry["rules"]], int(entry["version"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--users", type=int, default=250, help="users per batch (2 events each)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    env = {"OPENAUTOTUNE_SPECS_REFRESH_SECONDS": "1", "OPENAUTOTUNE_LOG_LEVEL": "warning"}
    rates: dict[tuple[int, str], list[float]] = {}
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        servers: dict[int, tuple[LiveServer, tuple[str, list[str], int]]] = {}
        for workers in (1, 2):
            url = stack.enter_context(database(args.backend, directory, f"w{workers}"))
            server = LiveServer.start(url, env=env, workers=workers)
            stack.callback(server.stop)
            servers[workers] = (server, prepare(server))
        # Warm-up, not counted: each worker renders its specs and loads its code paths on first use.
        for server, (config, rules, version) in servers.values():
            get_config_rate(server, config, 2, args.connections, "warm-")
            specs_rate(server, 2, args.connections)
            with contextlib.suppress(RuntimeError):  # on a loaded machine no batch may finish in 2 s
                ingest_rate(server, config, rules, version, argparse.Namespace(**{**vars(args), "seconds": 2}), "warm-")
        load_before = os.getloadavg()
        for round_number in range(args.rounds):
            for workers, (server, (config, _, _)) in servers.items():
                rate = get_config_rate(server, config, args.seconds, args.connections, f"u{round_number}-")
                rates.setdefault((workers, "get_config"), []).append(rate)
                print(f"round {round_number + 1}: --workers {workers} get_config {rate:9,.0f} requests/s", flush=True)
            for workers, (server, _) in servers.items():
                rate = specs_rate(server, args.seconds, args.connections)
                rates.setdefault((workers, "specs"), []).append(rate)
                print(f"round {round_number + 1}: --workers {workers} specs      {rate:9,.0f} requests/s", flush=True)
            for workers, (server, (config, rules, version)) in servers.items():
                rate = ingest_rate(server, config, rules, version, args, f"w{round_number}-")
                rates.setdefault((workers, "ingest"), []).append(rate)
                print(f"round {round_number + 1}: --workers {workers} log_event  {rate:9,.0f} events/s", flush=True)
        load_after = os.getloadavg()
    print(f"\nbackend {args.backend}, {os.cpu_count()} cores, wrk -t2 -c{args.connections} -d{args.seconds}s, ", end="")
    print(f"{args.rounds} rounds, batches of {2 * args.users} events")
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}")
    for what, unit in (("get_config", "requests/s"), ("ingest", "events/s"), ("specs", "requests/s")):
        one = statistics.median(rates[(1, what)])
        two = statistics.median(rates[(2, what)])
        print(f"{what:10}  --workers 1 {one:9,.0f} {unit:10}  --workers 2 {two:9,.0f}  ratio {two / one:4.2f}x")


if __name__ == "__main__":
    main()
