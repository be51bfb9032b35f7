"""Signing in and out of the dashboard, sessions and CSRF (in-process, SQLite and PostgreSQL)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from openautotune.service import keys as key_service
from openautotune.testing import TestApp
from openautotune.web import session as sessions
from tests.web.helpers import csrf_of, sign_in


def test_pages_need_a_session(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2F"


def test_login_page_sets_an_httponly_lax_cookie(client: TestClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(sessions.COOKIE_NAME + "=")
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert csrf_of(page.text)


def test_console_key_signs_in_and_out(client: TestClient, test_app: TestApp) -> None:
    sign_in(client, test_app.console_key)
    listing = client.get("/")
    assert listing.status_code == 200
    assert "Autotunes" in listing.text
    out = client.post("/logout", data={"csrf_token": csrf_of(listing.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_wrong_key_cannot_sign_in(client: TestClient, test_app: TestApp) -> None:
    for wrong in ("console-not-a-key", test_app.server_key, test_app.client_key, ""):
        page = client.get("/login")
        answer = client.post("/login", data={"key": wrong, "csrf_token": csrf_of(page.text)}, follow_redirects=False)
        assert answer.status_code == 401
        assert "not an active console key" in answer.text
        assert client.get("/", follow_redirects=False).status_code == 303


def test_login_without_the_csrf_token_is_refused(client: TestClient, test_app: TestApp) -> None:
    client.get("/login")
    answer = client.post("/login", data={"key": test_app.console_key, "csrf_token": "forged"}, follow_redirects=False)
    assert answer.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 303


def test_logout_without_the_csrf_token_is_refused(client: TestClient, test_app: TestApp) -> None:
    sign_in(client, test_app.console_key)
    assert client.post("/logout", data={}, follow_redirects=False).status_code == 403
    assert client.get("/").status_code == 200


def test_a_tampered_cookie_is_no_session(client: TestClient, test_app: TestApp) -> None:
    sign_in(client, test_app.console_key)
    value = client.cookies[sessions.COOKIE_NAME]
    payload, mac = value.split(".")
    client.cookies.set(sessions.COOKIE_NAME, payload + "x." + mac)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_revoked_key_ends_its_session(client: TestClient, test_app: TestApp) -> None:
    sign_in(client, test_app.console_key)
    assert client.get("/").status_code == 200
    for record in key_service.list_keys(test_app.db):
        key_service.revoke_key(test_app.db, test_app.clock, record.id)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sessions_expire(client: TestClient, test_app: TestApp) -> None:
    sign_in(client, test_app.console_key)
    test_app.clock.advance(sessions.SESSION_TTL_MS)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_next_only_redirects_inside_the_site(client: TestClient, test_app: TestApp) -> None:
    page = client.get("/login")
    answer = client.post(
        "/login",
        data={"key": test_app.console_key, "csrf_token": csrf_of(page.text), "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/"


def test_session_codec_rejects_forgeries() -> None:
    secret = b"s" * 32
    made = sessions.signed_in("key1", False, 1_000)
    cookie = sessions.encode(made, secret)
    assert sessions.decode(cookie, secret, 2_000) == made
    assert sessions.decode(cookie, b"t" * 32, 2_000) is None
    assert sessions.decode(cookie + "A", secret, 2_000) is None
    assert sessions.decode("garbage", secret, 2_000) is None
    assert sessions.decode("a.b", secret, 2_000) is None
    assert sessions.decode(cookie, secret, 1_000 + sessions.SESSION_TTL_MS) is None


def test_a_forged_login_post_does_not_sign_anyone_out(client: TestClient, test_app: TestApp) -> None:
    sign_in(client, test_app.console_key)
    forged = client.post("/login", data={"key": "console-x", "csrf_token": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200


def test_malformed_list_pages_are_not_errors(client: TestClient, test_app: TestApp) -> None:
    sign_in(client, test_app.console_key)
    assert client.get("/?page=99999999999999999999999").status_code == 200
    assert client.get("/?page=-3").status_code == 200
    assert client.get("/?page=abc").status_code == 400
