"""Runs the real legacy Statsig SDK: evaluates an autotune for N users (logging exposures) and logs the
success event only for users served `CONVERTING_VARIANT`, then shuts down (flushing to /v1/log_event).

    python -m tests.engine.sdk_convert http://127.0.0.1:PORT secret-... CONFIG N CONVERTING_VARIANT EVENT

Prints one JSON line: `[[user_id, rule_id], ...]`. Used by test_engine_e2e.py.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    url, key, config, count, converting, event = sys.argv[1:7]
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # SDK chatter goes to stderr
    from statsig import StatsigEvent, StatsigOptions, StatsigUser, statsig

    statsig.initialize(key, StatsigOptions(api=f"{url}/v1", disable_diagnostics=True, init_timeout=10))
    seen = []
    for i in range(int(count)):
        user = StatsigUser(user_id=f"engine-e2e-{i}")
        rule_id = statsig.get_experiment(user, config).rule_id
        seen.append([user.user_id, rule_id])
        if rule_id == converting:
            statsig.log_event(StatsigEvent(user, event))
    statsig.shutdown()
    protocol.write(json.dumps(seen) + "\n")
    protocol.flush()


if __name__ == "__main__":
    main()
