"""Reviews (console-api.md, "Reviews"): with reviews required and `x-respect-review-settings: true`,
Console API changes wait for a second console key; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from openautotune.domain.keys import KeyKind
from openautotune.service import autotunes as autotune_service
from openautotune.service import keys as key_service
from openautotune.settings import Settings
from openautotune.store import reviews as review_store
from openautotune.testing import TestApp, make_test_app
from tests.api.helpers import BASE, created_id

REVIEWS = "/console/v1/reviews"
HOLD = {"x-respect-review-settings": "true"}


@pytest.fixture
def reviewed_app(database_url: str) -> Iterator[TestApp]:
    made = make_test_app(database_url, require_reviews=True)
    yield made
    made.db.dispose()


@pytest.fixture
def rclient(reviewed_app: TestApp) -> Iterator[TestClient]:
    with TestClient(reviewed_app.app) as test_client:
        yield test_client


def _second_key(app: TestApp) -> dict[str, str]:
    return {"STATSIG-API-KEY": key_service.create_key(app.db, app.clock, KeyKind.CONSOLE).secret}


def _key_id(app: TestApp, headers: dict[str, str]) -> str:
    record = app.app.state.keys.authenticate(headers["STATSIG-API-KEY"])
    assert record is not None
    return str(record.id)


def _read(client: TestClient, app: TestApp, autotune_id: str) -> dict[str, Any]:
    response = client.get(f"{BASE}/{autotune_id}", headers=app.console_headers())
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _submit(client: TestClient, app: TestApp, method: str, path: str, **kwargs: Any) -> str:
    response = client.request(method, path, headers={**app.console_headers(), **HOLD}, **kwargs)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["message"] == "Change submitted for review."
    assert answer["data"]["status"] == "pending"
    return str(answer["data"]["reviewID"])


def test_review_setting_is_off_by_default(client: TestClient, test_app: TestApp) -> None:
    off = client.get("/console/v1/settings/reviews", headers=test_app.console_headers(read_only=True))
    assert off.status_code == 200
    assert off.json() == {"message": "Review settings read successfully.", "data": {"requireReviews": False}}


def test_setting_on_and_header_holds_the_change(rclient: TestClient, reviewed_app: TestApp) -> None:
    app = reviewed_app
    answer = rclient.get("/console/v1/settings/reviews", headers=app.console_headers(read_only=True))
    assert answer.json()["data"] == {"requireReviews": True}
    autotune_id = created_id(rclient, app)
    review_id = _submit(rclient, app, "PATCH", f"{BASE}/{autotune_id}", json={"description": "reviewed text"})
    assert _read(rclient, app, autotune_id)["description"] != "reviewed text"
    listed = rclient.get(REVIEWS, params={"status": "pending"}, headers=app.console_headers(read_only=True))
    assert listed.status_code == 200
    (item,) = listed.json()["data"]
    assert item["id"] == review_id and item["action"] == "partial_update" and item["autotuneID"] == autotune_id
    assert item["change"]["fields"] == {"description": "reviewed text"}
    assert listed.json()["pagination"]["totalItems"] == 1


def test_without_the_header_changes_apply_at_once(rclient: TestClient, reviewed_app: TestApp) -> None:
    app = reviewed_app
    autotune_id = created_id(rclient, app)
    patched = rclient.patch(f"{BASE}/{autotune_id}", json={"description": "now"}, headers=app.console_headers())
    assert patched.status_code == 200
    assert _read(rclient, app, autotune_id)["description"] == "now"
    started = rclient.put(f"{BASE}/{autotune_id}/start", headers={**app.console_headers(), HOLD_KEY: "false"})
    assert started.status_code == 200 and _read(rclient, app, autotune_id)["isStarted"] is True


HOLD_KEY = "x-respect-review-settings"


def test_header_without_the_setting_applies_at_once(client: TestClient, test_app: TestApp) -> None:
    autotune_id = created_id(client, test_app)
    headers = {**test_app.console_headers(), **HOLD}
    assert client.patch(f"{BASE}/{autotune_id}", json={"description": "x"}, headers=headers).status_code == 200
    assert _read(client, test_app, autotune_id)["description"] == "x"


def test_author_cannot_approve_and_read_only_cannot_decide(rclient: TestClient, reviewed_app: TestApp) -> None:
    app = reviewed_app
    autotune_id = created_id(rclient, app)
    review_id = _submit(rclient, app, "PUT", f"{BASE}/{autotune_id}/start")
    own = rclient.put(f"{REVIEWS}/{review_id}/approve", headers=app.console_headers())
    assert own.status_code == 403
    assert own.json() == {
        "status": 403,
        "message": "A change must be reviewed by a different console key than the one that proposed it.",
    }
    assert rclient.put(f"{REVIEWS}/{review_id}/reject", headers=app.console_headers()).status_code == 403
    read_only = app.console_headers(read_only=True)
    assert rclient.get(f"{REVIEWS}/{review_id}", headers=read_only).status_code == 200
    refused = rclient.put(f"{REVIEWS}/{review_id}/approve", headers=read_only)
    assert refused.status_code == 403 and refused.json() == {"status": 403, "message": "Forbidden resource"}
    assert rclient.put(f"{REVIEWS}/{review_id}/reject", headers=read_only).status_code == 403
    assert _read(rclient, app, autotune_id)["isStarted"] is False
    assert rclient.get(f"{REVIEWS}/{review_id}", headers=read_only).json()["data"]["status"] == "pending"


def test_approve_applies_exactly_the_reviewed_change_and_audits_both_keys(
    rclient: TestClient, reviewed_app: TestApp
) -> None:
    app = reviewed_app
    autotune_id = created_id(rclient, app)
    before = _read(rclient, app, autotune_id)
    change = {"description": "reviewed", "winnerThreshold": "99%"}
    review_id = _submit(rclient, app, "PATCH", f"{BASE}/{autotune_id}", json=change)
    reviewer = _second_key(app)
    approved = rclient.put(f"{REVIEWS}/{review_id}/approve", json={"comment": "looks right"}, headers=reviewer)
    assert approved.status_code == 200, approved.text
    data = approved.json()["data"]
    assert data["status"] == "approved" and data["comment"] == "looks right"
    author_id, reviewer_id = _key_id(app, app.console_headers()), _key_id(app, reviewer)
    assert data["authorID"] == author_id and data["reviewerID"] == reviewer_id
    after = _read(rclient, app, autotune_id)
    expected = {**before, **change}
    changed = {k for k in after if after[k] != expected.get(k)}
    assert changed <= {"version", "lastModifiedTime"}
    assert after["version"] == before["version"] + 1
    assert after["lastModifierID"] == author_id  # the change is the author's; the approval is the reviewer's
    entries = autotune_service.audit_history(app.db, autotune_id)
    actions = [(e.action, e.key_id) for e in entries][:3]
    assert actions == [("review_approve", reviewer_id), ("update", author_id), ("review_open", author_id)]
    assert review_id in entries[0].detail and author_id in entries[0].detail and "looks right" in entries[0].detail
    assert entries[1].before is not None and entries[1].after is not None
    again = rclient.put(f"{REVIEWS}/{review_id}/approve", headers=_second_key(app))
    assert again.status_code == 409


def test_reject_leaves_the_autotune_untouched(rclient: TestClient, reviewed_app: TestApp) -> None:
    app = reviewed_app
    autotune_id = created_id(rclient, app)
    before = _read(rclient, app, autotune_id)
    review_id = _submit(rclient, app, "DELETE", f"{BASE}/{autotune_id}")
    reviewer = _second_key(app)
    rejected = rclient.put(f"{REVIEWS}/{review_id}/reject", json={"comment": "keep it"}, headers=reviewer)
    assert rejected.status_code == 200 and rejected.json()["data"]["status"] == "rejected"
    assert _read(rclient, app, autotune_id) == before
    entries = autotune_service.audit_history(app.db, autotune_id)
    assert (entries[0].action, entries[0].key_id) == ("review_reject", _key_id(app, reviewer))
    assert rclient.put(f"{REVIEWS}/{review_id}/approve", headers=reviewer).status_code == 409
    assert _read(rclient, app, autotune_id) == before


def test_approval_of_a_stale_review_is_a_conflict(rclient: TestClient, reviewed_app: TestApp) -> None:
    app = reviewed_app
    autotune_id = created_id(rclient, app)
    review_id = _submit(rclient, app, "PATCH", f"{BASE}/{autotune_id}", json={"description": "from review"})
    direct = rclient.patch(f"{BASE}/{autotune_id}", json={"goalRichText": "meanwhile"}, headers=app.console_headers())
    assert direct.status_code == 200
    before = _read(rclient, app, autotune_id)
    stale = rclient.put(f"{REVIEWS}/{review_id}/approve", headers=_second_key(app))
    assert stale.status_code == 409
    assert stale.json()["message"].startswith("The autotune changed after this review was opened")
    assert _read(rclient, app, autotune_id) == before
    assert rclient.get(f"{REVIEWS}/{review_id}", headers=app.console_headers()).json()["data"]["status"] == "pending"


def test_every_kind_of_change_waits_then_applies(rclient: TestClient, reviewed_app: TestApp) -> None:
    app = reviewed_app
    reviewer = _second_key(app)
    autotune_id = created_id(rclient, app)

    def through_review(method: str, path: str, **kwargs: Any) -> None:
        review_id = _submit(rclient, app, method, path, **kwargs)
        approved = rclient.put(f"{REVIEWS}/{review_id}/approve", headers=reviewer)
        assert approved.status_code == 200, approved.text

    full = _read(rclient, app, autotune_id)
    full_body = {k: full[k] for k in ("variants", "successEvent", "explorationWindow", "attributionWindow")}
    full_body["variants"] = [{"name": v["name"], "json": v["json"]} for v in full_body["variants"]]
    through_review("POST", f"{BASE}/{autotune_id}", json={**full_body, "winnerThreshold": "80%"})
    assert _read(rclient, app, autotune_id)["winnerThreshold"] == "80%"
    through_review("PUT", f"{BASE}/{autotune_id}/start")
    assert _read(rclient, app, autotune_id)["isStarted"] is True
    overrides = {"userIDOverrides": [{"groupID": "blue", "ids": ["u1", "u2"]}]}
    through_review("POST", f"{BASE}/{autotune_id}/overrides", json=overrides)
    through_review(
        "PATCH", f"{BASE}/{autotune_id}/overrides", json={"userIDOverrides": [{"groupID": "red", "ids": ["u3"]}]}
    )
    through_review("DELETE", f"{BASE}/{autotune_id}/overrides/userID/u1", params={"groupID": "blue"})
    got = rclient.get(f"{BASE}/{autotune_id}/overrides", headers=app.console_headers()).json()["data"]
    assert {(o["groupID"], tuple(o["ids"])) for o in got["userIDOverrides"]} == {("blue", ("u2",)), ("red", ("u3",))}
    through_review("PUT", f"{BASE}/{autotune_id}/make_decision", json={"id": "blue", "decisionReason": "clear"})
    assert _read(rclient, app, autotune_id)["winner"]["name"] == "blue"
    through_review("PUT", f"{BASE}/{autotune_id}/reset")
    assert _read(rclient, app, autotune_id)["winner"] is None
    through_review("DELETE", f"{BASE}/{autotune_id}")
    assert rclient.get(f"{BASE}/{autotune_id}", headers=app.console_headers()).status_code == 404


def test_a_change_that_would_be_refused_is_refused_at_once(rclient: TestClient, reviewed_app: TestApp) -> None:
    app = reviewed_app
    autotune_id = created_id(rclient, app)
    headers = {**app.console_headers(), **HOLD}
    decide = rclient.put(
        f"{BASE}/{autotune_id}/make_decision", json={"id": "red", "decisionReason": "x"}, headers=headers
    )
    assert decide.status_code == 400 and decide.json()["message"] == "Autotune experiment has not yet started"
    bad = rclient.patch(f"{BASE}/{autotune_id}", json={"variants": [{"name": "only", "json": {}}]}, headers=headers)
    assert bad.status_code == 400
    assert rclient.put(f"{BASE}/nope/start", headers=headers).status_code == 404
    listed = rclient.get(REVIEWS, headers=app.console_headers()).json()
    assert listed["data"] == [] and listed["pagination"]["totalItems"] == 0


def test_unknown_review_and_bad_queries(rclient: TestClient, reviewed_app: TestApp) -> None:
    headers = reviewed_app.console_headers()
    assert rclient.get(f"{REVIEWS}/nope", headers=headers).status_code == 404
    assert rclient.put(f"{REVIEWS}/nope/approve", headers=_second_key(reviewed_app)).status_code == 404
    assert rclient.get(REVIEWS, params={"status": "maybe"}, headers=headers).status_code == 400
    assert rclient.get(REVIEWS, params={"limit": 0}, headers=headers).status_code == 400
    assert rclient.get(REVIEWS, headers={"STATSIG-API-KEY": "console-wrong"}).status_code == 401
    refused = rclient.put(f"{REVIEWS}/x/approve", json={"comment": 5}, headers=_second_key(reviewed_app))
    assert refused.status_code == 400


def test_review_routes_check_the_api_version(rclient: TestClient, reviewed_app: TestApp) -> None:
    headers = {**reviewed_app.console_headers(), "STATSIG-API-VERSION": "20230101"}
    assert rclient.get(REVIEWS, headers=headers).status_code == 400
    headers["STATSIG-API-VERSION"] = "20240601"
    assert rclient.get(REVIEWS, headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("1", True), ("ON", True), ("false", False), ("0", False)]
)
def test_require_reviews_setting_reads_booleans(raw: str, expected: bool) -> None:
    assert Settings.from_env({"OPENAUTOTUNE_REQUIRE_REVIEWS": raw}).require_reviews is expected


def test_require_reviews_setting_refuses_other_words() -> None:
    with pytest.raises(ValueError, match="OPENAUTOTUNE_REQUIRE_REVIEWS must be true or false"):
        Settings.from_env({"OPENAUTOTUNE_REQUIRE_REVIEWS": "sometimes"})


def test_an_approval_that_fails_changes_nothing(rclient: TestClient, reviewed_app: TestApp) -> None:
    """Atomic: when the stored change cannot be applied (here: edited by hand in the database to an invalid
    one), the approval answers the refusal and neither the autotune, the review nor the audit log moves."""
    app = reviewed_app
    autotune_id = created_id(rclient, app)
    review_id = _submit(rclient, app, "PATCH", f"{BASE}/{autotune_id}", json={"description": "fine"})
    with app.db.write() as conn:
        stored = review_store.get(conn, review_id)
        assert stored is not None
        broken = {**stored.operation, "fields": {"variants": [{"name": "only", "json": {}, "size": None}]}}
        conn.execute(
            review_store.reviews_table.update()
            .where(review_store.reviews_table.c.id == review_id)
            .values(operation=broken)
        )
    before, audit_before = _read(rclient, app, autotune_id), autotune_service.audit_history(app.db, autotune_id)
    refused = rclient.put(f"{REVIEWS}/{review_id}/approve", headers=_second_key(app))
    assert refused.status_code == 400
    assert _read(rclient, app, autotune_id) == before
    assert autotune_service.audit_history(app.db, autotune_id) == audit_before
    assert rclient.get(f"{REVIEWS}/{review_id}", headers=app.console_headers()).json()["data"]["status"] == "pending"
