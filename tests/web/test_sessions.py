"""Server-side dashboard sessions: sign-out ends a session for every copy of its cookie and in every
server process; sessions end after an idle period and at an absolute limit (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from fastapi.testclient import TestClient

from openautotune.service import autotunes as autotune_service
from openautotune.store.dashboard_sessions import dashboard_sessions_table
from openautotune.testing import TestApp, make_test_app
from openautotune.web import session as sessions
from tests.web.helpers import ADMIN, create, csrf_of, sign_in

MINUTE_MS = 60_000


def _session_rows(test_app: TestApp) -> int:
    with test_app.db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(dashboard_sessions_table)).scalar_one())


def test_a_copy_of_the_cookie_cannot_act_after_sign_out(client: TestClient, test_app: TestApp) -> None:
    made = create(test_app.db, test_app.clock)
    autotune_service.start(test_app.db, test_app.clock, ADMIN, made.id)
    sign_in(client, test_app.console_key)
    page = client.get(f"/autotunes/{made.id}")
    kept_cookie, kept_csrf = client.cookies[sessions.COOKIE_NAME], csrf_of(page.text)
    assert client.post("/logout", data={"csrf_token": kept_csrf}, follow_redirects=False).status_code == 303
    assert _session_rows(test_app) == 0

    client.cookies.set(sessions.COOKIE_NAME, kept_cookie)  # replayed by whoever copied it
    assert client.get("/", follow_redirects=False).status_code == 303
    reset = client.post(f"/autotunes/{made.id}/reset", data={"csrf_token": kept_csrf}, follow_redirects=False)
    assert reset.status_code == 401
    assert autotune_service.get(test_app.db, made.id).run == made.run


def test_sessions_end_after_the_idle_limit(client: TestClient, test_app: TestApp) -> None:
    sign_in(client, test_app.console_key)
    for _ in range(6):  # three hours of activity every 29 minutes keep it open
        test_app.clock.advance(29 * MINUTE_MS)
        assert client.get("/", follow_redirects=False).status_code == 200
    test_app.clock.advance(30 * MINUTE_MS)
    assert client.get("/", follow_redirects=False).status_code == 303
    assert _session_rows(test_app) == 0


def test_the_pages_background_refresh_does_not_keep_a_session_open(client: TestClient, test_app: TestApp) -> None:
    made = create(test_app.db, test_app.clock)
    sign_in(client, test_app.console_key)
    for _ in range(29):  # an unattended tab polls its exposures log
        test_app.clock.advance(MINUTE_MS)
        assert client.get(f"/autotunes/{made.id}/exposures").status_code == 200
    test_app.clock.advance(MINUTE_MS)
    assert client.get(f"/autotunes/{made.id}/exposures").status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sessions_end_at_the_absolute_limit_even_when_active(client: TestClient, test_app: TestApp) -> None:
    sign_in(client, test_app.console_key)
    for _ in range(12 * 3 - 1):
        test_app.clock.advance(20 * MINUTE_MS)
        assert client.get("/", follow_redirects=False).status_code == 200
    test_app.clock.advance(20 * MINUTE_MS)  # 12 h after sign-in
    assert client.get("/", follow_redirects=False).status_code == 303


def test_the_limits_are_settings(client: TestClient, test_app: TestApp) -> None:
    settings = test_app.app.state.settings
    test_app.app.state.settings = dataclasses.replace(settings, session_idle_minutes=5, session_max_hours=1)
    page = client.get("/login")
    answer = client.post("/login", data={"key": test_app.console_key, "csrf_token": csrf_of(page.text)})
    assert "Max-Age=3600" in answer.history[0].headers["set-cookie"]
    test_app.clock.advance(4 * MINUTE_MS)
    assert client.get("/", follow_redirects=False).status_code == 200
    test_app.clock.advance(5 * MINUTE_MS)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sign_out_in_one_server_process_ends_the_session_in_every_other(
    client: TestClient, test_app: TestApp, database_url: str
) -> None:
    other = make_test_app(database_url)  # a second server on the same database
    try:
        with TestClient(other.app) as second:
            sign_in(client, test_app.console_key)
            second.cookies.set(sessions.COOKIE_NAME, client.cookies[sessions.COOKIE_NAME])
            listing = second.get("/")
            assert listing.status_code == 200
            assert second.post("/logout", data={"csrf_token": csrf_of(listing.text)}).status_code == 200
            assert client.get("/", follow_redirects=False).status_code == 303
    finally:
        other.db.dispose()


def test_signing_in_again_ends_the_session_it_replaces(client: TestClient, test_app: TestApp) -> None:
    sign_in(client, test_app.console_key)
    first = client.cookies[sessions.COOKIE_NAME]
    page = client.get("/login")  # signed in: redirected to the list, whose forms carry the CSRF token
    answer = client.post("/login", data={"key": test_app.read_only_key, "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 200
    assert _session_rows(test_app) == 1
    client.cookies.set(sessions.COOKIE_NAME, first)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_expired_sessions_are_forgotten(client: TestClient, test_app: TestApp) -> None:
    sign_in(client, test_app.console_key)
    client.cookies.clear()
    assert _session_rows(test_app) == 1
    test_app.clock.advance(31 * MINUTE_MS)
    sign_in(client, test_app.console_key)  # signing in sweeps sessions nobody can use any more
    assert _session_rows(test_app) == 1
