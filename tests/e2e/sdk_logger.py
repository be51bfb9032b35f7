"""Runs one real Statsig SDK that evaluates an autotune for some users and logs a custom event for
each, then shuts down (which flushes the event queue to `/v1/log_event`). Used by test_sdk_ingest.py.

    python -m tests.e2e.sdk_logger legacy|core http://127.0.0.1:PORT secret-... CONFIG N

Prints one JSON line: `[[user_id, rule_id], ...]`.
"""

from __future__ import annotations

import json
import os
import sys


def _legacy(url: str, key: str, config: str, count: int) -> list[list[str]]:
    from statsig import StatsigEvent, StatsigOptions, StatsigUser, statsig

    statsig.initialize(key, StatsigOptions(api=f"{url}/v1", disable_diagnostics=True, init_timeout=10))
    seen = []
    for i in range(count):
        user = StatsigUser(user_id=f"ingest-legacy-{i}", custom_ids={"stableID": f"ingest-ls-{i}"}, country="DE")
        seen.append([user.user_id, statsig.get_experiment(user, config).rule_id])
        statsig.log_event(StatsigEvent(user, "click", value=i, metadata={"n": str(i)}))
    statsig.shutdown()
    return seen


def _core(url: str, key: str, config: str, count: int) -> list[list[str]]:
    from statsig_python_core import Statsig, StatsigOptions, StatsigUser

    options = StatsigOptions(
        specs_url=f"{url}/v2/download_config_specs", log_event_url=f"{url}/v1/log_event", init_timeout_ms=10000
    )
    sdk = Statsig(key, options)
    sdk.initialize().wait()
    seen = []
    for i in range(count):
        user = StatsigUser(user_id=f"ingest-core-{i}", custom_ids={"stableID": f"ingest-cs-{i}"}, country="FR")
        seen.append([f"ingest-core-{i}", sdk.get_experiment(user, config).rule_id])
        sdk.log_event(user, "click", i, {"n": str(i)})
    sdk.shutdown().wait()
    return seen


def main() -> None:
    kind, url, key, config, count = sys.argv[1:6]
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # SDK chatter goes to stderr
    seen = (_legacy if kind == "legacy" else _core)(url, key, config, int(count))
    protocol.write(json.dumps(seen) + "\n")
    protocol.flush()


if __name__ == "__main__":
    main()
