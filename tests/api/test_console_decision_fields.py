"""The engine's extension fields `estimator` and `winnerRule` (engine.md): validated, echoed, defaulted."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from openautotune.domain.rules import ESTIMATORS, WINNER_RULES
from openautotune.stats import DEFAULT_ESTIMATOR, DEFAULT_WINNER_RULE
from openautotune.stats import ESTIMATORS as STATS_ESTIMATORS
from openautotune.stats import WINNER_RULES as STATS_WINNER_RULES
from openautotune.testing import TestApp
from tests.api.helpers import BASE, create, created_id, invalid_properties


def test_the_domain_and_the_engine_name_the_same_choices_and_defaults() -> None:
    assert ESTIMATORS == STATS_ESTIMATORS and ESTIMATORS[0] == DEFAULT_ESTIMATOR == "periodWeighted"
    assert WINNER_RULES == STATS_WINNER_RULES and WINNER_RULES[0] == DEFAULT_WINNER_RULE == "sequential"


@pytest.mark.parametrize(
    ("field", "value"),
    [("estimator", "mean"), ("estimator", 1), ("estimator", ""), ("winnerRule", "bayes"), ("winnerRule", True)],
)
def test_bad_values_are_400_and_write_nothing(client: TestClient, test_app: TestApp, field: str, value: object) -> None:
    response = create(client, test_app, **{field: value})
    assert invalid_properties(response) == [field]
    listed = client.get(BASE, headers=test_app.console_headers()).json()
    assert listed["data"] == []


def test_omitted_fields_keep_the_defaults(client: TestClient, test_app: TestApp) -> None:
    response = create(client, test_app)
    assert response.status_code == 201
    data = response.json()["data"]
    assert "estimator" not in data and "winnerRule" not in data  # unset: the engine's defaults apply


@pytest.mark.parametrize(("estimator", "rule"), [("pooled", "statsig"), ("periodWeighted", "sequential")])
def test_values_are_stored_and_echoed(client: TestClient, test_app: TestApp, estimator: str, rule: str) -> None:
    autotune_id = created_id(client, test_app, estimator=estimator, winnerRule=rule)
    data = client.get(f"{BASE}/{autotune_id}", headers=test_app.console_headers()).json()["data"]
    assert (data["estimator"], data["winnerRule"]) == (estimator, rule)


def test_patch_changes_one_and_null_restores_the_default(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app, winnerRule="statsig")
    headers = test_app.console_headers()
    patched = client.patch(f"{BASE}/{autotune_id}", json={"estimator": "pooled"}, headers=headers)
    assert patched.status_code == 200, patched.text
    assert (patched.json()["data"]["estimator"], patched.json()["data"]["winnerRule"]) == ("pooled", "statsig")
    bad = client.patch(f"{BASE}/{autotune_id}", json={"winnerRule": "fast"}, headers=headers)
    assert invalid_properties(bad) == ["winnerRule"]
    reset = client.patch(f"{BASE}/{autotune_id}", json={"winnerRule": None}, headers=headers)
    assert reset.status_code == 200 and "winnerRule" not in reset.json()["data"]
