"""The dashboard's pending reviews: listed with Approve and Reject buttons, in a real browser against a
real server with reviews required; and the refusals, through a TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from openautotune.clock import SystemClock
from openautotune.domain.keys import KeyKind
from openautotune.service import keys as key_service
from openautotune.testing import TestApp, make_test_app
from tests.api.helpers import BASE, BUTTON_COLOR_TEST
from tests.e2e.live import LiveServer
from tests.web.helpers import csrf_of, sign_in

HOLD = {"x-respect-review-settings": "true"}
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.fixture(scope="module")
def review_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('reviews') / 'live.db'}"
    server = LiveServer.start(url, env={"OPENAUTOTUNE_REQUIRE_REVIEWS": "true"})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    made = context.new_page()
    try:
        yield made
    finally:
        context.close()


def _held(server: LiveServer, method: str, path: str, **kwargs: Any) -> str:
    headers = {"STATSIG-API-KEY": server.console_key, **HOLD}
    answer = httpx.request(method, server.url + path, headers=headers, **kwargs)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["data"]["reviewID"])


def _sign_in(page: Page, server: LiveServer, key: str) -> None:
    page.goto(server.url + "/reviews")
    page.fill("#key", key)
    page.click("#login-form button[type=submit]")
    expect(page).to_have_url(server.url + "/reviews")


@pytest.mark.e2e
def test_reviewer_approves_and_rejects_in_the_browser(page: Page, review_server: LiveServer) -> None:
    server = review_server
    created = httpx.post(server.url + BASE, json=BUTTON_COLOR_TEST, headers={"STATSIG-API-KEY": server.console_key})
    autotune_id = created.json()["data"]["id"]
    approve_id = _held(server, "PATCH", f"{BASE}/{autotune_id}", json={"description": "approved in the browser"})
    reject_id = _held(server, "PUT", f"{BASE}/{autotune_id}/start")

    # The author sees the list but no buttons for their own changes.
    _sign_in(page, server, server.console_key)
    rows = page.locator("#review-list tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator(f"#approve-{approve_id}")).to_have_count(0)
    expect(rows.first).to_contain_text("another key must decide")
    page.click("#sign-out")

    reviewer = key_service.create_key(server.db, SystemClock(), KeyKind.CONSOLE).secret
    _sign_in(page, server, reviewer)
    expect(page.locator(f'tr[data-review="{approve_id}"]')).to_contain_text("approved in the browser")
    page.fill(f'tr[data-review="{approve_id}"] input[name=comment]', "reads well")
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / "dashboard-reviews.png"), full_page=True)
    page.click(f"#approve-{approve_id}")
    expect(page.locator("p.notice")).to_have_text("Approved: the change is applied.")
    expect(rows).to_have_count(1)
    page.click(f"#reject-{reject_id}")
    expect(page.locator("p.notice")).to_have_text("Rejected: nothing changed.")
    expect(page.locator("#no-reviews")).to_be_visible()

    read = httpx.get(f"{server.url}{BASE}/{autotune_id}", headers={"STATSIG-API-KEY": reviewer}).json()["data"]
    assert read["description"] == "approved in the browser" and read["isStarted"] is False
    approved = httpx.get(f"{server.url}/console/v1/reviews/{approve_id}", headers={"STATSIG-API-KEY": reviewer})
    assert approved.json()["data"]["comment"] == "reads well"
    # The autotune page's audit log shows who approved.
    page.goto(f"{server.url}/autotunes/{autotune_id}")
    expect(page.locator("body")).to_contain_text("review_approve")


@pytest.fixture
def reviewed(sqlite_url: str) -> Iterator[tuple[TestApp, TestClient]]:
    app = make_test_app(sqlite_url, require_reviews=True)
    with TestClient(app.app) as client:
        yield app, client
    app.db.dispose()


def test_read_only_key_sees_no_buttons_and_cannot_decide(reviewed: tuple[TestApp, TestClient]) -> None:
    app, client = reviewed
    client.post(BASE, json=BUTTON_COLOR_TEST, headers=app.console_headers())
    held = client.put(f"{BASE}/button_color_test/start", headers={**app.console_headers(), **HOLD})
    review_id = held.json()["data"]["reviewID"]
    sign_in(client, app.read_only_key)
    listed = client.get("/reviews")
    assert listed.status_code == 200 and review_id in listed.text and "read-only key" in listed.text
    assert f"approve-{review_id}" not in listed.text
    refused = client.post(f"/reviews/{review_id}/approve", data={"csrf_token": csrf_of(listed.text)})
    assert refused.status_code == 403
    assert client.get(f"/console/v1/reviews/{review_id}", headers=app.console_headers()).json()["data"]["status"] == (
        "pending"
    )


def test_stale_review_is_refused_on_the_page(reviewed: tuple[TestApp, TestClient]) -> None:
    app, client = reviewed
    client.post(BASE, json=BUTTON_COLOR_TEST, headers=app.console_headers())
    held = client.patch(
        f"{BASE}/button_color_test", json={"description": "a"}, headers={**app.console_headers(), **HOLD}
    )
    review_id = held.json()["data"]["reviewID"]
    client.patch(f"{BASE}/button_color_test", json={"description": "b"}, headers=app.console_headers())
    sign_in(client, key_service.create_key(app.db, app.clock, KeyKind.CONSOLE).secret)
    page = client.get("/reviews")
    answer = client.post(f"/reviews/{review_id}/approve", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 409 and "changed after this review was opened" in answer.text
    forged = client.post(f"/reviews/{review_id}/reject", data={"csrf_token": "wrong"})
    assert forged.status_code == 403


def test_dashboard_actions_wait_for_review_when_reviews_are_required(reviewed: tuple[TestApp, TestClient]) -> None:
    app, client = reviewed
    client.post(BASE, json=BUTTON_COLOR_TEST, headers=app.console_headers())
    sign_in(client, app.console_key)
    confirm = client.get("/autotunes/button_color_test/confirm/start")
    assert 'id="review-note"' in confirm.text
    answer = client.post(
        "/autotunes/button_color_test/start", data={"csrf_token": csrf_of(confirm.text)}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/reviews?done=submitted"
    assert "Submitted for review" in client.get("/reviews?done=submitted").text
    read = client.get(f"{BASE}/button_color_test", headers=app.console_headers()).json()["data"]
    assert read["isStarted"] is False
    (review,) = client.get("/console/v1/reviews", headers=app.console_headers()).json()["data"]
    assert review["action"] == "start" and review["status"] == "pending"
