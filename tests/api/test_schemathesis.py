"""Property-based run of the whole documented API (schemathesis over /openapi.json).

It generates valid and invalid requests for every operation and checks that none gets a 5xx, that
every status is documented, and that every answer matches its documented schema.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from openautotune.testing import TestApp, make_test_app
from tests.api.helpers import body


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> TestApp:
    path: Path = tmp_path_factory.mktemp("schemathesis") / "openautotune.db"
    made = make_test_app(f"sqlite:///{path}")
    from fastapi.testclient import TestClient

    with TestClient(made.app) as client:
        # Something to read, update and delete, whatever ids schemathesis picks.
        client.post("/console/v1/autotunes", json=body(name="button_color_test"), headers=made.console_headers())
    return made


def _operations(made: TestApp) -> list[schemathesis.APIOperation]:
    api_schema = schemathesis.openapi.from_asgi("/openapi.json", made.app)
    return [result.ok() for result in api_schema.get_all_operations()]


def test_documented_api_never_fails(seeded: TestApp) -> None:
    operations = _operations(seeded)
    assert len(operations) >= 14
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def run(case: schemathesis.Case) -> None:
            case.headers = {**(case.headers or {}), "STATSIG-API-KEY": seeded.console_key}
            case.call_and_validate(checks=checks)

        run()
