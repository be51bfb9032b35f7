"""Before any training, `/v1/get_config` assigns every user of a contextual autotune exactly as the real core
SDK (`statsig-python-core==0.24.2`) does from the v2 specs it downloads from the same server: the equal
split of the `cmab_configs` entry by `sha256(salt.unitID) % 10000` (docs/contextual.md, "Policy").

2,000 users with mixed attributes (ids of every style, countries, emails, numeric and categorical `custom`
values), on two running contextual autotunes: 3 variants by `userID`, and 14 variants by the custom id
`companyID` (some users lack it, and one sits on hash 5000, where 14 groups' floating-point boundary and
an integer split disagree).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from openautotune.serving.bucketing import cmab_bucket
from openautotune.store.ingest_tables import exposures_table
from tests.e2e.live import LiveServer, SdkProcess
from tests.e2e.test_legacy_sdk import create
from tests.e2e.users import generated_users

pytestmark = pytest.mark.e2e
USERS = 2000


def _users() -> list[dict[str, Any]]:
    distinct = {user["userID"]: user for user in generated_users(USERS + 200, seed=13)}  # one exposure each
    users = list(distinct.values())[:USERS]
    for index, user in enumerate(users):
        if index % 7:
            user.setdefault("customIDs", {})["companyID"] = f"co-{index % 301}"
        if index % 3:
            user["country"] = ["DE", "FR", "US", "BR", "JP"][index % 5]
        if index % 4 == 1:
            user["email"] = f"user{index}@example.com"
        custom: dict[str, Any] = {"age": 18 + index % 60, "plan": ["free", "pro", "team"][index % 3]}
        if index % 2:
            custom["score"] = str(index / 8)
            custom["beta"] = index % 4 == 1
        user["custom"] = custom
    return users


def _contextual(server: LiveServer, name: str, variants: int, id_type: str) -> dict[str, Any]:
    groups = [{"name": f"v{k}", "json": {"variant": k}} for k in range(variants)]
    return create(server, name, variants=groups, idType=id_type, isContextual=True)


def _served(server: LiveServer, autotune_id: str, users: list[dict[str, Any]]) -> list[list[Any]]:
    """[rule_id, group_name, value] that `/v1/get_config` answers each user (requests in parallel)."""
    with httpx.Client(base_url=server.url, headers={"statsig-api-key": server.server_key}, timeout=30.0) as client:

        def one(user: dict[str, Any]) -> list[Any]:
            response = client.post("/v1/get_config", json={"configName": autotune_id, "user": user})
            assert response.status_code == 200, response.text
            answer = response.json()
            return [answer["rule_id"], answer["group_name"], answer["value"]]

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(one, users))


def test_get_config_agrees_with_the_core_sdk_before_training(shared_live_server: LiveServer) -> None:
    server = shared_live_server
    by_user = _contextual(server, "ctx_untrained_agreement_user", 3, "userID")
    by_company = _contextual(server, "ctx_untrained_agreement_company", 14, "companyID")
    specs = httpx.get(f"{server.url}/v2/download_config_specs/{server.server_key}.json", timeout=10.0).json()
    entries = {autotune["id"]: specs["cmab_configs"][autotune["id"]] for autotune in (by_user, by_company)}
    assert all("config" not in entry for entry in entries.values())  # untrained

    users = _users()
    salt = entries[by_company["id"]]["salt"]
    boundary = next(f"edge-{i}" for i in range(1_000_000) if cmab_bucket(salt, f"edge-{i}") == 5000)
    users[-1] = {"userID": "edge-user", "customIDs": {"companyID": boundary}, "country": "DE"}

    with SdkProcess("core", server) as sdk:
        for autotune in (by_user, by_company):
            expected = sdk.evaluate(autotune["id"], users)
            served = _served(server, autotune["id"], users)
            disagreeing = [
                (user, sdk_answer, answer)
                for user, sdk_answer, answer in zip(users, expected, served, strict=True)
                if sdk_answer != answer
            ]
            groups = sum(sdk_answer[1] != answer[1] for _user, sdk_answer, answer in disagreeing)
            assert not disagreeing, f"{len(disagreeing)} disagree ({groups} on the group), e.g. {disagreeing[:3]}"
            assert all(rule_id.endswith(":explore") for rule_id, _name, _value in served)
            assert len({rule_id for rule_id, _name, _value in served}) == len(autotune["variants"])
    assert served[-1][0] == f"{by_company['variants'][6]['id']}:explore"  # floor(5000 / (10000 / 14)) = 6

    # Each answer was stored as the SDK would have logged it, with the equal split's propensity 1/K.
    with server.db.read() as conn:
        rows = conn.execute(
            sa.select(exposures_table).where(exposures_table.c.autotune_id.in_([by_user["id"], by_company["id"]]))
        ).all()
    assert len(rows) == 2 * USERS
    for row in rows:
        entry = entries[row.autotune_id]
        assert row.rule_id.endswith(":explore") and row.config_version == entry["version"]
        assert row.propensity == pytest.approx(1 / len(entry["groups"]), rel=1e-12)
