"""`serve --workers 2` vs `serve --workers 1`: `/v1/get_config` and `/v1/log_event` ingest, in one run.

    .venv/bin/python bench/workers.py [--backend sqlite|postgresql] [--seconds 5] [--rounds 3]
                                      [--connections 64] [--threads 1]

Starts two real servers (`python -m openautotune serve --workers 1` and `--workers 2`), each on a fresh
database of the chosen backend (PostgreSQL: a private schema on OPENAUTOTUNE_TEST_POSTGRES_URL), with
specs re-checked every second as in production. On each it creates and starts one autotune through the
Console API. Then, alternating between the two servers round after round (only one is loaded at a
time; the idle one costs nothing), Debian's `wrk` (2 threads) measures:
1. requests/s of `POST /v1/get_config` with a server key, a new user on every request (evaluation
   plus one durable exposure row each);
2. acknowledged events/s of `POST /v1/log_event` (log mode), on two pairs of servers: the default one,
   whose leader runs the log processor as a thread (it processes the batches while they arrive, on the
   same cores), and one started with OPENAUTOTUNE_PROCESSOR_IN_SERVER=0, whose backlog a separate
   `openautotune process --once` drains between rounds (the acknowledging front alone, as
   bench/ingest_log.py measures acks against the floor). Gzip batches of 500 SDK events (an exposure
   of the autotune and a `click` for each of 250 users), 200 distinct bodies built in Python beforehand
   and cycled by bench/ingest_log.lua, so wrk's Lua does no per-request work (bench/soak.lua, which
   builds and checksums every batch in Lua, held the client to ~25 batches/s whatever the server did).
A two-second run of each, not counted, warms every worker up first. Before each measurement every
server's backlog is processed, so no server processes the previous round's batches during another's.
Each figure is the median of its rounds; the script prints the ratios (goal >= 1.6x on 2 cores) and
the load average before and after, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from openautotune.store.database import normalise_url  # noqa: E402
from tests.conftest import _postgres_schema_url  # noqa: E402
from tests.e2e.live import LiveServer  # noqa: E402
from tests.e2e.test_legacy_sdk import create  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from ingest_log import run_wrk, write_bodies  # noqa: E402

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


def wait_processed(server: LiveServer, timeout: float = 600.0) -> None:
    """Until the log processor has caught up (`openautotune_ingest_lag_batches` is 0 in `/metrics`):
    an ingest round leaves a backlog, and measuring get_config while it is processed would measure both."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = httpx.get(server.url + "/metrics", timeout=10.0).text
        match = re.search(r"^openautotune_ingest_lag_batches(?:\{[^}]*\})? ([\d.e+]+)$", text, re.M)
        if match is None or float(match.group(1)) == 0:
            return
        time.sleep(0.5)
    raise RuntimeError("the processor did not catch up")


def get_config_rate(
    server: LiveServer, config: str, seconds: int, connections: int, prefix: str, threads: int
) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(GET_CONFIG_LUA)
        script.flush()
        env = {**os.environ, "BENCH_KEY": server.server_key, "BENCH_CONFIG": config, "BENCH_PREFIX": prefix}
        command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", script.name, server.url]
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match is not None, output
    return float(match.group(1))


def specs_rate(server: LiveServer, seconds: int, connections: int, threads: int) -> float:
    """GET of the v1 specs (cached bytes, no write): the reference for a path that only needs CPU."""
    url = f"{server.url}/v1/download_config_specs/{server.server_key}.json"
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match is not None, output
    return float(match.group(1))


def ingest_rate(server: LiveServer, bodies: Path, seconds: int, connections: int, threads: int) -> float:
    """Acknowledged events/s of `POST /v1/log_event` (log mode: each 200 = the batch is durable)."""
    return float(run_wrk(server.url, server.server_key, bodies, seconds, connections, threads=threads)["rate"])


def prepare(server: LiveServer) -> tuple[str, list[str], int]:
    """A started autotune: its name, rule ids and version as SDKs see them."""
    created = create(server, "workers-bench")
    entry = next(e for e in server.v1_specs()["dynamic_configs"] if e["name"] == created["name"])
    return created["name"], [rule["id"] for rule in entry["rules"]], int(entry["version"])


Served = tuple[LiveServer, tuple[str, list[str], int]]


def drain_by_process(server: LiveServer) -> None:
    """A server started without its processor: `openautotune process --once` turns its backlog into rows,
    as a separate processor process would."""
    command = [sys.executable, "-m", "openautotune", "process", "--once", "--database-url", server.database_url]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)


