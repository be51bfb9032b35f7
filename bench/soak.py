"""Soak: valid SDK traffic mixed with the bad inputs of issue #12, over HTTP, for minutes.

    .venv/bin/python bench/soak.py [--seconds 150] [--connections 8] [--database-url URL | --postgres]

1. Starts a real server (`python -m openautotune serve`, tests/e2e/live.py) on a free loopback port with a
   fresh database (SQLite by default) and seeds 12 autotunes of every kind (tests/api/fuzz_world.py).
2. Valid load: Debian's `wrk` runs bench/soak.lua, posting gzip batches of 100 new events (an exposure
   and a `click` for each of 50 users) to `/v1/log_event`, and counts every event the server acknowledges.
3. Bad mix, at the same time, from a side process: round after round of the inputs the hardening issue
   found (huge values, metadata nested 300-1,000 deep, lone surrogates, 2^70 and 4,000-digit integers,
   bad and truncated gzip, a gzip bomb, oversize and chunked bodies, bad console bodies, `?page=2**62`,
   `get_config` with nested users). Bad events travel in batches with valid ones ("b..." users), whose
   acknowledgements are counted too. Each round also checks that serving still works (both spec
   downloads and a `get_config` of a seeded autotune answer 200).
4. The server's RSS is sampled every second.
Then: every acknowledged valid event must be a row (exposures + events, by user prefix), no answer may
be >= 500, and RSS must stay bounded. One summary table; exit 1 if a check fails.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from openautotune.store.database import normalise_url  # noqa: E402
from tests.api.fuzz_world import World, populate  # noqa: E402
from tests.conftest import _postgres_schema_url  # noqa: E402
from tests.e2e.live import LiveServer  # noqa: E402

LUA = ROOT / "bench" / "soak.lua"
USERS_PER_BATCH = 50
MB = 1024 * 1024


# ---- the bad mix ---------------------------------------------------------------------------------------


@dataclass
class Target:
    url: str
    console_key: str
    server_key: str
    client_key: str
    running: str
    draft: str
    valid_ids: list[str]


@dataclass
class BadTally:
    rounds: int = 0
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    acked_valid: int = 0
    serving_failures: int = 0
    transport_errors: Counter[str] = field(default_factory=Counter)

    def count(self, name: str, status: int) -> None:
        self.statuses.setdefault(name, Counter())[status] += 1


def _deep(depth: int) -> str:
    return '{"d":' * depth + "1" + "}" * depth


def _event(unit: str, now: int, **fields: str) -> str:
    parts = {"eventName": '"click"', "user": f'{{"userID":"{unit}"}}', "time": str(now), "value": "1"}
    parts.update(fields)
    return "{" + ",".join(f'"{name}":{value}' for name, value in parts.items()) + "}"


def _batch_with_one_bad(prefix: str, now: int, bad_event: str) -> tuple[bytes, int]:
    """Four valid events of new users and, at index 4, one bad event: (gzip body, valid count)."""
    valid = [_event(f"{prefix}-{i}", now) for i in range(4)]
    text = '{"events":[' + ",".join([*valid, bad_event]) + "]}"
    return gzip.compress(text.encode("utf-8", "surrogatepass")), len(valid)


def _bad_events(now: int, tag: str) -> dict[str, str]:
    """Event-level bad inputs (issue #12 items 3-4, and what a careless SDK user may log)."""
    user = f'{{"userID":"x-{tag}"}}'
    return {
        "event: 15 MB value (item 3)": _event(f"x-{tag}", now, value='"' + "v" * (15 * MB) + '"'),
        "event: metadata 300 deep (item 4)": _event(f"x-{tag}", now, metadata=_deep(300)),
        "event: metadata 1,000 deep (item 4)": _event(f"x-{tag}", now, metadata=_deep(1000)),
        "event: user.custom 600 deep (item 4)": _event(
            f"x-{tag}", now, user=f'{{"userID":"x-{tag}","custom":{_deep(600)}}}'
        ),
        "event: lone surrogate in metadata": _event(f"x-{tag}", now, metadata='{"k":"\\ud800"}'),
        "event: 2^70 in metadata": _event(f"x-{tag}", now, metadata=f'{{"k":{2**70}}}'),
        "event: 2^70 userID": f'{{"eventName":"click","time":{now},"user":{{"userID":{2**70}}}}}',
        "event: NaN value": _event(f"x-{tag}", now, value="NaN"),
        "event: 300-char event name": _event(f"x-{tag}", now, eventName='"' + "e" * 300 + '"'),
        "event: user is a list": f'{{"eventName":"click","time":{now},"user":[{user}]}}',
    }


def _requests(target: Target, round_number: int) -> list[tuple[str, Callable[[httpx.Client], httpx.Response]]]:
    """(name, call) for every bad request of one round, each with a valid key of the right kind."""
    sdk = {"STATSIG-API-KEY": target.server_key}
    gz = {**sdk, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    console = {"STATSIG-API-KEY": target.console_key, "Content-Type": "application/json"}
    now = int(time.time() * 1000)
    calls: list[tuple[str, Callable[[httpx.Client], httpx.Response]]] = []

    for name, bad in _bad_events(now, str(round_number)).items():
        body, _valid = _batch_with_one_bad(f"b{round_number}-{len(calls)}", now, bad)
        calls.append((name, lambda c, body=body: c.post("/v1/log_event", content=body, headers=gz)))

    def raw(path: str, content: bytes, headers: dict[str, str]) -> Callable[[httpx.Client], httpx.Response]:
        return lambda c: c.post(path, content=content, headers=headers)

    garbage = os.urandom(512)
    calls += [
        ("gzip: truncated", raw("/v1/log_event", gzip.compress(b'{"events":[]}' * 50)[:-9], gz)),
        ("gzip: garbage declared gzip", raw("/v1/log_event", garbage, gz)),
        ("gzip: bomb (64 MB of zeros)", raw("/v1/log_event", _BOMB, gz)),
        ("body: 17 MB log_event", raw("/v1/log_event", b"{" + b" " * (17 * MB) + b"}", sdk)),
        ("body: not JSON", raw("/v1/rgstr", b"{'events': oops", sdk)),
    ]
    for number, (label, value) in enumerate(
        (("2^70", f'{{"n":{2**70}}}'), ("4,000 digits", '{"n":' + "9" * 4000 + "}"), ("lone surrogate", '"\\ud800"'))
    ):
        body = _create_body(f"soak_bad_{round_number}_{number}", value).encode()
        calls.append((f"console: variant json {label} (item 1)", raw("/console/v1/autotunes", body, console)))
    description = b'{"description":"\\ud800"}'
    calls += [
        (
            "console: description lone surrogate (item 2)",
            lambda c: c.patch(f"/console/v1/autotunes/{target.draft}", content=description, headers=console),
        ),
        ("console: not JSON", raw("/console/v1/autotunes", b'{"name": ', console)),
        ("console: wrong types", raw("/console/v1/autotunes", b'{"name": 5, "variants": "x"}', console)),
        ("console: 2 MB body", raw("/console/v1/autotunes", b'{"name":"' + b"n" * (2 * MB) + b'"}', console)),
        (
            "console: 2 MB chunked body (item 9)",
            lambda c: c.post("/console/v1/autotunes", content=_chunks(2 * MB), headers=console),
        ),
        ("console: ?page=2**62 (item 7)", lambda c: c.get(f"/console/v1/autotunes?page={2**62}", headers=console)),
    ]
    for label, user in (
        ("nested 600 deep", '{"userID":"u","custom":' + _deep(600) + "}"),
        ("userID 2^70", f'{{"userID":{2**70}}}'),
        ("lone surrogate", '{"userID":"\\ud800"}'),
        ("custom 2^64", f'{{"userID":"u","custom":{{"n":{2**64}}}}}'),
    ):
        body = f'{{"configName":"{target.running}","user":{user}}}'.encode()
        calls.append((f"get_config: {label} (item 5)", raw("/v1/get_config", body, sdk)))
    return calls


def _create_body(name: str, variant_json: str) -> str:
    variants = f'[{{"name":"a","json":{{"v":{variant_json}}}}},{{"name":"b","json":{{}}}}]'
    rest = '"successEvent":"click","explorationWindow":"24hr","attributionWindow":"1hr","winnerThreshold":"95%"'
    return f'{{"name":"{name}","variants":{variants},{rest}}}'


def _chunks(size: int) -> Any:
    def generate() -> Any:
        yield b'{"name":"'
        for _ in range(size // 65536):
            yield b"n" * 65536
        yield b'"}'

    return generate()


_BOMB = gzip.compress(b"0" * (64 * MB))


def _serving_ok(target: Target) -> bool:
    """What every other client sees: both spec downloads and get_config of every seeded autotune answer 200
    (each on a connection of its own: one failure must not be counted twice)."""
    key = target.server_key
    calls: list[Callable[[httpx.Client], httpx.Response]] = [
        lambda c: c.get(f"/v1/download_config_specs/{key}.json"),
        lambda c: c.get(f"/v2/download_config_specs/{key}.json"),
    ]
    for name in target.valid_ids:
        body = {"configName": name, "user": {"userID": "soak"}}
        calls.append(lambda c, body=body: c.post("/v1/get_config", json=body, headers={"statsig-api-key": key}))
    for call in calls:
        try:
            with httpx.Client(base_url=target.url, timeout=60.0) as client:
                if call(client).status_code != 200:
                    return False
        except httpx.HTTPError:
            return False
    return True


def bad_mix(target: Target, until: float, results: Any) -> None:
    """The side process: rounds of bad requests until `until` (time.time()), tallies sent to `results`."""
    tally = BadTally()
    while time.time() < until:
        tally.rounds += 1
        for name, call in _requests(target, tally.rounds):
            try:
                # A connection of its own: a refused body may end its connection, which must not be
                # blamed on the next request.
                with httpx.Client(base_url=target.url, timeout=60.0) as client:
                    response = call(client)
            except httpx.HTTPError as error:
                tally.transport_errors[f"{name}: {type(error).__name__}"] += 1
                continue
            tally.count(name, response.status_code)
            if name.startswith("event:") and response.status_code == 200:
                rejected = {item["index"] for item in response.json().get("rejected", [])}
                tally.acked_valid += sum(1 for index in range(4) if index not in rejected)
        tally.serving_failures += not _serving_ok(target)
    results.put(tally)


# ---- the valid load and the checks ---------------------------------------------------------------------


def run_wrk(target: Target, seconds: int, connections: int, rules: list[str], version: int) -> dict[str, Any]:
    env = {
        **os.environ,
        "SOAK_KEY": target.server_key,
        "SOAK_CONFIG": target.running,
        "SOAK_RULES": ",".join(rules),
        "SOAK_VERSION": str(version),
        "SOAK_USERS": str(USERS_PER_BATCH),
    }
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "60s", "-s", str(LUA), target.url]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    line = next((line for line in done.stdout.splitlines() if line.startswith("SOAK-WRK ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    answer: dict[str, Any] = json.loads(line.removeprefix("SOAK-WRK "))
    return answer


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sample_rss(pid: int, stop: threading.Event, samples: list[float]) -> None:
    while not stop.wait(1.0):
        try:
            samples.append(rss_mb(pid))
        except OSError:
            return


def slope_mb_per_min(samples: list[float]) -> float:
    """Least-squares slope of RSS over the second half of the run (after warm-up), in MB per minute."""
    tail = samples[len(samples) // 2 :]
    if len(tail) < 2:
        return 0.0
    n = len(tail)
    mean_x, mean_y = (n - 1) / 2, sum(tail) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(tail))
    den = sum((x - mean_x) ** 2 for x in range(n))
    return num / den * 60


def stored_rows(server: LiveServer, prefix: str) -> int:
    with server.db.engine.connect() as conn:
        total = 0
        for table in ("exposures", "events"):
            query = sa.text(f"SELECT count(*) FROM {table} WHERE unit_id LIKE :prefix")
            total += int(conn.execute(query, {"prefix": f"{prefix}%"}).scalar_one())
        return total


def seeded_target(server: LiveServer) -> tuple[Target, World, list[str], int]:
    with server.console() as console:
        world = populate(console, server.db, 12)
    running = world.by_kind["running"][0]
    entry = next(e for e in server.v1_specs()["dynamic_configs"] if e["name"] == running)
    rules = [rule["id"] for rule in entry["rules"]]
    target = Target(
        url=server.url,
        console_key=server.console_key,
        server_key=server.server_key,
        client_key=server.client_key,
        running=running,
        draft=world.by_kind["draft"][0],
        valid_ids=[i for kind in ("running", "finished", "overridden", "trained") for i in world.by_kind[kind]],
    )
    return target, world, rules, int(entry["version"])


def _collect(side: Any, results: Any) -> BadTally:
    """The bad-mix tally (its last round may outlast wrk by a minute); raises if that process died."""
    while True:
        try:
            tally: BadTally = results.get(timeout=1)
        except queue.Empty:
            if not side.is_alive():
                raise RuntimeError(f"the bad-mix process exited with {side.exitcode}") from None
            continue
        side.join()
        return tally


def summary_table(rows: list[tuple[str, str, str]]) -> str:
    width = max(len(what) for what, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    lines = [f"{'check':<{width}}  {'measured':>{value_width}}  verdict", "-" * (width + value_width + 12)]
    lines += [f"{what:<{width}}  {value:>{value_width}}  {verdict}" for what, value, verdict in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=150)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument(
        "--postgres", action="store_true", help="a private schema on $OPENAUTOTUNE_TEST_POSTGRES_URL instead"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk")
        return 2
    with ExitStack() as stack:
        scratch = tempfile.mkdtemp(prefix="soak-")
        stack.callback(shutil.rmtree, scratch, True)
        database_url = args.database_url or f"sqlite:///{scratch}/soak.db"
        if args.postgres:
            base = normalise_url(os.environ["OPENAUTOTUNE_TEST_POSTGRES_URL"])
            database_url = stack.enter_context(contextmanager(_postgres_schema_url)(base))
        server = LiveServer.start(database_url)
        stack.callback(server.stop)
        return soak(server, args.seconds, args.connections, database_url)


def soak(server: LiveServer, seconds: int, connections: int, database_url: str) -> int:
    target, _world, rules, version = seeded_target(server)
    samples: list[float] = [rss_mb(server.process.pid)]
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(server.process.pid, stop, samples), daemon=True)
    results: Any = multiprocessing.get_context("spawn").Queue()
    side = multiprocessing.get_context("spawn").Process(target=bad_mix, args=(target, time.time() + seconds, results))
    began = time.monotonic()
    sampler.start()
    side.start()
    load = run_wrk(target, seconds, connections, rules, version)
    bad = _collect(side, results)
    took = time.monotonic() - began
    time.sleep(1.5)  # one more RSS sample after the load
    stop.set()
    sampler.join()
    errors_logged = server.log().count("unhandled error")
    alive = server.process.poll() is None

    wrk_rows, side_rows, bad_rows = stored_rows(server, "w"), stored_rows(server, "b"), stored_rows(server, "x")
    in_flight_bound = load["acknowledged"] + connections * 2 * USERS_PER_BATCH
    wrk_5xx = sum(count for status, count in load["statuses"].items() if int(status) >= 500)
    bad_5xx = {name: sum(c for s, c in counts.items() if s >= 500) for name, counts in bad.statuses.items()}
    bad_total = sum(sum(counts.values()) for counts in bad.statuses.values())
    third = max(1, len(samples) // 3)
    first_max, last_max = max(samples[:third]), max(samples[-third:])
    slope = slope_mb_per_min(samples)
    bounded = last_max <= first_max * 1.25 + 64 and slope < 30

    ok = lambda condition: "ok" if condition else "FAIL"  # noqa: E731
    rows = [
        ("database", database_url.split(":", 1)[0], ""),
        ("duration (s)", f"{took:.0f}", ok(took >= 120)),
        ("valid batches (wrk, gzip, 100 events)", f"{load['requests']}", ""),
        ("valid events acknowledged (wrk)", f"{load['acknowledged']}", ok(load["rejected"] == 0)),
        # Batches still in flight when wrk stops are stored but never counted: at most one per connection.
        ("  of them stored (rows)", f"{wrk_rows}", ok(0 < load["acknowledged"] <= wrk_rows <= in_flight_bound)),
        ("valid events acknowledged beside bad ones", f"{bad.acked_valid}", ""),
        ("  of them stored (rows)", f"{side_rows}", ok(side_rows >= bad.acked_valid)),
        ("bad requests sent (rounds)", f"{bad_total} ({bad.rounds})", ""),
        ("bad events stored (rows; valid JSON within limits)", f"{bad_rows}", ""),
        ("responses >= 500 (valid load)", f"{wrk_5xx}", ok(wrk_5xx == 0)),
        ("responses >= 500 (bad mix)", f"{sum(bad_5xx.values())}", ok(sum(bad_5xx.values()) == 0)),
        ("connections dropped (wrk / bad mix)", f"{load['socket_errors']} / {sum(bad.transport_errors.values())}", ""),
        ("rounds where serving failed", f"{bad.serving_failures}", ok(bad.serving_failures == 0)),
        ("unhandled errors in the server log", f"{errors_logged}", ok(errors_logged == 0)),
        ("server process still running", "yes" if alive else "no", ok(alive)),
        ("latency p50 / p99 of valid batches (ms)", f"{load['latency_p50_ms']:.0f} / {load['latency_p99_ms']:.0f}", ""),
        ("server RSS start / max / end (MB)", f"{samples[0]:.0f} / {max(samples):.0f} / {samples[-1]:.0f}", ""),
        ("RSS max first third / last third (MB)", f"{first_max:.0f} / {last_max:.0f}", ok(bounded)),
        ("RSS trend, second half (MB/min)", f"{slope:+.1f}", ok(bounded)),
    ]
    print(summary_table(rows))
    windows = [max(samples[i : i + 30]) for i in range(0, len(samples), 30)]
    print("\nServer RSS, max of each 30 s (MB): " + ", ".join(f"{mb:.0f}" for mb in windows))
    print("\nBad mix, answers by input (status: count):")
    for name, counts in bad.statuses.items():
        flag = "   <-- 5xx" if bad_5xx[name] else ""
        print(f"  {name}: " + ", ".join(f"{s}: {c}" for s, c in sorted(counts.items())) + flag)
    for name, count in bad.transport_errors.items():
        print(f"  {name}: {count} (no answer)")
    return 0 if all(verdict != "FAIL" for _, _, verdict in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
