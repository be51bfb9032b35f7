"""Supervised-to-bandit through the real path: each class of a labelled data set is a variant of a contextual
autotune, and a user succeeds when it is served its own class.

Everything goes through one real HTTP server on loopback whose clock the test holds (`ClockedServer`: the
app of `make_test_app` with its `FixedClock`, served by uvicorn): the autotune is created and started
through the Console API (`isContextual`, one variant per class, success event `correct`, exploration window
1hr, attribution window 1 minute, `featureList` = the data set's column names, sent as `custom` attributes).
Each simulated hour, a batch of training rows (fresh `userID`s, `custom` = the row's features) is served
through `/v1/get_config` (the exploration window's equal split in hour 0, then server-side Thompson
sampling), a `correct` event is logged through `/v1/log_event` for every user served its label, the clock
moves to the hour's end and the engine runs its hourly update there (`update_autotune` at `as_of`, as the
scheduler or `openautotune update --at` would), which trains the models and publishes `cmab_configs`.

Held-out rows are then evaluated by the real core SDK (`statsig-python-core`, its own process, specs over
HTTP, exposure logging off): the variant it returns, explore slice included, against the label; and by
`/v1/get_config` (Thompson sampling). Both are compared with the best single variant on the same rows.

Measured on 2 busy cores, SQLite, three runs (about 20-25 s for the file; the server's Thompson draws are
not seeded, so figures move by a few points between runs):
- digits (10 classes, 64 pixel features; 6 hours x 300 users, 540 held-out rows): core SDK 0.61-0.67
  held-out success, explore slice included (its exploit path alone 0.91-0.94; sampleRate 0.33) against
  0.115 for the best single variant: 5.3-5.8x; `/v1/get_config` 0.50-0.53 (4.3-4.6x); the results API's
  off-policy value (doubly robust) 0.66-0.68 against 0.12;
- wine (3 classes, 13 features; 8 hours x 100 users, 54 held-out rows served to 4 users each): core SDK
  0.72-0.81 (exploit path 0.93-0.95; sampleRate 0.27) against 0.444: 1.6-1.8x (exploit 2.1x);
  `/v1/get_config` 0.74-0.80; off-policy value 0.82 against 0.36-0.38.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_digits, load_wine
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from openautotune.clock import HOUR_MS
from openautotune.engine.update import update_autotune
from tests.e2e.clocked_server import ClockedServer
from tests.e2e.live import SdkProcess

pytestmark = pytest.mark.e2e
EXPLORE = ":explore"


@dataclass(frozen=True)
class Outcome:
    sdk: float  # the core SDK's answers, explore slice included
    sdk_exploit: float  # the core SDK's answers on its exploit path only
    sdk_explored: float  # the share of held-out users the SDK put on its explore slice
    get_config: float  # /v1/get_config (server-side Thompson sampling)
    best_single: float
    sample_rate: float
    value_dr: tuple[float, float, float]  # the results API's off-policy value (DR, 95% interval) of the policy
    best_single_dr: tuple[float, float, float]  # ... and of the best single variant


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClockedServer]:
    clocked = ClockedServer.start(f"sqlite:///{tmp_path_factory.mktemp('datasets') / 'datasets.db'}")
    # The server runs in this process: one BLAS thread, as docs/contextual.md advises for small machines
    # (threaded OpenBLAS makes each Thompson draw's matrix-vector product ~10x slower on a busy 2-core box).
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield clocked
    finally:
        clocked.stop()


def _user(prefix: str, index: int, names: list[str], row: np.ndarray) -> dict[str, Any]:
    return {"userID": f"{prefix}-{index}", "custom": {name: float(v) for name, v in zip(names, row, strict=True)}}


def _serve(client: httpx.Client, autotune_id: str, users: list[dict[str, Any]]) -> list[str]:
    """The variant id `/v1/get_config` serves each user (requests in parallel: the server commits the
    exposures of concurrent requests together)."""

    def one(user: dict[str, Any]) -> str:
        response = client.post("/v1/get_config", json={"configName": autotune_id, "user": user})
        assert response.status_code == 200, response.text
        rule_id: str = response.json()["rule_id"]
        return rule_id.removesuffix(EXPLORE)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, users))


def _run(
    server: ClockedServer, name: str, data: Any, *, hours: int, per_hour: int, repeats: int = 1, seed: int = 0
) -> Outcome:
    """Train for `hours` simulated hours of `per_hour` users, then evaluate every held-out row `repeats`
    times (as that many users: different ids, so different explore buckets)."""
    rng = np.random.default_rng(seed)
    X, y = np.asarray(data.data, dtype=np.float64), np.asarray(data.target)
    names = [str(feature) for feature in data.feature_names]
    classes = int(y.max()) + 1
    order = rng.permutation(len(y))
    cut = int(0.7 * len(y))
    train, test = order[:cut], order[cut:]

    body = {
        "name": name,
        "variants": [{"name": f"class_{k}", "json": {"label": k}} for k in range(classes)],
        "successEvent": "correct",
        "explorationWindow": "1hr",
        "attributionWindow": "1",
        "attributionWindowUnit": "min",
        "winnerThreshold": "95%",
        "isContextual": True,
        "featureList": names,
    }
    with server.console() as console:
        created = console.post("/console/v1/autotunes", json=body)
        assert created.status_code == 201, created.text
        autotune = created.json()["data"]
        assert autotune["isContextual"] is True and autotune["featureList"] == names
        assert console.put(f"/console/v1/autotunes/{autotune['id']}/start").status_code == 200
    autotune_id: str = autotune["id"]
    label_of = {variant["id"]: k for k, variant in enumerate(autotune["variants"])}
    started = server.clock.now_ms()

    with server.sdk_client() as client:
        for hour in range(hours):
            server.clock.set(started + hour * HOUR_MS + 60_000)
            rows = rng.choice(train, per_hour, replace=len(train) < per_hour)
            users = [_user(f"{name}-h{hour}", i, names, X[row]) for i, row in enumerate(rows)]
            served = _serve(client, autotune_id, users)
            now = server.clock.now_ms()
            events = [
                {"eventName": "correct", "user": {"userID": user["userID"]}, "time": now + 1_000}
                for user, variant_id, row in zip(users, served, rows, strict=True)
                if label_of[variant_id] == y[row]
            ]
            logged = client.post("/v1/log_event", json={"events": events})
            assert logged.status_code == 200 and logged.json()["accepted"] == len(events), logged.text
            # The hourly update at the hour's end, at the server's own (simulated) time.
            server.clock.set(started + (hour + 1) * HOUR_MS)
            outcome = update_autotune(server.db, server.clock, autotune_id, server.clock.now_ms())
            assert outcome.updated, outcome.reason
            assert outcome.stage is not None and outcome.stage.value == "exploiting"
            assert outcome.new_units == per_hour

        specs = client.get(f"/v2/download_config_specs/{server.server_key}.json").json()
        entry = specs["cmab_configs"][autotune_id]
        assert entry["version"] == outcome.allocation_version and "config" in entry
        sample_rate = float(entry["sampleRate"])

        rows = np.tile(test, repeats)
        held_out = [_user(f"{name}-test", i, names, X[row]) for i, row in enumerate(rows)]
        labels = y[rows]
        with SdkProcess("core", server) as sdk:
            answers = sdk.evaluate(autotune_id, held_out)
        explored = np.array([rule_id.endswith(EXPLORE) for rule_id, _group, _value in answers])
        sdk_labels = np.array([label_of[rule_id.removesuffix(EXPLORE)] for rule_id, _group, _value in answers])
        sdk_hits = sdk_labels == labels
        thompson = np.array([label_of[variant_id] for variant_id in _serve(client, autotune_id, held_out)])
    with server.console() as console:
        results = console.get(f"/console/v1/autotunes/{autotune_id}/results")
        assert results.status_code == 200, results.text
        value = results.json()["data"]["contextual"]["policyValue"]

    def dr(part: dict[str, Any]) -> tuple[float, float, float]:
        low, high = part["drInterval"]
        return float(part["dr"]), float(low), float(high)

    return Outcome(
        sdk=float(sdk_hits.mean()),
        sdk_exploit=float(sdk_hits[~explored].mean()),
        sdk_explored=float(explored.mean()),
        get_config=float(np.mean(thompson == labels)),
        best_single=max(float(np.mean(labels == k)) for k in range(classes)),
        sample_rate=sample_rate,
        value_dr=dr(value["personalized"]),
        best_single_dr=dr(value["bestSingle"]),
    )


def test_digits_through_the_real_path(server: ClockedServer) -> None:
    result = _run(server, "ctx_digits", load_digits(), hours=6, per_hour=300)
    print(result)
    assert 0.1 < result.sdk_explored < 0.6  # the SDK explores on its slice and exploits elsewhere
    assert result.sdk >= 3 * result.best_single, result
    assert result.sdk_exploit >= 0.8 and result.sdk_exploit >= 6 * result.best_single, result
    assert result.get_config >= 3 * result.best_single, result
    assert result.value_dr[1] > result.best_single_dr[2], result  # the results API agrees, off-policy


def test_wine_through_the_real_path(server: ClockedServer) -> None:
    result = _run(server, "ctx_wine", load_wine(), hours=8, per_hour=100, repeats=4)
    print(result)
    assert result.sdk >= 1.4 * result.best_single, result
    assert result.sdk_exploit >= 0.85 and result.sdk_exploit >= 1.8 * result.best_single, result
    assert result.get_config >= 1.4 * result.best_single, result
    assert result.value_dr[1] > result.best_single_dr[2], result  # the results API agrees, off-policy