def settle(servers: dict[tuple[int, bool], Served]) -> None:
    """Every server's backlog processed before a measurement: a backlog left by the previous round would be
    processed during it, on the same two cores, whichever server is measured."""
    for (_, processor_in_server), (server, _) in servers.items():
        if processor_in_server:
            wait_processed(server)
        else:
            drain_by_process(server)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    env = {"OPENAUTOTUNE_SPECS_REFRESH_SECONDS": "1", "OPENAUTOTUNE_LOG_LEVEL": "warning"}
    rates: dict[tuple[int, str], list[float]] = {}
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        # (workers, processor in the server): the default serve runs the log processor as a thread of its
        # leader; the second pair leaves processing to a separate `openautotune process`, run between
        # rounds, so its figure is what the acknowledging front alone takes (bench/ingest_log.py's ack).
        servers: dict[tuple[int, bool], Served] = {}
        for processor_in_server in (True, False):
            for workers in (1, 2):
                name = f"w{workers}{'' if processor_in_server else '-own'}"
                url = stack.enter_context(database(args.backend, directory, name))
                own = {} if processor_in_server else {"OPENAUTOTUNE_PROCESSOR_IN_SERVER": "0"}
                server = LiveServer.start(url, env=env | own, workers=workers, ingest_mode="log")
                stack.callback(server.stop)
                servers[(workers, processor_in_server)] = (server, prepare(server))
        # Pre-built gzip bodies of 500 SDK events (exposures of the autotune, clicks), as bench/ingest_log.py
        # posts them: wrk's Lua only cycles through them, so the client is not what limits the rate.
        bodies: dict[tuple[int, bool], Path] = {}
        for key, (_, (config, rules, _)) in servers.items():
            bodies[key] = directory / f"bodies-{key[0]}-{key[1]}.bin"
            write_bodies(bodies[key], rules, int(time.time() * 1000), config=config, seed=f"w{key}")
        in_server = {workers: servers[(workers, True)] for workers in (1, 2)}
        # Warm-up, not counted: each worker renders its specs and loads its code paths on first use.
        for key, (server, (config, _, _)) in servers.items():
            get_config_rate(server, config, 2, args.connections, "warm-", args.threads)
            specs_rate(server, 2, args.connections, args.threads)
            with contextlib.suppress(RuntimeError):  # on a loaded machine no batch may finish in 2 s
                ingest_rate(server, bodies[key], 2, args.connections, args.threads)
        load_before = os.getloadavg()
        for round_number in range(args.rounds):
            for workers, (server, (config, _, _)) in in_server.items():
                settle(servers)
                rate = get_config_rate(
                    server, config, args.seconds, args.connections, f"u{round_number}-", args.threads
                )
                rates.setdefault((workers, "get_config"), []).append(rate)
                print(f"round {round_number + 1}: --workers {workers} get_config {rate:9,.0f} requests/s", flush=True)
            for workers, (server, _) in in_server.items():
                rate = specs_rate(server, args.seconds, args.connections, args.threads)
                rates.setdefault((workers, "specs"), []).append(rate)
                print(f"round {round_number + 1}: --workers {workers} specs      {rate:9,.0f} requests/s", flush=True)
            for key, (server, _) in servers.items():
                settle(servers)
                workers, what = key[0], "ingest" if key[1] else "ack"
                rate = ingest_rate(server, bodies[key], args.seconds, args.connections, args.threads)
                rates.setdefault((workers, what), []).append(rate)
                print(f"round {round_number + 1}: --workers {workers} log_event  {rate:9,.0f} events/s ({what})")
        load_after = os.getloadavg()
    wrk = f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s"
    print(f"\nbackend {args.backend}, {os.cpu_count()} cores, {wrk}, ", end="")
    print(f"{args.rounds} rounds, batches of 500 events")
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}")
    labels = {
        "get_config": ("get_config", "requests/s"),
        "ack": ("log_event acknowledged, processor in its own process", "events/s"),
        "ingest": ("log_event acknowledged, processor thread in serve", "events/s"),
        "specs": ("specs (CPU-only reference)", "requests/s"),
    }
    for what, (label, unit) in labels.items():
        one = statistics.median(rates[(1, what)])
        two = statistics.median(rates[(2, what)])
        print(f"{label}\n    --workers 1 {one:9,.0f} {unit:10}  --workers 2 {two:9,.0f}  ratio {two / one:4.2f}x")


if __name__ == "__main__":
    main()
