"""Runs one real Statsig SDK against a server and answers JSON-line commands (used by `live.SdkProcess`).

    python -m tests.e2e.sdk_runner legacy|core http://127.0.0.1:PORT secret-... [TIER]

Prints `{"ready": true}` once initialized, then one JSON line per command read from stdin:
- `{"cmd": "eval", "config": name, "users": [user, ...], "log": false}` ->
  `{"results": [[rule_id, group_name, value], ...]}` (users in Statsig JSON form)
- `{"cmd": "wait_rule", "config": name, "user": user, "rule_id": id, "timeout": s}` ->
  `{"ok": bool, "waited": s, "last": rule_id}` (polls until the SDK has new specs)
- `{"cmd": "shutdown"}` -> `{"ok": true}`, then exits.
The SDKs may write logs to stdout: the protocol uses a private copy of it, stdout goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

Answer = list[Any]


Sdk = tuple[Callable[[str, dict[str, Any], bool], Answer], Callable[[], None]]


def _legacy(url: str, key: str, tier: str | None) -> Sdk:
    from statsig import StatsigOptions, StatsigUser, statsig

    options = StatsigOptions(
        api=f"{url}/v1", rulesets_sync_interval=1, disable_diagnostics=True, init_timeout=10, tier=tier
    )
    statsig.initialize(key, options)

    def evaluate(config: str, user: dict[str, Any], log: bool) -> Answer:
        sdk_user = StatsigUser(
            user_id=user.get("userID"),
            custom_ids=user.get("customIDs"),
            custom=user.get("custom"),
            email=user.get("email"),
            country=user.get("country"),
        )
        get = statsig.get_experiment if log else statsig.get_experiment_with_exposure_logging_disabled
        result = get(sdk_user, config)
        return [result.rule_id, result.group_name, result.value]

    return evaluate, statsig.shutdown


def _core(url: str, key: str, tier: str | None) -> Sdk:
    from statsig_python_core import ExperimentEvaluationOptions, Statsig, StatsigOptions, StatsigUser

    options = StatsigOptions(
        specs_url=f"{url}/v2/download_config_specs",
        log_event_url=f"{url}/v1/log_event",
        specs_sync_interval_ms=1000,
        init_timeout_ms=10000,
        environment=tier,
    )
    sdk = Statsig(key, options)
    sdk.initialize().wait()
    quiet = ExperimentEvaluationOptions(disable_exposure_logging=True)

    def evaluate(config: str, user: dict[str, Any], log: bool) -> Answer:
        sdk_user = StatsigUser(
            user_id=user.get("userID"),
            custom_ids=user.get("customIDs"),
            custom=user.get("custom"),
            email=user.get("email"),
            country=user.get("country"),
        )
        result = sdk.get_experiment(sdk_user, config, None if log else quiet)
        return [result.rule_id, result.group_name, result.value]

    def shutdown() -> None:
        sdk.shutdown().wait()

    return evaluate, shutdown


def main() -> None:
    kind, url, key = sys.argv[1:4]
    tier = sys.argv[4] if len(sys.argv) > 4 else None
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def answer(data: dict[str, Any]) -> None:
        protocol.write(json.dumps(data) + "\n")
        protocol.flush()

    evaluate, shutdown = (_legacy if kind == "legacy" else _core)(url, key, tier)
    answer({"ready": True})
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if command["cmd"] == "eval":
                results = [evaluate(command["config"], user, command.get("log", False)) for user in command["users"]]
                answer({"results": results})
            elif command["cmd"] == "wait_rule":
                start = time.monotonic()
                last = ""
                while time.monotonic() - start < command["timeout"]:
                    last = evaluate(command["config"], command["user"], False)[0]
                    if last == command["rule_id"]:
                        break
                    time.sleep(0.05)
                answer({"ok": last == command["rule_id"], "waited": time.monotonic() - start, "last": last})
            elif command["cmd"] == "shutdown":
                shutdown()
                answer({"ok": True})
                return
        except Exception as error:  # report, keep serving: the test decides
            answer({"error": repr(error)})


if __name__ == "__main__":
    main()
