"""Evaluation speed: our evaluator vs the real SDKs on the same specs, and `/v1/get_config` vs a trivial endpoint.

    .venv/bin/python bench/evaluate.py [--users 20000] [--requests 2000]

Starts a real server (`python -m openautotune serve`) on a free loopback port with a fresh SQLite
database, creates and starts two autotunes through the Console API, then measures in this process:
1. evaluations/s of `serving.evaluate.Evaluator` vs `statsig.get_experiment` (legacy SDK 0.72.1) and
   `Statsig.get_experiment` (statsig-python-core 0.24.2), both with exposure logging disabled so
   that only evaluation is timed; the answers are checked to be identical first;
2. requests/s of `POST /v1/get_config` (evaluation + a durable exposure write) and of a v1 spec download
   vs `POST /v1/get_id_lists` (authentication only) on the same server, over one keep-alive
   connection per client thread.
Prints ratios measured in this one run. The goal for (1) is >= 10x.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The SDKs report internal errors to Statsig's hosts: give them no way out but loopback.
for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
    os.environ[name] = "http://127.0.0.1:9"
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

import httpx  # noqa: E402

from openautotune.serving.evaluate import Evaluator  # noqa: E402
from tests.e2e.live import LiveServer  # noqa: E402
from tests.e2e.test_legacy_sdk import create  # noqa: E402
from tests.e2e.users import generated_users  # noqa: E402


def rate(label: str, work: Callable[[], int], min_seconds: float = 2.0) -> float:
    """Operations per second of `work` (which returns how many it did), repeated for `min_seconds`
    after one untimed warm-up round."""
    work()
    done, start = 0, time.perf_counter()
    while True:
        done += work()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            break
    per_second = done / elapsed
    print(f"  {label:<56} {per_second:>12,.0f} /s")
    return per_second


def evaluation_rates(server: LiveServer, config: str, users: list[dict[str, Any]]) -> dict[str, float]:
    from statsig import StatsigOptions, StatsigUser, statsig
    from statsig_python_core import ExperimentEvaluationOptions, Statsig
    from statsig_python_core import StatsigOptions as CoreOptions
    from statsig_python_core import StatsigUser as CoreUser

    evaluator = Evaluator.from_specs(server.v1_specs())
    statsig.initialize(server.server_key, StatsigOptions(api=f"{server.url}/v1", disable_diagnostics=True))
    core = Statsig(
        server.server_key,
        CoreOptions(specs_url=f"{server.url}/v2/download_config_specs", log_event_url=f"{server.url}/v1/log_event"),
    )
    core.initialize().wait()
    quiet = ExperimentEvaluationOptions(disable_exposure_logging=True)
    legacy_users = [StatsigUser(user_id=u["userID"], custom_ids=u.get("customIDs")) for u in users]
    core_users = [CoreUser(user_id=u["userID"], custom_ids=u.get("customIDs")) for u in users]
    try:
        ours = [evaluator.evaluate(u, config) for u in users]
        legacy = [statsig.get_experiment_with_exposure_logging_disabled(u, config) for u in legacy_users]
        cores = [core.get_experiment(u, config, quiet) for u in core_users]
        assert [e.rule_id for e in ours if e] == [x.rule_id for x in legacy] == [x.rule_id for x in cores]
        print(f"evaluations of one autotune ({len(users):,} users; identical answers checked):")

        def run_ours() -> int:
            for user in users:
                evaluator.evaluate(user, config)
            return len(users)

        def run_legacy() -> int:
            for user in legacy_users:
                statsig.get_experiment_with_exposure_logging_disabled(user, config)
            return len(users)

        def run_core() -> int:
            for user in core_users:
                core.get_experiment(user, config, quiet)
            return len(users)

        return {
            "ours": rate("openautotune Evaluator.evaluate", run_ours),
            "legacy": rate("statsig 0.72.1 get_experiment (no exposure)", run_legacy),
            "core": rate("statsig-python-core 0.24.2 get_experiment (no exposure)", run_core),
        }
    finally:
        statsig.shutdown()
        core.shutdown().wait()


def http_rates(server: LiveServer, config: str, users: list[dict[str, Any]], requests: int) -> dict[str, float]:
    threads = 8
    headers = {"statsig-api-key": server.server_key, "STATSIG-API-KEY": server.server_key}

    def hammer(path: str, bodies: Callable[[int], dict[str, Any]]) -> Callable[[], int]:
        def work() -> int:
            def client_thread(offset: int) -> None:
                with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
                    for i in range(offset, requests, threads):
                        response = client.post(path, json=bodies(i))
                        assert response.status_code == 200, response.text

            workers = [threading.Thread(target=client_thread, args=(t,)) for t in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            return requests

        return work

    print(f"HTTP requests ({threads} keep-alive clients, server in its own process):")
    trivial = rate("POST /v1/get_id_lists (auth only)", hammer("/v1/get_id_lists", lambda i: {}), 3.0)
    specs_url = f"/v1/download_config_specs/{server.server_key}.json"

    def downloads() -> int:
        def client_thread(offset: int) -> None:
            with httpx.Client(base_url=server.url, headers={"Accept-Encoding": "gzip"}, timeout=30) as client:
                for _ in range(offset, requests, threads):
                    assert client.get(specs_url).status_code == 200

        workers = [threading.Thread(target=client_thread, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return requests

    specs_rate = rate("GET /v1/download_config_specs (cached gzip bytes)", downloads, 3.0)
    config_rate = rate(
        "POST /v1/get_config (evaluate + store exposure)",
        hammer("/v1/get_config", lambda i: {"configName": config, "user": users[i % len(users)]}),
        3.0,
    )
    return {"trivial": trivial, "get_config": config_rate, "specs": specs_rate}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = LiveServer.start(f"sqlite:///{tmp}/bench.db", env={"OPENAUTOTUNE_SPECS_REFRESH_SECONDS": "1"})
        try:
            config = create(server, "bench", idType="userID")["id"]
            users = generated_users(args.users)
            evaluations = evaluation_rates(server, config, users)
            http = http_rates(server, config, users, args.requests)
        finally:
            server.stop()
    print("ratios:")
    print(f"  evaluator / legacy SDK        {evaluations['ours'] / evaluations['legacy']:6.1f}x  (goal >= 10x)")
    print(f"  evaluator / core SDK          {evaluations['ours'] / evaluations['core']:6.1f}x")
    print(f"  get_config / get_id_lists     {http['get_config'] / http['trivial']:6.2f}")
    print(f"  specs download / get_id_lists {http['specs'] / http['trivial']:6.2f}")


if __name__ == "__main__":
    main()
