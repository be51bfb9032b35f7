"""`cmab_configs` as we render and validate them, read by the real core SDK: what it accepts, and how
it buckets and scores (sdk-core-protocol.md), so contextual serving can build on checked ground.

The specs come from a tiny static server: the shape is what is tested here, not the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from openautotune.serving import specs_v2
from openautotune.serving.bucketing import cmab_bucket, unit_id
from openautotune.serving.validate import validate_v2
from tests.e2e.live import SdkProcess
from tests.e2e.static_specs import StaticServer, serve_static_specs
from tests.e2e.users import generated_users
from tests.serving.fixtures import T0, golden_pairs

pytestmark = pytest.mark.e2e

GROUPS = [
    {"name": "A", "id": "g_a", "parameterValues": {"layout": "a"}},
    {"name": "B", "id": "g_b", "parameterValues": {"layout": "b"}},
    {"name": "C", "id": "g_c", "parameterValues": {"layout": "c"}},
]


def cmab(salt: str, config: dict[str, Any] | None, sample_rate: float = 0.0) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "salt": salt,
        "defaultValue": {"layout": "a"},
        "idType": "userID",
        "enabled": True,
        "version": 7,
        "sampleRate": sample_rate,
        "higherIsBetter": True,
        "groups": GROUPS,
    }
    if config is not None:
        entry["config"] = config
    return entry


def weights(intercept: float, categorical: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    return {
        "alpha": 0.0,
        "intercept": intercept,
        "records": 100,
        "weightsNumerical": {"__bias": 0.0},
        "weightsCategorical": categorical or {},
    }


@pytest.fixture
def static_specs() -> Iterator[StaticServer]:
    document = specs_v2.render(
        golden_pairs(),
        T0,
        cmab_configs={
            "untrained": cmab("salt-u", None),
            "trained": cmab(
                "salt-t",
                {
                    "g_a": weights(0.0, {"country": {"DE": 5.0}}),
                    "g_b": weights(1.0),
                    "g_c": weights(0.5, {"country": {"FR": 0.4}}),
                },
            ),
        },
    )
    validate_v2(document)
    with serve_static_specs(document) as server:
        yield server


def test_core_sdk_reads_our_cmab_configs(static_specs: StaticServer) -> None:
    users = generated_users(600, seed=21)
    for index, user in enumerate(users):
        user["country"] = ["DE", "FR", "US"][index % 3]
    with SdkProcess("core", static_specs) as sdk:
        untrained = sdk.evaluate("untrained", users)
        trained = sdk.evaluate("trained", users)
        plain = sdk.evaluate("sized_one", users[:5])  # the document's other entries still work
    for user, (rule_id, group_name, value) in zip(users, untrained, strict=True):
        group = GROUPS[cmab_bucket("salt-u", unit_id(user, "userID")) * len(GROUPS) // 10000]
        assert [rule_id, group_name, value] == [f"{group['id']}:explore", group["name"], group["parameterValues"]]
    best = {"DE": GROUPS[0], "FR": GROUPS[1], "US": GROUPS[1]}
    for user, (rule_id, group_name, value) in zip(users, trained, strict=True):
        group = best[user["country"]]
        assert [rule_id, group_name, value] == [group["id"], group["name"], group["parameterValues"]]
    assert all(rule_id in {"v_red", "v_green", "v_blue"} for rule_id, _g, _v in plain)
