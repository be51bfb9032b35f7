"""/openapi.json documents the Console API with its real schemas, and /docs renders."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_openapi_documents_request_and_response_schemas(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    create = paths["/console/v1/autotunes"]["post"]
    body_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert set(schema["required"]) >= {"name", "variants", "successEvent", "explorationWindow"}
    assert "24hr" in str(schema["properties"]["explorationWindow"])
    assert create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("AutotuneAnswer")
    for status in ("400", "401", "403", "404"):
        assert status in create["responses"], status
    for path in ("/console/v1/autotunes/{id}/start", "/console/v1/autotunes/{id}/make_decision"):
        assert "put" in paths[path]


def test_docs_page_renders(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "/_swagger/swagger-ui-bundle.js" in response.text  # served locally: works offline
    assert "cdn" not in response.text.lower()
    assert client.get("/_swagger/swagger-ui-bundle.js").status_code == 200
