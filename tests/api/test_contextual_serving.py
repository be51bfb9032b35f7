"""Server-side evaluation of a contextual autotune (contextual.md): before training `/v1/get_config` gives the
published entry's equal split, as the core SDK does; once trained it decides by Thompson sampling; either
way it stores the exposure with the exact propensity. The ranked list orders every variant by its published
score. SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from openautotune.contextual.serving import load_deciders
from openautotune.service import autotunes as autotune_service
from openautotune.service import specs as spec_service
from openautotune.serving.bucketing import cmab_bucket, cmab_equal_split
from openautotune.serving.cmab import cmab_configs
from openautotune.store.ingest_tables import exposures_table, units_table
from openautotune.testing import TestApp
from tests.api.fuzz_world import train_contextual
from tests.api.helpers import created_id
from tests.contextual.sdk import sdk_score


def _trained(client: TestClient, app: TestApp) -> tuple[str, list[str]]:
    autotune_id = created_id(
        client, app, name="ctx_serving", explorationWindow="1hr", isContextual=True, featureList=["country"]
    )
    assert client.put(f"/console/v1/autotunes/{autotune_id}/start", headers=app.console_headers()).status_code == 200
    train_contextual(app.db, autotune_id, clock=app.clock, units=600)
    variants = [v.id for v in autotune_service.get(app.db, autotune_id).definition.variants]
    return autotune_id, variants


def test_get_config_before_training_is_the_sdks_equal_split(client: TestClient, test_app: TestApp) -> None:
    variants = [{"name": f"v{k}", "json": {"k": k}} for k in range(3)]
    autotune_id = created_id(client, test_app, name="ctx_untrained", isContextual=True, variants=variants)
    assert (
        client.put(f"/console/v1/autotunes/{autotune_id}/start", headers=test_app.console_headers()).status_code == 200
    )
    headers = {"statsig-api-key": test_app.server_key}
    specs = client.get(f"/v2/download_config_specs/{test_app.server_key}.json", headers=headers).json()
    entry = specs["cmab_configs"][autotune_id]
    assert "config" not in entry
    answers = {}
    for i in range(60):
        user = {"userID": f"e{i}", "country": "DE" if i % 2 else "FR", "custom": {"age": 20 + i}}
        response = client.post("/v1/get_config", json={"configName": autotune_id, "user": user}, headers=headers)
        assert response.status_code == 200, response.text
        group = entry["groups"][cmab_equal_split(cmab_bucket(entry["salt"], f"e{i}"), 3)]
        assert response.json() == {
            "name": autotune_id,
            "value": group["parameterValues"],
            "rule_id": f"{group['id']}:explore",
            "group": group["id"],
            "group_name": group["name"],
        }
        answers[f"e{i}"] = group["id"]
    assert len(set(answers.values())) == 3
    with test_app.db.read() as conn:
        exposures = conn.execute(sa.select(exposures_table).where(exposures_table.c.autotune_id == autotune_id)).all()
        units = conn.execute(sa.select(units_table).where(units_table.c.autotune_id == autotune_id)).all()
    assert len(exposures) == len(units) == 60
    for row in [*exposures, *units]:
        assert row.propensity == 1 / 3  # the equal split's, stored with the exposure
    assert all(row.config_version == entry["version"] for row in exposures)
    assert all(row.variant_id == answers[row.unit_id] and row.explore for row in units)


def test_get_config_samples_and_stores_the_exact_propensity(client: TestClient, test_app: TestApp) -> None:
    autotune_id, variants = _trained(client, test_app)
    decider = load_deciders(test_app.db)[autotune_id]
    test_app.app.state.contextual.rng = np.random.default_rng(0)  # the server's generator, seeded for the test
    headers = {"statsig-api-key": test_app.server_key}
    answers = []
    for i in range(40):
        user = {"userID": f"s{i}", "country": "DE" if i % 2 else "FR"}
        response = client.post("/v1/get_config", json={"configName": autotune_id, "user": user}, headers=headers)
        assert response.status_code == 200, response.text
        answers.append((user, response.json()))
    with test_app.db.read() as conn:
        stored = {
            row.unit_id: row
            for row in conn.execute(sa.select(exposures_table).where(exposures_table.c.autotune_id == autotune_id))
        }
    for user, answer in answers:
        row = stored[user["userID"]]
        assert answer["group"] in variants and row.rule_id == answer["rule_id"]
        assert row.config_version == decider.version
        k = variants.index(answer["group"])
        expected = decider.bank.probabilities(decider.server.encoding.transform_one(user))[k]
        assert row.propensity == pytest.approx(expected, rel=1e-12)
        assert answer["rule_id"] in (answer["group"], answer["group"] + ":explore")
    # Thompson sampling mostly picks the variant that suits the country.
    suited = sum(a["group"] == variants[0 if u["country"] == "DE" else 1] for u, a in answers)
    assert suited >= 28


def test_ranked_groups_follow_the_published_scores(client: TestClient, test_app: TestApp) -> None:
    autotune_id, variants = _trained(client, test_app)
    state = spec_service.load(test_app.db)
    config = cmab_configs(state.pairs, state.cmab_policies)[autotune_id]["config"]
    headers = {"statsig-api-key": test_app.server_key}
    for country, best in (("DE", variants[0]), ("FR", variants[1])):
        user = {"userID": "r", "country": country}
        response = client.post(
            "/v1/get_cmab_ranked_groups", json={"configName": autotune_id, "user": user}, headers=headers
        )
        assert response.status_code == 200, response.text
        ranked = response.json()["rankedGroups"]
        assert ranked[0]["id"] == best
        for group in ranked:
            assert group["score"] == pytest.approx(sdk_score(config[group["id"]], user), abs=1e-9)
        assert ranked[0]["score"] >= ranked[1]["score"]
    missing = client.post("/v1/get_cmab_ranked_groups", json={"configName": "nope", "user": {}}, headers=headers)
    assert missing.status_code == 404 and set(missing.json()) == {"status", "message"}
    unauthorized = client.post("/v1/get_cmab_ranked_groups", json={"configName": autotune_id, "user": {}})
    assert unauthorized.status_code == 401
    malformed = client.post("/v1/get_cmab_ranked_groups", json={"configName": 3}, headers=headers)
    assert malformed.status_code == 400


def test_results_show_coefficients_and_policy_value(client: TestClient, test_app: TestApp) -> None:
    autotune_id, variants = _trained(client, test_app)
    response = client.get(f"/console/v1/autotunes/{autotune_id}/results", headers=test_app.console_headers())
    assert response.status_code == 200, response.text
    part = response.json()["data"]["contextual"]
    assert [v["id"] for v in part["variants"]] == variants
    assert all(set(v["weightsCategorical"]) == {"country"} for v in part["variants"])
    value = part["policyValue"]
    assert value["personalized"]["dr"] > value["bestSingle"]["drInterval"][1]
    assert value["personalized"]["effectiveSampleSize"] > 0
